//! `libra serve` stops cleanly on Ctrl-C: promptly, with everything it acknowledged on disk and
//! the store released for the next command.

use std::process::Command;
use std::time::{Duration, Instant};

mod netns;

use netns::{libra, serve_local};

#[test]
fn serve_stops_on_ctrl_c_with_what_it_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("ann");
    assert!(libra(&data, &["init", "--name", "Ann"]).status.success());
    // Its banner says where it listens (serve_local fails the test otherwise).
    let (mut child, _) = serve_local(&data);
    // Written through the running node (forwarded), acknowledged before the signal.
    let inv = libra(&dir.path().join("ben-init"), &["init", "--name", "Ben"]);
    assert!(inv.status.success());
    let ben = String::from_utf8(libra(&dir.path().join("ben-init"), &["--json", "invite"]).stdout).expect("utf8");
    let ben: serde_json::Value = serde_json::from_str(&ben).expect("json");
    assert!(libra(&data, &["contact", "add", ben["invite"].as_str().expect("invite")]).status.success());
    assert!(libra(&data, &["send", "Ben", "written just before Ctrl-C"]).status.success());

    let t = Instant::now();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill").success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop within 10 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("serve stopped {:?} after Ctrl-C", t.elapsed());
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
