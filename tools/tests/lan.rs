//! LAN discovery between real `libra serve` processes in network namespaces on one bridged
//! segment (made and removed by the test): two contacts find each other with no address
//! typed and sync; a third machine on the segment records the beacons of two epochs and
//! can neither link them nor learn a key. Needs root and iproute2 (`.ci/run` installs it).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libra_engine::discovery::Beacon;
use serde_json::Value;

mod netns;

use netns::{json, libra, receives, serve_in};

const LAN_PORT: &str = "17445";
const LAN_ARGS: &[&str] = &["--lan-port", LAN_PORT, "--lan-epoch", "2", "--lan-interval", "1"];

/// Run by the test below inside the third namespace (this test binary, re-executed): writes
/// every datagram that reaches the beacon port for a few seconds, one hex line each.
#[test]
#[ignore = "a helper the LAN test runs inside a namespace"]
fn record_beacons() {
    let Some(out) = std::env::var_os("LIBRA_RECORD_TO") else { return };
    let sock = std::net::UdpSocket::bind(format!("0.0.0.0:{LAN_PORT}")).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let mut file = std::fs::File::create(PathBuf::from(out)).expect("file");
    let until = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            writeln!(file, "{}", hex(&buf[..n])).expect("write");
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// Ann and Ben in `dir`, contacts of each other by invites with no address; their `id`s.
fn two_contacts(dir: &std::path::Path) -> (PathBuf, PathBuf, Value, Value) {
    let (a, b) = (dir.join("a"), dir.join("b"));
    let ia = json(&libra(&a, &["--json", "init", "--name", "Ann"]));
    let ib = json(&libra(&b, &["--json", "init", "--name", "Ben"]));
    let inv_a = json(&libra(&a, &["--json", "invite"]))["invite"].as_str().expect("invite").to_owned();
    let inv_b = json(&libra(&b, &["--json", "invite"]))["invite"].as_str().expect("invite").to_owned();
    json(&libra(&a, &["--json", "contact", "add", &inv_b]));
    json(&libra(&b, &["--json", "contact", "add", &inv_a]));
    (a, b, ia, ib)
}

#[test]
fn contacts_on_one_segment_find_each_other_and_a_stranger_learns_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, ia, ib) = two_contacts(dir.path());
    json(&libra(&a, &["--json", "send", "Ben", "found you without an address"]));

    let mut net = netns::Netns::new("lb");
    let seg = net.segment("br");
    let mut ifaces = Vec::new();
    let hosts: Vec<String> = (0..3)
        .map(|i| {
            let ns = net.ns(&format!("h{i}"));
            ifaces.push(net.attach(&ns, &seg, &format!("10.87.0.{}/24", i + 1)));
            ns
        })
        .collect();
    let recording = dir.path().join("beacons.txt");
    let recorder = Command::new("ip")
        .args(["netns", "exec", &hosts[2], &std::env::current_exe().expect("exe").to_string_lossy()])
        .args(["--exact", "record_beacons", "--ignored", "--nocapture"])
        .env("LIBRA_RECORD_TO", &recording)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("recorder");
    let _sa = serve_in(&hosts[0], &a, LAN_ARGS);
    let _sb = serve_in(&hosts[1], &b, LAN_ARGS);

    // B receives A's message over the LAN: nobody typed an address.
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let out = libra(&b, &["--json", "chat", "Ann"]);
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).expect("json");
            if v["messages"].as_array().is_some_and(|m| !m.is_empty()) {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "B never got A's message over the LAN");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(got["messages"][0]["text"], "found you without an address");

    // A's network changes under the running nodes (a new address, as after switching Wi-Fi):
    // the conversation goes on with nobody typing anything.
    netns::within(&hosts[0], "ip", &["addr", "flush", "dev", &ifaces[0]]);
    netns::within(&hosts[0], "ip", &["addr", "add", "10.87.0.11/24", "dev", &ifaces[0]]);
    json(&libra(&a, &["--json", "send", "Ben", "new address, same Ann"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = json(&libra(&b, &["--json", "chat", "Ann"]));
        if v["messages"].as_array().is_some_and(|m| m.iter().any(|m| m["text"] == "new address, same Ann")) {
            break;
        }
        assert!(Instant::now() < deadline, "B never got A's message after A's address changed");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The stranger's recording: beacons of at least two epochs, sharing no tag, carrying no key.
    let status = netns::Killed(recorder).0.wait().expect("recorder ends");
    assert!(status.success());
    let lines = std::fs::read_to_string(&recording).expect("recording");
    let beacons: Vec<(Vec<u8>, Beacon)> =
        lines.lines().map(unhex).map(|b| (b.clone(), Beacon::decode(&b).expect("a beacon"))).collect();
    assert!(beacons.len() >= 4, "recorded {} beacons", beacons.len());
    let epochs: std::collections::BTreeSet<u32> = beacons.iter().map(|(_, b)| b.epoch).collect();
    assert!(epochs.len() >= 2, "epochs {epochs:?}");
    for (_, x) in &beacons {
        for (_, y) in &beacons {
            if x.epoch != y.epoch {
                assert!(x.tags.iter().all(|t| !y.tags.contains(t)), "a tag repeats across epochs");
            }
        }
    }
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for id in [&ia, &ib] {
        for field in ["user_id", "device_id"] {
            let text = id[field].as_str().expect("id");
            keys.push(libra_engine::text::decode_id(text).expect("id").1.to_vec());
        }
    }
    for (wire, _) in &beacons {
        for k in &keys {
            for w in k.windows(6) {
                assert!(!wire.windows(6).any(|x| x == w), "a beacon carries key material");
            }
        }
    }
}

/// A link with IPv6 only (no IPv4 address, so no broadcast): the beacons go to the all-nodes
/// group, and the peer is dialled at its link-local address, through the interface its beacon
/// came in on.
#[test]
fn contacts_on_an_ipv6_only_link_find_each_other_by_multicast() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, _, _) = two_contacts(dir.path());
    json(&libra(&a, &["--json", "send", "Ben", "over IPv6 only"]));
    let mut net = netns::Netns::new("l6");
    let seg = net.segment("br");
    let (na, nb) = (net.ns("a"), net.ns("b"));
    net.attach_v6_only(&na, &seg);
    net.attach_v6_only(&nb, &seg);
    let _sa = netns::serve_in_at(&na, &a, "[::]:7444", LAN_ARGS);
    let _sb = netns::serve_in_at(&nb, &b, "[::]:7444", LAN_ARGS);
    receives(&b, "Ann", "over IPv6 only");
    let peers = json(&libra(&b, &["--json", "peers"]));
    let ann = peers.as_array().and_then(|p| p.iter().find(|p| p["name"] == "Ann")).expect("Ann's row").clone();
    // Found on the LAN by either side: the one who dialled shows "lan", the other "inbound".
    assert!(ann["connected_at"].as_str().is_some_and(|a| a.starts_with("[fe80::")), "{ann}");
}

/// Retries `libra ARGS` until it succeeds (the node may still be starting); its JSON.
fn until_ok(data: &std::path::Path, args: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = libra(data, args);
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).expect("json");
        }
        assert!(Instant::now() < deadline, "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Two strangers in one room: both turn on "visible nearby", see each other, add each other
/// without typing an invite or an address, and talk; the invite they announced is gone after.
#[test]
fn two_strangers_visible_nearby_add_each_other_without_typing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    json(&libra(&a, &["--json", "init", "--name", "Ann"]));
    json(&libra(&b, &["--json", "init", "--name", "Ben"]));
    let mut net = netns::Netns::new("nb");
    let seg = net.segment("br");
    let (na, nb) = (net.ns("a"), net.ns("b"));
    net.attach(&na, &seg, "10.86.0.1/24");
    net.attach(&nb, &seg, "10.86.0.2/24");
    let _sa = serve_in(&na, &a, LAN_ARGS);
    let _sb = serve_in(&nb, &b, LAN_ARGS);
    // Nothing is announced or listed before the user asks.
    assert_eq!(until_ok(&a, &["--json", "nearby", "list"])["visible_until"], Value::Null);
    until_ok(&a, &["--json", "nearby", "--minutes", "2"]);
    until_ok(&b, &["--json", "nearby"]);
    let sees = |data: &std::path::Path, name: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = json(&libra(data, &["--json", "nearby", "list"]));
            if let Some(p) = v["people"].as_array().and_then(|p| p.iter().find(|p| p["name"] == name)) {
                return p["short"].as_str().expect("short").to_owned();
            }
            assert!(Instant::now() < deadline, "never saw {name}: {v}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let ben_short = sees(&a, "Ben");
    sees(&b, "Ann");
    json(&libra(&a, &["--json", "nearby", "add", &ben_short]));
    json(&libra(&a, &["--json", "send", "Ben", "nice to meet you"]));
    // Ann's node dials Ben at the announced address and introduces itself: Ben has Ann as a
    // new contact (to accept), and her message.
    receives(&b, "Ann", "nice to meet you");
    let contacts = json(&libra(&b, &["--json", "contact", "list"]));
    assert_eq!(contacts[0]["name"], "Ann");
    assert_eq!(contacts[0]["new"], true, "introduced, so new until Ben accepts: {contacts}");
    // Turning it off revokes the announced invite and clears the list.
    json(&libra(&b, &["--json", "nearby", "off"]));
    assert_eq!(json(&libra(&b, &["--json", "nearby", "list"]))["visible_until"], Value::Null);
    assert!(json(&libra(&b, &["--json", "invite", "list"])).as_array().expect("array").is_empty());
    // Ambiguity and strangers are errors, not guesses.
    assert!(!libra(&a, &["nearby", "add", "Nobody"]).status.success());
}

/// A QR code's short invite with no address: the holder finds the inviter's device on the
/// LAN by the invite's beacon tag, introduces itself, gets the card, and they talk.
#[test]
fn a_short_invite_without_an_address_completes_on_the_lan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    json(&libra(&a, &["--json", "init", "--name", "Ann"]));
    json(&libra(&b, &["--json", "init", "--name", "Ben"]));
    let short = json(&libra(&a, &["--json", "invite"]))["short"].as_str().expect("short").to_owned();
    let added = json(&libra(&b, &["--json", "contact", "add", &short]));
    assert!(added["address"].is_null());
    let mut net = netns::Netns::new("sq");
    let seg = net.segment("br");
    let (na, nb) = (net.ns("a"), net.ns("b"));
    net.attach(&na, &seg, "10.85.0.1/24");
    net.attach(&nb, &seg, "10.85.0.2/24");
    let _sa = serve_in(&na, &a, LAN_ARGS);
    let _sb = serve_in(&nb, &b, LAN_ARGS);
    let knows = |data: &std::path::Path, name: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = libra(data, &["--json", "contact", "list"]);
            if out.status.success() {
                let v: Value = serde_json::from_slice(&out.stdout).expect("json");
                if v.as_array().is_some_and(|c| c.iter().any(|c| c["name"] == name)) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{} never knew {name}", data.display());
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    knows(&b, "Ann");
    knows(&a, "Ben");
    until_ok(&b, &["--json", "send", "Ann", "scanned your code"]);
    receives(&a, "Ben", "scanned your code");
}
