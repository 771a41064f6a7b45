//! Two real nodes through the CLI on loopback: `serve` on one, `sync` from the other.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

fn libra(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_libra")).arg("--data").arg(data).args(args).output().expect("run libra")
}

fn json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_and_sync_over_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let ida = json(&libra(&a, &["--json", "init", "--name", "Ann"]));
    let idb = json(&libra(&b, &["--json", "init", "--name", "Ben"]));
    let (dev_a, dev_b) = (ida["device_id"].as_str().expect("a"), idb["device_id"].as_str().expect("b"));
    json(&libra(&b, &["--json", "peer", "allow", dev_a]));

    let mut server = Command::new(env!("CARGO_BIN_EXE_libra"))
        .arg("--data")
        .arg(&b)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let stdout = server.stdout.take().expect("stdout");
    let _guard = Killed(server);
    // Keep the pipe open for the server's lifetime: it prints more than one line.
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read");
    let addr = line.trim().strip_prefix("listening on ").expect("listening line").to_owned();

    // Not yet allowed on A's side: refused before any network traffic.
    let refused = libra(&a, &["sync", &addr, "--peer", dev_b]);
    assert_eq!(refused.status.code(), Some(2));

    json(&libra(&a, &["--json", "peer", "allow", dev_b, "--address", &addr]));
    let out = json(&libra(&a, &["--json", "sync", dev_b]));
    assert_eq!(out["synced"], true);
    assert_eq!(out["entries_in"], 3);
    assert_eq!(out["entries_out"], 3);
    let again = json(&libra(&a, &["--json", "sync", &addr, "--peer", dev_b]));
    assert_eq!((again["entries_in"].as_u64(), again["entries_out"].as_u64()), (Some(0), Some(0)));

    let logs = json(&libra(&a, &["--json", "log", "list"]));
    assert_eq!(logs.as_array().map(Vec::len), Some(4));
    let peers = json(&libra(&a, &["--json", "peers"]));
    assert_eq!(peers[0]["entries_in"], 3);
    assert!(peers[0]["last_sync"].is_string());
    assert!(libra(&a, &["log", "verify"]).status.success());
}
