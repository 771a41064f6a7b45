//! `libra serve` stops cleanly on Ctrl-C: promptly, with everything it acknowledged on disk and
//! the store released for the next command.

use std::process::Command;
use std::time::{Duration, Instant};

mod netns;

use netns::{Killed, libra, serve_local};

fn json(out: std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Stopped while it holds a live session with a running peer and a dialer backs off from an
/// address where nobody listens (the case that once took over 10 s).
#[test]
fn serve_stops_on_ctrl_c_with_what_it_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, ben) = (dir.path().join("ann"), dir.path().join("ben"));
    let ann_id = json(libra(&data, &["--json", "init", "--name", "Ann"]));
    let ben_id = json(libra(&ben, &["--json", "init", "--name", "Ben"]));
    let carl = json(libra(&dir.path().join("carl"), &["--json", "init", "--name", "Carl"]));
    let device = |v: &serde_json::Value| v["device_id"].as_str().expect("device").to_owned();
    let ben_invite = json(libra(&ben, &["--json", "invite"]));
    json(libra(&data, &["--json", "contact", "add", ben_invite["invite"].as_str().expect("invite")]));
    json(libra(&ben, &["--json", "peer", "allow", &device(&ann_id)]));
    let (ben_node, ben_addr) = serve_local(&ben);
    let _ben_node = Killed(ben_node);
    json(libra(&data, &["--json", "peer", "allow", &device(&ben_id), "--address", &ben_addr]));
    let nobody = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    json(libra(&data, &["--json", "peer", "allow", &device(&carl), "--address", &nobody.to_string()]));
    // Its banner says where it listens (serve_local fails the test otherwise).
    let (child, _) = serve_local(&data);
    let mut child = Killed(child);
    // Ben online, and the dialer of Carl's dead address backing off after a failed try.
    let ready = || {
        let peers = json(libra(&data, &["--json", "peers"]));
        let ps = peers.as_array().cloned().unwrap_or_default();
        ps.iter().any(|p| p["online"] == true)
            && ps.iter().any(|p| p["why_offline"].as_str().is_some_and(|w| w.contains("retrying")))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "Ann never reached Ben, or never tried Carl");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Written through the running node (forwarded), acknowledged before the signal.
    json(libra(&data, &["--json", "send", "Ben", "written just before Ctrl-C"]));

    let t = Instant::now();
    assert!(Command::new("kill").args(["-INT", &child.0.id().to_string()]).status().expect("kill").success());
    // A hang guard, not a timing: the figure is printed (issue 14 asks for 2 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not stop within 10 s of Ctrl-C");
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("serve stopped {:?} after Ctrl-C (a live session and a dialer backing off)", t.elapsed());
    assert!(status.success(), "{status:?}");
    // The store is free and holds the message.
    let out = libra(&data, &["--json", "chat", "Ben"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("written just before Ctrl-C"));
    assert!(libra(&data, &["log", "verify"]).status.success());
}

/// `serve --offline` keeps the store open for the commands beside it (they are forwarded: the
/// store is locked by the node) and stops cleanly on Ctrl-C.
#[test]
fn serve_offline_answers_local_commands() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("ann");
    assert!(libra(&data, &["init", "--name", "Ann"]).status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_libra"))
        .arg("--data")
        .arg(&data)
        .args(["serve", "--offline"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let mut banner = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut banner).expect("banner");
    assert!(banner.starts_with("offline"), "{banner}");
    let id = libra(&data, &["--json", "id"]);
    assert!(id.status.success(), "{}", String::from_utf8_lossy(&id.stderr));
    let inv = libra(&data, &["--json", "invite"]);
    assert!(inv.status.success(), "{}", String::from_utf8_lossy(&inv.stderr));
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill").success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "serve --offline did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The invite made through the node is its store's: listed once it is gone.
    let list = String::from_utf8(libra(&data, &["--json", "invite", "list"]).stdout).expect("utf8");
    assert!(list.contains("\"uses_left\": 1"), "{list}");
}
