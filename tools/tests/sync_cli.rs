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
    // An address alone names no device: nobody would answer (the knock), so it is refused here.
    let unnamed = libra(&a, &["sync", &addr]);
    assert_eq!(unnamed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unnamed.stderr).contains("--peer DEVICE"), "{unnamed:?}");
    let again = json(&libra(&a, &["--json", "sync", &addr, "--peer", dev_b]));
    assert_eq!((again["entries_in"].as_u64(), again["entries_out"].as_u64()), (Some(0), Some(0)));

    let logs = json(&libra(&a, &["--json", "log", "list"]));
    assert_eq!(logs.as_array().map(Vec::len), Some(4));
    let peers = json(&libra(&a, &["--json", "peers"]));
    assert_eq!(peers[0]["entries_in"], 3);
    assert!(peers[0]["last_sync"].is_string());
    assert!(libra(&a, &["log", "verify"]).status.success());

    // While B serves, commands on B's data directory go through the running node.
    let id = json(&libra(&b, &["--json", "id"]));
    assert_eq!(id["device_id"], dev_b);
    let b_logs = json(&libra(&b, &["--json", "log", "list"]));
    assert_eq!(b_logs.as_array().map(Vec::len), Some(4), "B holds A's logs after the sync");
    let b_peers = json(&libra(&b, &["--json", "peers"]));
    assert_eq!(b_peers[0]["online"], false);
    assert_eq!(b_peers[0]["entries_out"], 3);
    // Allowing through the running node takes effect at once: C can sync without a restart.
    let c = dir.path().join("c");
    let idc = json(&libra(&c, &["--json", "init", "--name", "Cy"]));
    json(&libra(&c, &["--json", "peer", "allow", dev_b, "--address", &addr]));
    assert_eq!(libra(&c, &["sync", dev_b]).status.code(), Some(2), "C is not allowed by B yet");
    json(&libra(&b, &["--json", "peer", "allow", idc["device_id"].as_str().expect("c")]));
    let out = json(&libra(&c, &["--json", "sync", dev_b]));
    assert_eq!(out["synced"], true);
    // A bad command through the socket gets the same clear error and exit code.
    let bad = libra(&b, &["log", "show", "nobody"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not an author"));
}

fn spawn_serve(data: &Path, listen: &str) -> (Killed, String, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_libra"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("read");
    let addr = line.trim().strip_prefix("listening on ").expect("listening line").to_owned();
    (Killed(child), addr, reader)
}

fn online(data: &Path) -> bool {
    let out = libra(data, &["--json", "peers"]);
    out.status.success()
        && serde_json::from_slice::<Value>(&out.stdout)
            .is_ok_and(|v| v.as_array().is_some_and(|a| a.iter().any(|p| p["online"] == true)))
}

#[test]
fn serve_redials_a_peer_that_comes_up_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let ida = json(&libra(&a, &["--json", "init", "--name", "Ann"]));
    let idb = json(&libra(&b, &["--json", "init", "--name", "Ben"]));
    json(&libra(&b, &["--json", "peer", "allow", ida["device_id"].as_str().expect("a")]));
    // Reserve B's port, then start A while nobody listens there.
    let port = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let b_addr = format!("127.0.0.1:{port}");
    json(&libra(&a, &["--json", "peer", "allow", idb["device_id"].as_str().expect("b"), "--address", &b_addr]));
    let _a = spawn_serve(&a, "127.0.0.1:0");
    // A runs, has tried B and failed: its dialer backs off and says when it retries.
    let tried = || {
        let out = libra(&a, &["--json", "peers"]);
        serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| {
            v.as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["online"] == false && p["why_offline"].as_str().is_some_and(|w| w.contains("retrying")))
            })
        })
    };
    wait_for("A to try B, fail and back off", tried);
    assert!(!online(&a), "A cannot be connected yet");
    let _b = spawn_serve(&b, &b_addr);
    // A retries with backoff (and a 5 s handshake limit) until B answers.
    wait_for("A to reach B", || online(&a) && online(&b));
    // Both sides come to hold both identities' logs (read through the running nodes).
    let logs = |d: &Path| json(&libra(d, &["--json", "log", "list"])).as_array().map(Vec::len);
    wait_for("both sides to hold all four logs", || logs(&a) == Some(4) && logs(&b) == Some(4));
}

/// Polls `cond` until it holds; fails after 30 s naming what it waited for.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "waited 30 s for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn messaging_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    json(&libra(&a, &["--json", "init", "--name", "Ann"]));
    let idb = json(&libra(&b, &["--json", "init", "--name", "Ben"]));
    let dev_b = idb["device_id"].as_str().expect("b").to_owned();
    let inv_a = json(&libra(&a, &["--json", "invite"]))["invite"].as_str().expect("invite").to_owned();
    let inv_b = json(&libra(&b, &["--json", "invite", "--qr"]))["invite"].as_str().expect("invite").to_owned();
    assert!(!inv_b.contains("127.0.0.1"), "no address unless asked");
    json(&libra(&a, &["--json", "contact", "add", &inv_b]));
    json(&libra(&b, &["--json", "contact", "add", &inv_a, "--name", "Annie"]));
    let contacts = json(&libra(&a, &["--json", "contact", "list"]));
    assert_eq!(contacts[0]["name"], "Ben");
    assert_eq!(libra(&a, &["contact", "add", "libra:garbage"]).status.code(), Some(2));
    assert_eq!(libra(&a, &["contact", "add", &inv_a]).status.code(), Some(2), "own invite refused");

    // A writes while nobody is online: the message is "sent" at once.
    let sent = json(&libra(&a, &["--json", "send", "Ben", "hello Ben"]));
    assert_eq!(sent["delivery"], "sent");
    let too_long = "x".repeat(40_000);
    let refused = libra(&a, &["send", "Ben", &too_long]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("limit of 32768 bytes"));

    let (_server, addr, _out) = spawn_serve(&b, "127.0.0.1:0");
    let out = json(&libra(&a, &["--json", "sync", &addr, "--peer", &dev_b]));
    assert_eq!(out["synced"], true);
    // B (through its running node) has the message, unread.
    let chats = json(&libra(&b, &["--json", "chats"]));
    assert_eq!(chats[0]["title"], "Annie");
    assert_eq!(chats[0]["unread"], 1);
    let chat = json(&libra(&b, &["--json", "chat", "Annie", "--mark-read"]));
    assert_eq!(chat["messages"][0]["text"], "hello Ben");
    assert_eq!(json(&libra(&b, &["--json", "chats"]))[0]["unread"], 0);
    // B acknowledged on receipt; the next sync brings the ack to A.
    json(&libra(&a, &["--json", "sync", &addr, "--peer", &dev_b]));
    let at_a = json(&libra(&a, &["--json", "chat", "Ben"]));
    assert_eq!(at_a["messages"][0]["delivery"], "delivered");
    // Edit, reply and a group through the CLI.
    let id = at_a["messages"][0]["id"].as_str().expect("id")[..10].to_owned();
    json(&libra(&a, &["--json", "edit", "Ben", &id, "hello, Ben"]));
    json(&libra(&a, &["--json", "send", "Ben", "see above", "--reply-to", &id]));
    json(&libra(&a, &["--json", "group", "create", "pals", "Ben"]));
    json(&libra(&a, &["--json", "send", "pals", "group hello"]));
    json(&libra(&a, &["--json", "sync", &addr, "--peer", &dev_b]));
    let at_b = json(&libra(&b, &["--json", "chat", "Annie"]));
    assert_eq!(at_b["messages"][0]["text"], "hello, Ben");
    assert_eq!(at_b["messages"][0]["edited"], true);
    assert_eq!(at_b["messages"][1]["reply_to"].as_str().map(|r| r.starts_with(&id)), Some(true));
    let group = json(&libra(&b, &["--json", "chat", "pals"]));
    assert_eq!(group["messages"][0]["text"], "group hello");
    assert!(libra(&b, &["log", "verify"]).status.success());
}

#[test]
fn chat_follow_prints_each_message_once_and_edits_and_deletions_as_they_happen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    json(&libra(&a, &["--json", "init", "--name", "Ann"]));
    json(&libra(&b, &["--json", "init", "--name", "Ben"]));
    let inv = json(&libra(&b, &["--json", "invite"]))["invite"].as_str().expect("invite").to_owned();
    json(&libra(&a, &["--json", "contact", "add", &inv]));
    let (_server, _addr, _out) = spawn_serve(&a, "127.0.0.1:0");
    let id = |out: &std::process::Output| json(out)["id"].as_str().expect("id").to_owned();
    let first = id(&libra(&a, &["--json", "send", "Ben", "one"]));
    let second = id(&libra(&a, &["--json", "send", "Ben", "two"]));
    let mut follow = Command::new(env!("CARGO_BIN_EXE_libra"))
        .arg("--data")
        .arg(&a)
        .args(["chat", "Ben", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("follow");
    std::thread::sleep(std::time::Duration::from_millis(800));
    json(&libra(&a, &["--json", "send", "Ben", "three"]));
    json(&libra(&a, &["--json", "edit", "Ben", &first[..8], "one, fixed"]));
    json(&libra(&a, &["--json", "delete", "Ben", &second[..8]]));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = follow.kill();
    let out = follow.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("  one  "), 1, "{text}");
    assert_eq!(count("  two  "), 1, "{text}");
    assert_eq!(count("three"), 1, "{text}");
    assert_eq!(count(&format!("edited {}: one, fixed", &first[..8])), 1, "{text}");
    assert_eq!(count(&format!("deleted {}", &second[..8])), 1, "{text}");
}
