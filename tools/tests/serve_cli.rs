//! `libra serve` stops cleanly on Ctrl-C: promptly, with everything it acknowledged on disk and
//! the store released for the next command.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn libra(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_libra")).arg("--data").arg(data).args(args).output().expect("run libra")
}

#[test]
fn serve_stops_on_ctrl_c_with_what_it_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("ann");
    assert!(libra(&data, &["init", "--name", "Ann"]).status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_libra"))
        .arg("--data")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-lan"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("banner");
    assert!(first.starts_with("listening on"), "{first}");
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
