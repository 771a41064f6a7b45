//! Network namespaces for tests that need real networks: made by the test, always removed
//! (also when it fails half-way), and `libra` nodes serving inside them (or on loopback). The
//! namespaces need root and iproute2 (iptables for NAT).

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn libra(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_libra")).arg("--data").arg(data).args(args).output().expect("run libra")
}

/// `libra --data DATA ARGS`, which must succeed: its standard output.
pub fn ok(data: &Path, args: &[&str]) -> String {
    let out = libra(data, args);
    assert!(out.status.success(), "libra {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8")
}

/// `libra --data DATA --json ARGS`, which must succeed: its JSON.
pub fn ok_json(data: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(data, &all)).expect("json")
}

pub fn json(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// A process killed (and reaped) when dropped.
pub struct Killed(pub std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `libra --data DATA serve` on a free loopback port, without LAN discovery: the child and
/// the address its banner gives.
pub fn serve_local(data: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_libra"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-lan"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("banner");
    let addr = first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("banner: {first}")).to_owned();
    (child, addr)
}

/// `libra --data DATA serve --listen 0.0.0.0:7444 ARGS` inside namespace `ns`; its log (info)
/// goes to DATA.log, for a failing test to show.
pub fn serve_in(ns: &str, data: &Path, args: &[&str]) -> Killed {
    serve_in_at(ns, data, "0.0.0.0:7444", args)
}

/// [`serve_in`], listening at `listen`.
pub fn serve_in_at(ns: &str, data: &Path, listen: &str, args: &[&str]) -> Killed {
    Killed(
        Command::new("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_libra"), "--data"])
            .arg(data)
            .args(["serve", "--listen", listen])
            .args(args)
            .env("RUST_LOG", "info,quinn_udp=error")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.with_extension("log")).expect("log file"))
            .spawn()
            .expect("serve"),
    )
}

pub fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

pub fn ip(args: &[&str]) {
    run("ip", args);
}

/// Runs a command inside namespace `ns`.
pub fn within(ns: &str, cmd: &str, args: &[&str]) {
    let mut all = vec!["netns", "exec", ns, cmd];
    all.extend_from_slice(args);
    ip(&all);
}

pub struct Netns {
    tag: String,
    names: Vec<String>,
    links: usize,
}

impl Netns {
    /// `tag` keeps names apart between concurrent tests (a few characters).
    pub fn new(tag: &str) -> Netns {
        Netns { tag: format!("{tag}{}", std::process::id() % 10_000), names: Vec::new(), links: 0 }
    }

    /// What every namespace name of this world starts with.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// A namespace with its loopback up.
    pub fn ns(&mut self, name: &str) -> String {
        let ns = format!("{}{name}", self.tag);
        ip(&["netns", "add", &ns]);
        self.names.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// A namespace holding a bridge `br0`: one Ethernet segment.
    pub fn segment(&mut self, name: &str) -> String {
        let ns = self.ns(name);
        ip(&["-n", &ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &ns, "link", "set", "br0", "up"]);
        ns
    }

    /// A veth pair between `a` and `b` with these addresses (CIDR; `None` leaves a side
    /// unaddressed, e.g. a bridge port); returns the interface names.
    pub fn link(&mut self, a: &str, a_addr: Option<&str>, b: &str, b_addr: Option<&str>) -> (String, String) {
        self.links += 1;
        let (x, y) = (format!("{}a{}", self.tag, self.links), format!("{}b{}", self.tag, self.links));
        ip(&["link", "add", &x, "type", "veth", "peer", "name", &y]);
        ip(&["link", "set", &x, "netns", a]);
        ip(&["link", "set", &y, "netns", b]);
        for (ns, dev, addr) in [(a, &x, a_addr), (b, &y, b_addr)] {
            if let Some(addr) = addr {
                ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            }
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        (x, y)
    }

    /// Plugs `ns` into the segment `seg` with no IPv4 address (only the IPv6 link-local one the
    /// kernel gives every link); returns its interface.
    pub fn attach_v6_only(&mut self, ns: &str, seg: &str) -> String {
        // No duplicate-address detection: the link-local address is usable at once.
        within(ns, "sysctl", &["-qw", "net.ipv6.conf.default.accept_dad=0"]);
        let (inner, port) = self.link(ns, None, seg, None);
        ip(&["-n", seg, "link", "set", &port, "master", "br0"]);
        inner
    }

    /// Plugs `ns` into the segment `seg` with address `addr`; returns its interface.
    pub fn attach(&mut self, ns: &str, seg: &str, addr: &str) -> String {
        let (inner, port) = self.link(ns, Some(addr), seg, None);
        ip(&["-n", seg, "link", "set", &port, "master", "br0"]);
        inner
    }

    /// Makes `router` a NAT (masquerading out of `outside`) for a host behind it at
    /// `inside_addr` (with `router_inside` the gateway); returns the host's namespace.
    pub fn behind_nat(
        &mut self,
        name: &str,
        router: &str,
        outside: &str,
        router_inside: &str,
        host_addr: &str,
    ) -> String {
        let host = self.ns(name);
        self.plug_behind(&host, router, outside, router_inside, host_addr);
        host
    }

    /// Moves `host` (as [`Netns::behind_nat`] made it) to another NAT, as a laptop moves to
    /// another network: its old link goes, with its address and routes.
    pub fn rehome(&mut self, host: &str, router: &str, outside: &str, router_inside: &str, host_addr: &str) {
        let links = Command::new("ip").args(["-n", host, "-o", "link", "show"]).output().expect("ip link");
        for line in String::from_utf8_lossy(&links.stdout).lines() {
            let name = line.split(':').nth(1).map(str::trim).unwrap_or_default();
            let name = name.split('@').next().unwrap_or_default();
            if !name.is_empty() && name != "lo" {
                ip(&["-n", host, "link", "del", name]);
            }
        }
        self.plug_behind(host, router, outside, router_inside, host_addr);
    }

    fn plug_behind(&mut self, host: &str, router: &str, outside: &str, router_inside: &str, host_addr: &str) {
        self.link(router, Some(router_inside), host, Some(host_addr));
        let gw = router_inside.split('/').next().unwrap_or(router_inside);
        ip(&["-n", host, "route", "add", "default", "via", gw]);
        within(router, "sh", &["-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
        within(router, "iptables", &["-t", "nat", "-A", "POSTROUTING", "-o", outside, "-j", "MASQUERADE"]);
        // As a home router does: nothing unsolicited from outside reaches the router itself
        // (so a stray packet leaves no connection-tracking entry that would change the port
        // the NAT maps to later).
        within(
            router,
            "iptables",
            &["-A", "INPUT", "-i", outside, "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP"],
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// Waits (at most 30 s) until the chat with `from` in `data` shows `text`.
pub fn receives(data: &std::path::Path, from: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = libra(data, &["--json", "chat", from]);
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).expect("json");
            if v["messages"].as_array().is_some_and(|m| m.iter().any(|m| m["text"] == text)) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{} never got '{text}' from {from}", data.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}
