//! A damaged key file never runs silently (spec/identity.md, section 8): one changed digit is
//! caught by its checksum; without a checksum (an older file), a secret that is not the one
//! this device published is caught when the node opens. Either way the error names the file,
//! and nothing in the store is touched.

use std::path::Path;

use libra_engine::keyfile::{KEY_FILE, KeyFileError};
use libra_engine::node::{Node, NodeError};

/// Edits the key file's JSON: `f` changes it; written back as it was formatted.
fn edit(dir: &Path, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let path = dir.join(KEY_FILE);
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    f(v.as_object_mut().expect("object"));
    std::fs::write(&path, serde_json::to_string_pretty(&v).expect("json")).expect("write");
}

/// One hex digit of `field` changed.
fn flip(map: &mut serde_json::Map<String, serde_json::Value>, field: &str) {
    let s = map[field].as_str().expect("hex").to_owned();
    let first = if s.starts_with('0') { "1" } else { "0" };
    map.insert(field.into(), format!("{first}{}", &s[1..]).into());
}

fn open_err(dir: &Path) -> NodeError {
    match Node::open(dir) {
        Ok(_) => panic!("a damaged key file opened"),
        Err(e) => e,
    }
}

#[test]
fn one_changed_digit_is_caught_by_the_checksum() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ann");
    drop(Node::init(&dir, "Ann").expect("init"));
    let good = std::fs::read_to_string(dir.join(KEY_FILE)).expect("read");
    for field in ["agreement_secret", "device_secret", "user_secret"] {
        edit(&dir, |m| flip(m, field));
        let e = open_err(&dir);
        assert!(matches!(e, NodeError::Keys(KeyFileError::Damaged { .. })), "{field}: {e}");
        assert!(e.to_string().contains(KEY_FILE) && e.to_string().contains("checksum"), "{e}");
        std::fs::write(dir.join(KEY_FILE), &good).expect("restore");
    }
    // The store was never touched: the good file opens it as before.
    let node = Node::open(&dir).expect("opens again");
    assert_eq!(node.name().as_deref(), Some("Ann"));
}

#[test]
fn without_a_checksum_a_secret_that_was_not_published_is_caught_at_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ann");
    drop(Node::init(&dir, "Ann").expect("init"));
    let good = std::fs::read_to_string(dir.join(KEY_FILE)).expect("read");
    // A file written before checksums existed opens.
    edit(&dir, |m| {
        m.remove("checksum");
    });
    drop(Node::open(&dir).expect("an older file without a checksum opens"));
    for (field, says) in
        [("agreement_secret", "agreement key"), ("user_secret", "user key"), ("device_secret", "none of the device")]
    {
        edit(&dir, |m| flip(m, field));
        let e = open_err(&dir);
        assert!(matches!(e, NodeError::KeyMismatch { .. }), "{field}: {e}");
        assert!(e.to_string().contains(KEY_FILE) && e.to_string().contains(says), "{field}: {e}");
        std::fs::write(dir.join(KEY_FILE), &good).expect("restore");
        edit(&dir, |m| {
            m.remove("checksum");
        });
    }
    // Another identity's key file, whole and with a valid checksum, does not open this store.
    let other = tmp.path().join("ben");
    drop(Node::init(&other, "Ben").expect("init"));
    std::fs::copy(other.join(KEY_FILE), dir.join(KEY_FILE)).expect("copy");
    assert!(matches!(open_err(&dir), NodeError::KeyMismatch { .. }));
    std::fs::write(dir.join(KEY_FILE), &good).expect("restore");
    drop(Node::open(&dir).expect("opens again"));
}

/// A key file others may read is refused until it is private again (the message says how).
#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ann");
    drop(Node::init(&dir, "Ann").expect("init"));
    let path = dir.join(KEY_FILE);
    assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = open_err(&dir);
    assert!(matches!(e, NodeError::Keys(KeyFileError::TooOpen { mode: 0o644, .. })), "{e}");
    assert!(e.to_string().contains("chmod 600") && e.to_string().contains(KEY_FILE), "{e}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    drop(Node::open(&dir).expect("private again, it opens"));
}

#[test]
fn a_rotation_whose_key_file_cannot_be_written_keeps_the_key_on_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("a");
    let mut n = Node::init(&dir, "ann").expect("init");
    let before = n.secrets.device.agreement_public();
    let history = n.secrets.history.len();
    // A directory where the new key file is written first: the write fails.
    let blocker = dir.join(format!("{KEY_FILE}.new"));
    std::fs::create_dir_all(blocker.join("x")).expect("blocker");
    assert!(n.rotate_agreement().is_err(), "the write fails");
    assert_eq!(n.secrets.device.agreement_public(), before, "still the key on disk");
    assert_eq!(n.secrets.history.len(), history);
    assert_eq!(n.secrets.retired_ms.len(), history);
    drop(n);
    let mut n = Node::open(&dir).expect("reopen");
    assert_eq!(n.secrets.device.agreement_public(), before);
    // Once the file can be written, the rotation goes through and survives a reopen.
    std::fs::remove_dir_all(&blocker).expect("unblock");
    n.rotate_agreement().expect("rotate");
    let after = n.secrets.device.agreement_public();
    assert_ne!(after, before);
    drop(n);
    assert_eq!(Node::open(&dir).expect("reopen").secrets.device.agreement_public(), after);
}
