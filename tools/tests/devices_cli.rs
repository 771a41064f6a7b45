//! Devices through the CLI: `device link` beside a running node, `init --link`, `device list`,
//! `device revoke` (with the phrase on a device without the user key), `init --restore`, and
//! clear refusals for bad codes and phrases.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

mod netns;

use netns::{Killed, libra, ok, ok_json as json, serve_local};

/// Runs `libra --data DATA ARGS` with `input` on standard input.
fn with_stdin(data: &Path, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_libra"))
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    child.wait_with_output().expect("wait")
}

fn devices(data: &Path) -> Vec<serde_json::Value> {
    json(data, &["device", "list"]).as_array().expect("list").clone()
}

#[test]
fn link_list_revoke_and_restore_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (laptop, phone, restored) = (dir.path().join("laptop"), dir.path().join("phone"), dir.path().join("new"));
    let init = json(&laptop, &["init", "--name", "Ann"]);
    let phrase = init["recovery_phrase"].as_str().expect("phrase").to_owned();
    assert_eq!(json(&laptop, &["device", "phrase"])["phrase"], phrase.as_str());

    // Linking needs a running node: a clear error without one.
    let out = libra(&laptop, &["device", "link"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("running node"), "{out:?}");

    let (child, addr) = serve_local(&laptop);
    let server = Killed(child);
    let code = json(&laptop, &["device", "link", "--address", &addr])["code"].as_str().expect("code").to_owned();
    let linked = json(&phone, &["init", "--link", &code, "--device-name", "phone"]);
    assert_eq!(linked["user_id"], init["user_id"]);
    assert_eq!(linked["holds_user_key"], false);
    assert!(linked["entries_received"].as_u64().expect("received") >= 3, "{linked}");
    // The code worked once.
    let again = libra(&dir.path().join("other"), &["init", "--link", &code]);
    assert!(!again.status.success(), "a used code must be refused");
    assert!(!dir.path().join("other").join("identity.key").exists(), "nothing is created on a refusal");

    let list = devices(&laptop);
    assert_eq!(list.len(), 2, "{list:?}");
    let phone_id = linked["device_id"].as_str().expect("id").to_owned();
    assert!(list.iter().any(|d| d["device_id"] == phone_id.as_str() && d["name"] == "phone"));
    // The phone has no user key: revoking from it needs the phrase.
    let laptop_id = init["device_id"].as_str().expect("id").to_owned();
    drop(server);
    let out = libra(&phone, &["device", "revoke", &laptop_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("recovery phrase"), "{out:?}");
    let out = with_stdin(&phone, &["device", "revoke", &laptop_id, "--phrase"], "abcd-efgh\n");
    assert!(!out.status.success(), "a damaged phrase must be refused");
    let out =
        with_stdin(&phone, &["--json", "device", "revoke", &laptop_id, "--phrase", "--reason", "stolen"], &phrase);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = devices(&phone);
    let l = list.iter().find(|d| d["device_id"] == laptop_id.as_str()).expect("laptop listed");
    assert_eq!(l["revoked"], true);

    // Restore on a new device: same user, a new device key, nothing written to old logs.
    let out = with_stdin(&restored, &["--json", "init", "--restore"], &format!("{}\n", phrase.to_uppercase()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["user_id"], init["user_id"]);
    assert_ne!(r["device_id"], init["device_id"]);
    assert_eq!(r["holds_user_key"], true);
    let bad = with_stdin(&dir.path().join("bad"), &["init", "--restore"], "not a phrase\n");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("recovery phrase"), "{bad:?}");
    // A bad code is refused before anything is made.
    let out = libra(&dir.path().join("bad2"), &["init", "--link", "libra-link:abc"]);
    assert!(!out.status.success());
    assert!(!dir.path().join("bad2").join("identity.key").exists());
}

#[test]
fn a_backup_brings_contacts_and_history_back_and_only_the_phrase_opens_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ann, ben) = (dir.path().join("ann"), dir.path().join("ben"));
    let phrase = json(&ann, &["init", "--name", "Ann"])["recovery_phrase"].as_str().expect("phrase").to_owned();
    ok(&ben, &["init", "--name", "Ben"]);
    let ia = json(&ann, &["invite"])["invite"].as_str().expect("invite").to_owned();
    let ib = json(&ben, &["invite"])["invite"].as_str().expect("invite").to_owned();
    ok(&ann, &["contact", "add", &ib]);
    ok(&ben, &["contact", "add", &ia]);
    ok(&ann, &["send", "Ben", "hello ben"]);
    ok(&ben, &["send", "Ann", "hi ann"]);
    let carried = dir.path().join("b.bundle");
    ok(&ben, &["bundle", "export", "--all", carried.to_str().expect("path")]);
    ok(&ann, &["bundle", "import", carried.to_str().expect("path")]);

    let file = dir.path().join("ann.backup");
    let made = json(&ann, &["backup", file.to_str().expect("path")]);
    assert!(made["entries"].as_u64().expect("entries") >= 8, "{made}");
    let bytes = std::fs::read(&file).expect("backup");
    for needle in ["hello ben", "hi ann", "Ann", "Ben"] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} in the clear");
    }

    let restored = dir.path().join("restored");
    let out =
        with_stdin(&restored, &["--json", "init", "--restore", "--backup", file.to_str().expect("path")], &phrase);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let chat = json(&restored, &["chat", "Ben"]);
    let texts: Vec<&str> =
        chat["messages"].as_array().expect("messages").iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(texts.contains(&"hello ben") && texts.contains(&"hi ann"), "{chat}");

    // Another identity's phrase, and a damaged backup: refused, nothing created.
    let other =
        json(&dir.path().join("zed"), &["init", "--name", "Zed"])["recovery_phrase"].as_str().expect("p").to_owned();
    let nowhere = dir.path().join("nowhere");
    let out = with_stdin(&nowhere, &["init", "--restore", "--backup", file.to_str().expect("path")], &other);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another identity"), "{out:?}");
    let mut damaged = bytes.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 1;
    let bad = dir.path().join("damaged.backup");
    std::fs::write(&bad, damaged).expect("write");
    let out = with_stdin(&nowhere, &["init", "--restore", "--backup", bad.to_str().expect("path")], &phrase);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("damaged"), "{out:?}");
    assert!(!nowhere.join("identity.key").exists(), "nothing is created from a bad backup");
}
