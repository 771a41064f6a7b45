//! Two people behind two separate NATs (masquerading routers in network namespaces the test
//! makes and removes), with direct UDP between the NATs blocked, and a mutual contact on the
//! "public" side who relays: they sync through it, end to end encrypted, and the relay's store
//! holds nothing readable of their conversation. Needs root, iproute2 and iptables.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

mod netns;

use netns::{Killed, json, libra, receives};

fn invite(data: &Path, address: Option<&str>) -> String {
    let mut args = vec!["--json", "invite"];
    if let Some(a) = address {
        args.extend(["--with-address", a]);
    }
    json(&libra(data, &args))["invite"].as_str().expect("invite").to_owned()
}

/// Ann and Ben behind two NATs, Rex on the public segment (a contact of both, relaying); the
/// nodes run until the returned guards drop.
struct World {
    a: std::path::PathBuf,
    b: std::path::PathBuf,
    r: std::path::PathBuf,
    _serving: Vec<Killed>,
    net: netns::Netns,
    _dir: tempfile::TempDir,
}

/// Where Ann and Ben sit.
#[derive(PartialEq)]
enum Layout {
    /// Behind two NATs; `blocked`: no UDP between the two NATs.
    TwoNats { blocked: bool },
    /// Behind one NAT, on two subnets it routes between (no broadcast crosses them), and the
    /// NAT does not send a packet from inside back in at its own public address.
    OneNat { relay: bool },
}

fn world(tag: &str, layout: Layout) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, r) = (dir.path().join("ann"), dir.path().join("ben"), dir.path().join("rex"));
    for (d, name) in [(&a, "Ann"), (&b, "Ben"), (&r, "Rex")] {
        json(&libra(d, &["--json", "init", "--name", name]));
    }
    // Rex is reachable (his invites carry his public address); Ann and Ben are not.
    let rex_public = "10.88.0.1:7444";
    for x in [&a, &b] {
        json(&libra(x, &["--json", "contact", "add", &invite(&r, Some(rex_public))]));
        json(&libra(&r, &["--json", "contact", "add", &invite(x, None)]));
    }
    json(&libra(&a, &["--json", "contact", "add", &invite(&b, None)]));
    json(&libra(&b, &["--json", "contact", "add", &invite(&a, None)]));

    let mut net = netns::Netns::new(tag);
    let public = net.segment("pub");
    let rex = net.ns("rex");
    net.attach(&rex, &public, "10.88.0.1/24");
    let nat_a = net.ns("natA");
    let out_a = net.attach(&nat_a, &public, "10.88.0.2/24");
    let host_a = net.behind_nat("ann", &nat_a, &out_a, "192.168.10.1/24", "192.168.10.2/24");
    let host_b = if let Layout::OneNat { .. } = layout {
        net.behind_nat("ben", &nat_a, &out_a, "192.168.20.1/24", "192.168.20.2/24")
    } else {
        let nat_b = net.ns("natB");
        let out_b = net.attach(&nat_b, &public, "10.88.0.3/24");
        net.behind_nat("ben", &nat_b, &out_b, "192.168.20.1/24", "192.168.20.2/24")
    };
    if layout == (Layout::TwoNats { blocked: true }) {
        // No direct path between the two NATs, whatever either side tries.
        netns::within(&nat_a, "iptables", &["-A", "FORWARD", "-d", "10.88.0.3", "-j", "DROP"]);
        netns::within(&format!("{}natB", net.tag()), "iptables", &["-A", "FORWARD", "-d", "10.88.0.2", "-j", "DROP"]);
    }
    let serve = |ns: &str, data: &Path, extra: &[&str]| {
        netns::serve_in(ns, data, &[&["--no-lan", "--relay-retry", "1"], extra].concat())
    };
    let rex_relays = layout != (Layout::OneNat { relay: false });
    let serving = vec![
        serve(&rex, &r, if rex_relays { &["--relay"] } else { &[] }),
        serve(&host_a, &a, &[]),
        serve(&host_b, &b, &[]),
    ];
    World { a, b, r, _serving: serving, net, _dir: dir }
}

/// Waits until `data`'s node has a live session with `peer` (an `ld…` id); returns the
/// peer's row of `libra peers --json`.
fn online_at(data: &Path, peer: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let peers = json(&libra(data, &["--json", "peers"]));
        if let Some(p) = peers.as_array().and_then(|p| p.iter().find(|p| p["id"] == peer && p["online"] == true)) {
            return p.clone();
        }
        assert!(Instant::now() < deadline, "never connected: {peers}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `data`'s row of `libra peers --json` for the peer named `name`.
fn row_named(data: &Path, name: &str) -> Value {
    let peers = json(&libra(data, &["--json", "peers"]));
    peers
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no {name}: {peers}"))
}

fn device(data: &Path) -> String {
    json(&libra(data, &["--json", "id"]))["device_id"].as_str().expect("device").to_owned()
}

#[test]
fn two_people_behind_nats_connect_directly_introduced_by_a_friend() {
    let w = world("np", Layout::TwoNats { blocked: false });
    // Ann reaches Ben at his NAT's public address: a punched, direct path (not the relay's).
    let row = online_at(&w.a, &device(&w.b));
    let at = row["connected_at"].as_str().expect("an address");
    assert!(at.starts_with("10.88.0.3:"), "connected at {at}");
    assert_eq!(row["path"], "punched", "{row}");
    json(&libra(&w.a, &["--json", "send", "Ben", "straight through both routers"]));
    receives(&w.b, "Ann", "straight through both routers");
    let _ = &w.r;
}

#[test]
fn a_punched_path_comes_back_at_once_when_one_side_moves_to_another_network() {
    let mut w = world("ns", Layout::TwoNats { blocked: false });
    let ben = device(&w.b);
    let before = online_at(&w.a, &ben);
    assert_eq!(before["path"], "punched", "{before}");
    // Both asked Rex to introduce them: let the second punch's session start before the move.
    std::thread::sleep(Duration::from_secs(3));
    // Ann's laptop moves to another network: behind a third NAT, with another public address.
    // Her old connections are dead, and Ben's NAT lets in nothing from her new address until
    // Ben sends there: only a new punch reconnects them.
    let switched = libra_engine::control::render::time(libra_engine::clock::wall_ms());
    let public = format!("{}pub", w.net.tag());
    let nat_c = w.net.ns("natC");
    let out_c = w.net.attach(&nat_c, &public, "10.88.0.4/24");
    let ann = format!("{}ann", w.net.tag());
    w.net.rehome(&ann, &nat_c, &out_c, "192.168.30.1/24", "192.168.30.2/24");
    // Back well before the dead connections fall silent long enough to be given up (20 s).
    let moved = Instant::now();
    let deadline = moved + Duration::from_secs(14);
    let after = loop {
        let peers = json(&libra(&w.a, &["--json", "peers"]));
        let row = peers.as_array().and_then(|p| p.iter().find(|p| p["id"] == ben.as_str())).cloned();
        // RFC 3339 times in UTC with milliseconds: later is greater.
        let since = |r: &Value| r["connected_since"].as_str().unwrap_or_default().to_owned();
        if let Some(row) = row.filter(|r| r["online"] == true && since(r) > switched) {
            break row;
        }
        assert!(Instant::now() < deadline, "the path never came back: {peers}");
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!("the punched path came back {:?} after the switch", moved.elapsed());
    if std::env::var_os("NAT_DEBUG").is_some() {
        eprintln!(
            "switched {switched}\nANN {}\nBEN {}\nREX {}",
            std::fs::read_to_string(w.a.with_extension("log")).unwrap_or_default(),
            std::fs::read_to_string(w.b.with_extension("log")).unwrap_or_default(),
            std::fs::read_to_string(w.r.with_extension("log")).unwrap_or_default()
        );
    }
    assert_eq!(after["path"], "punched", "{after}");
    // Rex saw her at her new network's public address when he introduced her again.
    let rex = row_named(&w.a, "Rex");
    assert!(
        rex["sees_you_at"].as_str().is_some_and(|a| a.starts_with("10.88.0.4:")),
        "switched at {switched}; Rex {rex}; Ben {after}; log {}",
        std::fs::read_to_string(w.a.with_extension("log")).unwrap_or_default()
    );
    json(&libra(&w.b, &["--json", "send", "Ann", "welcome to the new network"]));
    receives(&w.a, "Ben", "welcome to the new network");
}

#[test]
fn two_people_behind_one_nat_meet_at_their_local_addresses_introduced_by_a_friend() {
    // Rex does not relay: only punching can connect them. Their public addresses are the same
    // NAT's, which does not loop packets back inside; the local lists do it.
    let w = world("n1", Layout::OneNat { relay: false });
    let row = online_at(&w.a, &device(&w.b));
    assert_eq!(row["connected_at"], "192.168.20.2:7444", "{row}");
    assert_eq!(row["path"], "punched", "{row}");
    // Each learned its public address from Rex's introduction (a STUN answer from a friend).
    let rex = row_named(&w.a, "Rex");
    let seen = rex["sees_you_at"].as_str().unwrap_or_default();
    assert!(seen.starts_with("10.88.0.2:"), "Ann's public address as Rex sees it: {rex}");
    let text = String::from_utf8_lossy(&libra(&w.a, &["peers"]).stdout).into_owned();
    assert!(text.contains(&format!("sees you at {seen}")), "{text}");
    json(&libra(&w.b, &["--json", "send", "Ann", "from the next room"]));
    receives(&w.a, "Ben", "from the next room");
}

#[test]
fn two_people_behind_nats_talk_through_a_friend_who_relays() {
    let w = world("nr", Layout::TwoNats { blocked: true });
    let (a, b, r) = (&w.a, &w.b, &w.r);
    json(&libra(a, &["--json", "send", "Ben", "hello from behind my router"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let out = libra(b, &["--json", "chat", "Ann"]);
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).expect("json");
            if v["messages"].as_array().is_some_and(|m| !m.is_empty()) {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "Ben never got Ann's message through the relay");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(got["messages"][0]["text"], "hello from behind my router");
    // And back: Ben answers, Ann sees it (the relayed session is live both ways).
    json(&libra(b, &["--json", "send", "Ann", "got it"]));
    receives(a, "Ben", "got it");
    // Messages could also travel by store-and-forward through Rex; that the two are online to
    // each other shows the live, relayed session (their direct path is blocked).
    let row = online_at(a, &device(b));
    assert_eq!(row["connected_at"], "10.88.0.1:7444", "connected through Rex: {row}");
    assert_eq!((&row["path"], &row["via_name"]), (&Value::from("relayed"), &Value::from("Rex")), "{row}");
    let text = String::from_utf8_lossy(&libra(a, &["peers"]).stdout).into_owned();
    assert!(text.contains("relayed via Rex"), "{text}");
    // The relay carried it but cannot read it: nothing of the conversation in its chats.
    let at_rex = String::from_utf8_lossy(&libra(r, &["--json", "chats"]).stdout).into_owned();
    assert!(!at_rex.contains("hello from behind") && !at_rex.contains("got it"), "{at_rex}");
    // Nor anywhere in the bytes of its data directory (store, journal, keys) or its log.
    for file in files_under(r).into_iter().chain([r.with_extension("log")]) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        for secret in [&b"hello from behind"[..], b"got it"] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{} holds the conversation", file.display());
        }
    }
    // And no node's log names an IP address (spec/connectivity.md, section 1).
    let mut logged = 0;
    for d in [a, b, r] {
        let log = std::fs::read_to_string(d.with_extension("log")).unwrap_or_default();
        logged += log.len();
        if let Some(ip) = first_ipv4(&log) {
            panic!("{} logs the address {ip}:\n{log}", d.display());
        }
    }
    assert!(logged > 0, "the nodes logged nothing to check");
}

/// A user who chose a STUN server (their own, `libra stun serve`) learns the public address
/// and port their NAT gives the node's QUIC socket: the same mapping a contact sees the node's
/// connections come from, so the address a hole punch offers is one that works.
#[test]
fn a_node_behind_a_nat_learns_its_public_address_from_the_stun_server_its_user_chose() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, r) = (dir.path().join("ann"), dir.path().join("rex"));
    for (d, name) in [(&a, "Ann"), (&r, "Rex")] {
        json(&libra(d, &["--json", "init", "--name", name]));
    }
    json(&libra(&a, &["--json", "contact", "add", &invite(&r, Some("10.89.0.1:7444"))]));
    json(&libra(&r, &["--json", "contact", "add", &invite(&a, None)]));
    let mut net = netns::Netns::new("st");
    let public = net.segment("pub");
    let (rex, stun) = (net.ns("rex"), net.ns("stun"));
    net.attach(&rex, &public, "10.89.0.1/24");
    net.attach(&stun, &public, "10.89.0.5/24");
    let nat = net.ns("nat");
    let outside = net.attach(&nat, &public, "10.89.0.2/24");
    let ann = net.behind_nat("ann", &nat, &outside, "192.168.30.1/24", "192.168.30.2/24");
    let _server = Killed(
        std::process::Command::new("ip")
            .args(["netns", "exec", &stun, env!("CARGO_BIN_EXE_libra"), "stun", "serve", "--listen", "10.89.0.5:3478"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("stun server"),
    );
    let _rex = netns::serve_in(&rex, &r, &["--no-lan"]);
    let _ann = netns::serve_in(&ann, &a, &["--no-lan", "--stun", "10.89.0.5:3478"]);
    // Ann's node asks at start: `libra id` shows the NAT's outside address, not 192.168.30.2.
    let deadline = Instant::now() + Duration::from_secs(30);
    let public_at = loop {
        let out = libra(&a, &["--json", "id"]);
        if out.status.success()
            && let Some(at) = json(&out)["public_address"].as_str()
        {
            break at.to_owned();
        }
        assert!(Instant::now() < deadline, "no public address: {}", String::from_utf8_lossy(&out.stdout));
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(public_at.starts_with("10.89.0.2:"), "public address {public_at}");
    // Rex sees Ann's node come from exactly that address and port: the STUN request left from
    // the node's own QUIC socket (which still carries QUIC), so the NAT mapped both alike.
    let rex_sees = online_at(&r, &device(&a));
    assert_eq!(rex_sees["connected_at"], Value::from(public_at.clone()), "{rex_sees}");
    // Asked on demand, the answer is the same; a server that does not answer is an error.
    let asked = json(&libra(&a, &["--json", "stun", "ask", "10.89.0.5:3478"]));
    assert_eq!(asked["public_address"], Value::from(public_at));
    let silent = libra(&a, &["stun", "ask", "10.89.0.1:3478"]);
    assert!(!silent.status.success());
    assert!(String::from_utf8_lossy(&silent.stderr).contains("did not answer"), "{silent:?}");
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
    }
    out
}

/// The first dotted quad of four numbers 0..=255 in `text`, if any.
fn first_ipv4(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b'.')) {
            let start = i;
            let mut parts = 0;
            loop {
                let s = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i == s || i - s > 3 || text[s..i].parse::<u16>().map_or(true, |n| n > 255) {
                    break;
                }
                parts += 1;
                if parts == 4 || i >= b.len() || b[i] != b'.' {
                    break;
                }
                i += 1;
            }
            if parts == 4 {
                return Some(&text[start..i]);
            }
        }
        i += 1;
    }
    None
}
