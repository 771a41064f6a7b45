//! `libra store repair`: every keyspace of a real store damaged in turn (its `current` file
//! removed, as a crash or a disk fault leaves it), then repaired through the real binary.

mod common;

use std::path::Path;

use common::{copy_dir, json, libra, pair};

fn texts(data: &Path) -> Vec<String> {
    let v = json(&libra(data, &["--json", "chat", "Ann"]));
    v["messages"].as_array().expect("messages").iter().filter_map(|m| m["text"].as_str().map(str::to_owned)).collect()
}

/// Ben's data directory, holding Ann's messages `said` (carried by a bundle).
fn ben_holding(dir: &Path, said: &[&str]) -> std::path::PathBuf {
    let (a, b) = pair(dir);
    for t in said {
        json(&libra(&a, &["--json", "send", "Ben", t]));
    }
    let file = dir.join("to-ben.libra");
    json(&libra(&a, &["--json", "bundle", "export", &file.display().to_string(), "--for", "Ben"]));
    json(&libra(&b, &["--json", "bundle", "import", &file.display().to_string()]));
    b
}

#[test]
fn every_damaged_keyspace_is_set_aside_and_what_the_logs_hold_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let said = ["one", "two", "three"];
    let b = ben_holding(dir.path(), &said);
    // Local state in no log: a setting.
    json(&libra(&b, &["--json", "file", "auto", "1234"]));
    assert_eq!(texts(&b), said);

    let ids: Vec<String> = std::fs::read_dir(b.join("store/keyspaces"))
        .expect("keyspaces")
        .flatten()
        .filter(|d| d.path().is_dir())
        .filter_map(|d| d.file_name().to_str().map(str::to_owned))
        .filter(|n| n.parse::<u64>().is_ok_and(|id| id > 0))
        .collect();
    assert!(ids.len() >= 11, "one directory per keyspace: {ids:?}");
    let mut lost_seen = Vec::new();
    for id in &ids {
        let ben = dir.path().join(format!("ben-{id}"));
        copy_dir(&b, &ben);
        let damaged = ben.join("store/keyspaces").join(id);
        std::fs::remove_file(damaged.join("current")).expect("damage");
        let refused = libra(&ben, &["--json", "chat", "Ann"]);
        assert!(!refused.status.success(), "keyspace {id}: a damaged store opened");

        let out = libra(&ben, &["--json", "store", "repair"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if err.contains("own log") {
            // The entries themselves were lost: nothing is swapped, the damage stays in place
            // (not removed), and the store still refuses to open the same way.
            assert!(!out.status.success());
            assert!(damaged.is_dir(), "keyspace {id}: the damaged directory was not put back");
            assert!(!libra(&ben, &["chat", "Ann"]).status.success());
            lost_seen.push("entries".to_owned());
            continue;
        }
        let r = json(&out);
        assert_eq!(r["opens"], true, "keyspace {id}: {r}");
        let aside = r["set_aside"][0]["to"].as_str().expect("set aside");
        assert!(Path::new(aside).is_dir(), "keyspace {id}: the damaged directory was not kept: {r}");
        assert!(Path::new(r["kept_at"].as_str().expect("kept")).join("keyspaces").is_dir(), "{r}");
        let lost: Vec<String> =
            r["lost"].as_array().expect("lost").iter().filter_map(|x| x.as_str().map(str::to_owned)).collect();
        assert_eq!(lost.len(), 1, "keyspace {id}: {r}");
        lost_seen.extend(lost.iter().cloned());
        // What the logs hold is back, and the store audits clean.
        assert_eq!(texts(&ben), said, "keyspace {id} ({lost:?})");
        assert!(libra(&ben, &["log", "verify"]).status.success(), "keyspace {id} ({lost:?})");
        // Local state survives unless it was what was lost.
        let auto = json(&libra(&ben, &["--json", "file", "auto"]));
        if lost != ["meta"] {
            assert!(auto.to_string().contains("1234"), "keyspace {id} ({lost:?}): {auto}");
        }
    }
    lost_seen.sort();
    assert_eq!(
        lost_seen,
        ["chats", "entries", "forks", "grants", "heads", "ids", "invites", "lognums", "meta", "peers", "views"],
        "every keyspace was damaged once"
    );
}

/// The table files of a keyspace directory, largest first.
fn tables(keyspace: &Path) -> Vec<std::path::PathBuf> {
    let mut t: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(keyspace.join("tables"))
        .map(|d| d.flatten().map(|e| (e.metadata().map_or(0, |m| m.len()), e.path())).collect())
        .unwrap_or_default();
    t.sort_by_key(|x| std::cmp::Reverse(x.0));
    t.into_iter().map(|(_, p)| p).collect()
}

#[test]
fn a_flipped_byte_inside_any_table_is_an_error_never_a_panic_and_repair_brings_the_logs_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let said = ["one", "two", "three"];
    let b = ben_holding(dir.path(), &said);
    assert_eq!(texts(&b), said);
    let ids: Vec<String> = std::fs::read_dir(b.join("store/keyspaces"))
        .expect("keyspaces")
        .flatten()
        .filter(|d| !tables(&d.path()).is_empty())
        .filter_map(|d| d.file_name().to_str().map(str::to_owned))
        .collect();
    assert!(ids.len() >= 8, "a clean close leaves the data in tables: {ids:?}");
    let mut outcomes: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for id in &ids {
        for at in [0.25, 0.5, 0.9] {
            let ben = dir.path().join(format!("ben-{id}-{at}"));
            copy_dir(&b, &ben);
            let table = tables(&ben.join("store/keyspaces").join(id)).remove(0);
            let mut bytes = std::fs::read(&table).expect("table");
            let i = (bytes.len() as f64 * at) as usize;
            bytes[i] ^= 0x20;
            std::fs::write(&table, &bytes).expect("damage");
            let out = libra(&ben, &["--json", "chat", "Ann"]);
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            eprintln!("keyspace {id} byte {i}: {} {}", out.status, err.trim());
            assert!(
                out.status.success() || (err.contains("damaged on disk") && err.contains("libra store repair")),
                "keyspace {id} byte {i}: not a clear error: {err}"
            );
            let out = libra(&ben, &["--json", "store", "repair"]);
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            eprintln!("  repair: {} {}", out.status, err.trim());
            match out.status.code() {
                Some(0) => {
                    let r = json(&out);
                    assert_eq!(texts(&ben), said, "keyspace {id} byte {i}: {r}");
                    assert!(libra(&ben, &["log", "verify"]).status.success(), "keyspace {id} byte {i}: {r}");
                    outcomes.entry("repaired").or_default().push(format!("{id}@{i}"));
                }
                // Part of a log could not be read: named, and the rest is in place.
                Some(1) => {
                    let r = json(&out);
                    let why = r["refused"].to_string();
                    assert!(why.contains("unreadable"), "keyspace {id} byte {i}: {r}");
                    assert!(libra(&ben, &["log", "verify"]).status.success(), "keyspace {id} byte {i}: {r}");
                    outcomes.entry("partly").or_default().push(format!("{id}@{i}"));
                }
                // Refused: says why, and the store is where it was, the damage in place.
                _ => {
                    assert!(
                        err.contains("fjall's own records") || err.contains("own log"),
                        "keyspace {id} byte {i}: {err}"
                    );
                    assert_eq!(
                        std::fs::read(&table).ok().as_ref(),
                        Some(&bytes),
                        "keyspace {id} byte {i}: the damaged table changed"
                    );
                    assert!(!err.contains("panicked"), "keyspace {id} byte {i}: {err}");
                    outcomes.entry("refused").or_default().push(format!("{id}@{i}"));
                }
            }
        }
    }
    eprintln!("{outcomes:?}");
    // Only fjall's own keyspace of names (0) and the log entries themselves (1, the device's
    // own log) cannot be rebuilt from elsewhere.
    for (what, cases) in &outcomes {
        if *what == "refused" {
            assert!(cases.iter().all(|c| c.starts_with("0@") || c.starts_with("1@")), "{outcomes:?}");
        }
    }
    assert!(outcomes.get("repaired").is_some_and(|r| r.len() >= 20), "{outcomes:?}");
}

/// A store whose journal was deleted before anything reached its tables holds nothing of this
/// device's log: opening says so, names the store and the journal, and changes nothing.
#[test]
fn a_deleted_journal_is_named_and_nothing_is_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("ann");
    json(&libra(&data, &["--json", "init", "--name", "Ann"]));
    let store = data.join("store");
    let journals: Vec<_> = std::fs::read_dir(&store)
        .expect("store")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jnl"))
        .collect();
    assert!(!journals.is_empty(), "init leaves its writes in the journal");
    for j in &journals {
        std::fs::remove_file(j).expect("remove");
    }
    let key = std::fs::read(data.join("identity.key")).expect("key file");
    let listing = |p: &Path| {
        let mut v: Vec<_> =
            std::fs::read_dir(p.join("keyspaces")).expect("keyspaces").map(|e| e.expect("e").path()).collect();
        v.sort();
        v
    };
    let before = listing(&store);
    for args in [&["id"][..], &["chats"][..]] {
        let out = libra(&data, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&store.display().to_string()) && err.contains("journal"), "{err}");
        assert!(err.contains("holds nothing of this device's own log"), "{err}");
    }
    assert_eq!(std::fs::read(data.join("identity.key")).expect("key file"), key, "the key file is untouched");
    assert_eq!(listing(&store), before, "no keyspace was removed");
}
