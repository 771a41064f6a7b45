//! The `libra` binary, run as a user would.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn libra(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_libra")).arg("--data").arg(data).args(args).output().expect("run libra")
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json output")
}

#[test]
fn init_id_list_replay_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("node");
    let init = json(&libra(&d, &["--json", "init", "--name", "Alice"]));
    assert_eq!(init["name"], "Alice");
    let user = init["user_id"].as_str().expect("user id").to_owned();
    assert!(user.starts_with("lu") && user.len() == 58);

    let id = json(&libra(&d, &["id", "--json"]));
    assert_eq!(id["user_id"], user.as_str());

    let list = json(&libra(&d, &["--json", "log", "list"]));
    let logs = list.as_array().expect("array");
    assert_eq!(logs.len(), 2);
    assert!(logs.iter().any(|l| l["author"] == user.as_str() && l["seq"] == 2));

    let replay = json(&libra(&d, &["--json", "log", "replay", &user]));
    assert_eq!(replay["verified"], true);
    assert_eq!(replay["entries"][0]["payload"]["name"], "Alice");
    assert_eq!(replay["entries"][1]["kind_name"], "device_cert");
    assert_eq!(replay["entries"][1]["payload"]["signature_valid"], true);

    let show = json(&libra(&d, &["--json", "log", "show", "device"]));
    assert_eq!(show[0]["kind_name"], "device_hello");

    let verify = libra(&d, &["log", "verify"]);
    assert!(verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).contains("all chains"));

    let forks = json(&libra(&d, &["--json", "log", "forks"]));
    assert_eq!(forks, serde_json::json!([]));

    // Secrets are private to the owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("identity.key")).expect("key file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn verify_reports_damage_and_exits_nonzero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("node");
    let init = json(&libra(&d, &["--json", "init"]));
    let (_, device) = libra_engine::text::decode_id(init["device_id"].as_str().expect("device")).expect("id");
    {
        // Point the device log's head record at a seq the chain does not reach.
        let db = fjall::Database::builder(d.join("store")).open().expect("fjall");
        let heads = db.keyspace("heads", fjall::KeyspaceCreateOptions::default).expect("heads");
        let raw = heads.get(device).expect("get").expect("head");
        let mut head: libra_engine::store::Head = libra_engine::codec::decode(&raw).expect("head record");
        head.seq = 7;
        heads.insert(device, libra_engine::codec::encode(&head)).expect("insert");
        db.persist(fjall::PersistMode::SyncAll).expect("persist");
    }
    let out = libra(&d, &["--json", "log", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let problems = v["problems"].as_array().expect("problems");
    assert!(problems.iter().any(|p| p["problem"].as_str().unwrap_or("").contains("head record says seq 7")), "{v}");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("node");
    let out = libra(&d, &["id"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("libra init"));

    json(&libra(&d, &["--json", "init"]));
    let again = libra(&d, &["init"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let bad = libra(&d, &["log", "show", "lu-not-an-id"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not an author"));

    let long_name = "x".repeat(100);
    let e = libra(&dir.path().join("other"), &["init", "--name", &long_name]);
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("1 to 64 bytes"));
}

#[test]
fn vectors_generate_is_deterministic_and_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        let out = Command::new(env!("CARGO_BIN_EXE_libra")).args(["vectors", "generate"]).arg(d).output().expect("run");
        assert!(out.status.success());
    }
    for name in ["identity.json", "entries.json", "chains.json", "forks.json", "sync.json", "messaging.json"] {
        assert_eq!(std::fs::read(a.join(name)).expect("a"), std::fs::read(b.join(name)).expect("b"), "{name}");
    }
    let out =
        Command::new(env!("CARGO_BIN_EXE_libra")).args(["--json", "vectors", "verify"]).arg(&a).output().expect("run");
    let v = json(&out);
    assert_eq!(v["ok"], true);

    // A damaged file is reported and the exit code says so.
    let text = std::fs::read_to_string(a.join("entries.json")).expect("read");
    std::fs::write(a.join("entries.json"), text.replacen("\"seq\": 1", "\"seq\": 9", 1)).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_libra")).args(["vectors", "verify"]).arg(&a).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
}
