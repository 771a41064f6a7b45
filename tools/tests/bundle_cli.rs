//! Sneakernet: logs carried in bundle files between two people who are never online together,
//! through the real `libra` binary; damaged, cut, forged and repeated bundles.

mod common;

use std::path::Path;
use std::process::Command;

use common::{copy_dir, json, libra, pair};
use serde_json::Value;

/// `import`'s report (exit 0 when clean, 1 when something was refused or damaged).
fn import(data: &Path, file: &Path) -> (i32, Value) {
    let out = libra(data, &["--json", "bundle", "import", &file.display().to_string()]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), v)
}

fn texts(data: &Path, chat: &str) -> Vec<String> {
    let v = json(&libra(data, &["--json", "chat", chat]));
    v["messages"].as_array().expect("messages").iter().filter_map(|m| m["text"].as_str().map(str::to_owned)).collect()
}

/// `(offset, kind, count, length)` of each section after the magic.
fn sections(bytes: &[u8]) -> Vec<(usize, u8, u32, usize)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 9 <= bytes.len() {
        let count = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().expect("4"));
        let len = u32::from_be_bytes(bytes[at + 5..at + 9].try_into().expect("4")) as usize;
        out.push((at, bytes[at], count, len));
        at += 9 + len + 32;
    }
    out
}

#[test]
fn two_people_who_are_never_online_together_talk_by_bundle_and_the_ack_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = pair(dir.path());
    json(&libra(&a, &["--json", "send", "Ben", "hello by USB stick"]));
    let to_ben = dir.path().join("to-ben.libra");
    let wrote = json(&libra(&a, &["--json", "bundle", "export", &to_ben.display().to_string(), "--for", "Ben"]));
    assert!(wrote["entries"].as_u64().expect("entries") >= 3, "{wrote}");
    // Anyone can audit what it carries without importing it.
    let audit = json(&libra(&b, &["--json", "log", "replay", "--bundle", &to_ben.display().to_string()]));
    assert_eq!(audit["verified"], true, "{audit}");
    let carried: u64 = audit["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|l| l["entries"].as_array().map_or(0, |e| e.len() as u64))
        .sum();
    assert_eq!(carried, wrote["entries"].as_u64().expect("entries"));
    assert!(texts_err(&b, "Ann"), "nothing was imported by the audit");
    let (code, rep) = import(&b, &to_ben);
    assert_eq!((code, rep["complete"].as_bool()), (0, Some(true)), "{rep}");
    assert_eq!(texts(&b, "Ann"), vec!["hello by USB stick"]);
    // The audit of the chat: where the message comes from, and that it verifies.
    let audit = json(&libra(&b, &["--json", "audit", "chat", "Ann"]));
    assert_eq!(audit["verified"], true, "{audit}");
    let m = &audit["messages"][0];
    let ann_device = json(&libra(&a, &["--json", "id"]))["device_id"].clone();
    assert_eq!(
        (&m["device"], &m["signature_verified"], &m["forked_author"]),
        (&ann_device, &Value::from(true), &Value::from(false)),
        "{m}"
    );
    assert!(m["seq"].as_u64().is_some_and(|s| s >= 2), "{m}");
    assert!(libra(&b, &["audit", "verify"]).status.success());
    // Again: nothing changes.
    let (code, again) = import(&b, &to_ben);
    assert_eq!((code, again["accepted"].as_u64()), (0, Some(0)), "{again}");
    assert_eq!(again["duplicates"], rep["accepted"]);
    // Ben's node acknowledged on import; his bundle carries the ack back to Ann.
    let to_ann = dir.path().join("to-ann.libra");
    json(&libra(&b, &["--json", "bundle", "export", &to_ann.display().to_string(), "--for", "Ann"]));
    let (code, _) = import(&a, &to_ann);
    assert_eq!(code, 0);
    let v = json(&libra(&a, &["--json", "chat", "Ben"]));
    assert_eq!(v["messages"][0]["delivery"], "delivered", "{v}");

    // The next bundle for Ben carries only what came since the first.
    json(&libra(&a, &["--json", "send", "Ben", "second trip of the stick"]));
    let again = dir.path().join("to-ben-2.libra");
    let delta = json(&libra(&a, &["--json", "bundle", "export", &again.display().to_string(), "--for", "Ben"]));
    assert!(delta["entries"].as_u64() < wrote["entries"].as_u64(), "{delta} vs {wrote}");
    let (code, rep) = import(&b, &again);
    assert_eq!((code, rep["duplicates"].as_u64()), (0, Some(0)), "{rep}");
    assert_eq!(texts(&b, "Ann"), vec!["hello by USB stick", "second trip of the stick"]);
    // --full carries everything again (when a bundle was lost).
    let full =
        json(&libra(&a, &["--json", "bundle", "export", &again.display().to_string(), "--for", "Ben", "--full"]));
    assert!(full["entries"].as_u64() > wrote["entries"].as_u64(), "{full}");
}

#[test]
fn damaged_cut_and_forged_bundles_are_reported_and_lose_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = pair(dir.path());
    json(&libra(&a, &["--json", "send", "Ben", "one"]));
    json(&libra(&a, &["--json", "send", "Ben", "two"]));
    let file = dir.path().join("all.libra");
    json(&libra(&a, &["--json", "bundle", "export", &file.display().to_string(), "--all"]));
    let good = std::fs::read(&file).expect("read");
    let secs = sections(&good);
    assert!(secs.len() >= 3, "a section per log and the table of contents: {secs:?}");
    assert_eq!(secs.last().expect("toc").1, 0, "the table of contents comes last");

    // Cut at every section boundary (and in the middle of the last entries section): the
    // complete sections before the cut are imported, the rest is reported, exit 1.
    for (i, (at, ..)) in secs.iter().enumerate() {
        let cut = dir.path().join(format!("cut{i}.libra"));
        std::fs::write(&cut, &good[..*at]).expect("write");
        let fresh = dir.path().join(format!("fresh{i}"));
        json(&libra(&fresh, &["--json", "init", "--name", "Cat"]));
        let (code, rep) = import(&fresh, &cut);
        assert_eq!(code, 1, "{rep}");
        assert_eq!(rep["complete"], false);
        assert_eq!(rep["sections"].as_u64(), Some(i as u64), "{rep}");
        assert!(rep["problems"][0].as_str().expect("problem").contains("cut short"), "{rep}");
    }

    // A flipped bit in one section: that section is refused, the others are taken.
    let (at, _, _, len) = secs[1];
    let mut flipped = good.clone();
    flipped[at + 9 + len / 2] ^= 0x10;
    let f = dir.path().join("flipped.libra");
    std::fs::write(&f, &flipped).expect("write");
    let (code, rep) = import(&b, &f);
    assert_eq!(code, 1);
    assert!(
        rep["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .any(|p| p.as_str().is_some_and(|p| p.contains("section 1: checksum mismatch"))),
        "{rep}"
    );
    assert!(rep["accepted"].as_u64().expect("accepted") > 0, "the undamaged sections were imported: {rep}");

    // A forged entry with a recomputed section checksum (the table of contents, which lists the
    // original checksums, then disagrees): refused by validation, reported exactly.
    let mut forged = good.clone();
    // Section 1: the part Ben could not take above.
    let (at, kind, count, len) = secs[1];
    assert_eq!(kind, 1);
    let body_start = at + 9;
    let last = body_start + len - 1; // inside the last entry of the section (its payload)
    forged[last] ^= 0x01;
    let mut h = blake3::Hasher::new();
    h.update(&forged[at..body_start + len]);
    forged[body_start + len..body_start + len + 32].copy_from_slice(h.finalize().as_bytes());
    let g = dir.path().join("forged.libra");
    std::fs::write(&g, &forged).expect("write");
    let fresh = dir.path().join("fresh-forged");
    json(&libra(&fresh, &["--json", "init", "--name", "Dan"]));
    let before = json(&libra(&fresh, &["--json", "log", "list"]));
    let (code, rep) = import(&fresh, &g);
    assert_eq!(code, 1, "{rep}");
    assert!(rep["problems"][0].as_str().is_some_and(|p| p.contains("table of contents")), "{rep}");
    assert_eq!(rep["accepted"].as_u64(), Some(0), "Dan wants none of these logs: {rep}");
    assert_eq!(rep["not_for_us"].as_u64(), Some(good_entries(&secs)), "{rep}");
    assert_eq!(json(&libra(&fresh, &["--json", "log", "list"])), before);
    let (code, rep) = import(&b, &g);
    assert_eq!(code, 1, "{rep}");
    let rejected = rep["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 1, "{rep}");
    assert_eq!(rejected[0]["seq"].as_u64(), Some(u64::from(count)), "{rep}");
    // Ben's store is intact and still complete.
    assert!(libra(&b, &["log", "verify"]).status.success());
    assert_eq!(texts(&b, "Ann"), vec!["one", "two"]);

    // The audit of the forged bundle finds the forged entry.
    let audit = libra(&b, &["--json", "log", "replay", "--bundle", &g.display().to_string()]);
    assert_eq!(audit.status.code(), Some(1));
    let audit: Value = serde_json::from_slice(&audit.stdout).expect("json");
    assert_eq!(audit["verified"], false);
    assert!(audit["logs"].as_array().expect("logs").iter().any(|l| l["failure"].as_str().is_some()), "{audit}");

    // Not a bundle at all.
    let junk = dir.path().join("junk.libra");
    std::fs::write(&junk, b"hello").expect("write");
    let out = libra(&b, &["--json", "bundle", "import", &junk.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Libra bundle"));
}

fn good_entries(secs: &[(usize, u8, u32, usize)]) -> u64 {
    secs.iter().filter(|s| s.1 == 1).map(|s| u64::from(s.2)).sum()
}

/// Whether `chat` does not resolve yet (nothing of that contact's messages arrived).
fn texts_err(data: &Path, chat: &str) -> bool {
    let out = libra(data, &["--json", "chat", chat]);
    !out.status.success()
        || serde_json::from_slice::<Value>(&out.stdout)
            .map_or(true, |v| v["messages"].as_array().is_none_or(|m| m.is_empty()))
}

/// Files ride along (`--with-files`): each blob section is verified against the file's root;
/// a damaged one costs only its range, and a good copy of the bundle completes the file.
#[test]
fn files_travel_by_bundle_and_a_damaged_piece_costs_only_its_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = pair(dir.path());
    let content: Vec<u8> = (0..20_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
    let src = dir.path().join("slides.pdf");
    std::fs::write(&src, &content).expect("write");
    let sent = json(&libra(&a, &["--json", "send", "Ben", "--file", &src.display().to_string(), "the slides"]));
    let id = sent["file"]["id"].as_str().expect("id").to_owned();
    let stick = dir.path().join("stick.libra");
    let path = stick.display().to_string();
    let wrote = json(&libra(&a, &["--json", "bundle", "export", &path, "--for", "Ben", "--with-files"]));
    assert_eq!(wrote["files"], 1);
    // Damage one byte in the middle of the second blob section (its checksum no longer matches).
    let mut bytes = std::fs::read(&stick).expect("read");
    let blobs: Vec<_> = sections(&bytes).into_iter().filter(|s| s.1 == 2).collect();
    assert_eq!(blobs.len(), 3, "20 MB in 8 MiB sections");
    let (at, _, _, len) = blobs[1];
    bytes[at + 9 + len / 2] ^= 0x40;
    let damaged = dir.path().join("damaged.libra");
    std::fs::write(&damaged, &bytes).expect("write");
    let (code, rep) = import(&b, &damaged);
    assert_eq!(code, 1, "{rep}");
    assert_eq!(rep["accepted"].as_u64().map(|n| n > 0), Some(true), "{rep}");
    assert_eq!(rep["files"], 0);
    assert!(rep["problems"].to_string().contains("checksum"), "{rep}");
    let listed = json(&libra(&b, &["--json", "file", "list"]));
    assert_eq!(listed[0]["state"], "partial", "{listed}");
    assert!(listed[0]["percent"].as_f64().is_some_and(|p| p > 50.0 && p < 100.0), "{listed}");
    // A good copy of the bundle brings the rest: the file is whole and opens.
    let (code, rep) = import(&b, &stick);
    assert_eq!((code, rep["files"].as_u64()), (0, Some(1)), "{rep}");
    let out = dir.path().join("got.pdf");
    json(&libra(&b, &["--json", "file", "get", &id, &out.display().to_string()]));
    assert_eq!(std::fs::read(&out).expect("read"), content);
    // `log replay` on the bundle: its entries, and its blob sections checked against their roots.
    let replay = libra(&b, &["--json", "log", "replay", "--bundle", &stick.display().to_string()]);
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    // A bundle for Ben carries no file of a chat he is not in: Ann's file to herself (notes).
    let own = dir.path().join("own.txt");
    std::fs::write(&own, "only mine").expect("write");
    let me = json(&libra(&a, &["--json", "id"]))["user_id"].as_str().expect("user").to_owned();
    json(&libra(&a, &["--json", "send", &me, "--file", &own.display().to_string()]));
    let again = dir.path().join("again.libra");
    let path = again.display().to_string();
    let wrote = json(&libra(&a, &["--json", "bundle", "export", &path, "--for", "Ben", "--with-files", "--full"]));
    assert_eq!(wrote["files"], 1, "only the slides: {wrote}");
}

/// Serves `data` on loopback until dropped; returns the address it listens on.
fn serve(data: &Path) -> (Served, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_libra"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("read");
    let addr = line.trim().strip_prefix("listening on ").expect("listening line").to_owned();
    (Served(child, reader), addr)
}

/// The child, and its standard output kept open (it prints more than one line).
struct Served(std::process::Child, #[allow(dead_code)] std::io::BufReader<std::process::ChildStdout>);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_bundle_after_a_network_sync_carries_only_what_came_since() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = pair(dir.path());
    json(&libra(&a, &["--json", "send", "Ben", "over the network"]));
    // Ann and Ben meet once on the network: the session tells each what the other holds.
    let dev_b = json(&libra(&b, &["--json", "id"]))["device_id"].as_str().expect("device").to_owned();
    {
        let (_served, addr) = serve(&b);
        json(&libra(&a, &["--json", "peer", "allow", &dev_b, "--address", &addr]));
        let out = json(&libra(&a, &["--json", "sync", &dev_b]));
        assert_eq!(out["synced"], true, "{out}");
        assert_eq!(texts(&b, "Ann"), vec!["over the network"]);
    }
    // Offline again: a bundle for Ben carries nothing he received on the network...
    let first = dir.path().join("to-ben-1.libra");
    let nothing = json(&libra(&a, &["--json", "bundle", "export", &first.display().to_string(), "--for", "Ben"]));
    assert_eq!(nothing["entries"], 0, "{nothing}");
    // ...only what came since, and it reads on his side.
    json(&libra(&a, &["--json", "send", "Ben", "by stick after that"]));
    let second = dir.path().join("to-ben-2.libra");
    let delta = json(&libra(&a, &["--json", "bundle", "export", &second.display().to_string(), "--for", "Ben"]));
    assert_eq!(delta["entries"], 1, "{delta}");
    let (code, rep) = import(&b, &second);
    assert_eq!((code, rep["accepted"].as_u64()), (0, Some(1)), "{rep}");
    assert_eq!(texts(&b, "Ann"), vec!["over the network", "by stick after that"]);
    // The serving side learned the same: Ben's bundle for Ann carries only his acknowledgements
    // (one may have reached Ann as a live push after the session was synced: that does not
    // count as held, so it may come again), not the rest of his logs that Ann pulled.
    let back = dir.path().join("to-ann.libra");
    let acks = json(&libra(&b, &["--json", "bundle", "export", &back.display().to_string(), "--for", "Ann"]));
    let (code, rep) = import(&a, &back);
    assert_eq!(code, 0, "{rep} after {acks}");
    assert!(acks["entries"].as_u64().is_some_and(|n| (1..=2).contains(&n)), "{acks}");
    assert!(rep["accepted"].as_u64().is_some_and(|n| n >= 1), "the new ack is among them: {rep}");
}

#[test]
fn a_bundle_through_a_mutual_contact_reaches_its_recipient_and_the_ack_comes_back_the_same_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |n: &str| dir.path().join(n);
    for n in ["ann", "ben", "cy"] {
        json(&libra(&d(n), &["--json", "init", "--name", n]));
    }
    let inv = |n: &str| json(&libra(&d(n), &["--json", "invite"]))["invite"].as_str().expect("invite").to_owned();
    for (x, y) in [("ann", "ben"), ("ann", "cy"), ("ben", "cy")] {
        let (ix, iy) = (inv(x), inv(y));
        json(&libra(&d(x), &["--json", "contact", "add", &iy]));
        json(&libra(&d(y), &["--json", "contact", "add", &ix]));
    }
    json(&libra(&d("ann"), &["--json", "send", "ben", "for Ben, carried by Cy"]));
    // Ann's bundle goes to Cy, who cannot read it; it says, signed, whom Ann chose.
    let to_cy = d("ann-to-cy.libra");
    let wrote = json(&libra(&d("ann"), &["--json", "bundle", "export", &to_cy.display().to_string(), "--for", "cy"]));
    assert_eq!(wrote["grants"], 2, "Ann grants Ben and Cy: {wrote}");
    let audit = json(&libra(&d("cy"), &["--json", "log", "replay", "--bundle", &to_cy.display().to_string()]));
    assert_eq!((audit["verified"].as_bool(), audit["grants"][0]["tags"].as_u64()), (Some(true), Some(2)), "{audit}");
    let (code, rep) = import(&d("cy"), &to_cy);
    assert_eq!((code, rep["grants"].as_u64()), (0, Some(1)), "{rep}");
    // Cy's bundle for Ben carries Ann's message; Ben reads it.
    let to_ben = d("cy-to-ben.libra");
    json(&libra(&d("cy"), &["--json", "bundle", "export", &to_ben.display().to_string(), "--for", "ben"]));
    let (code, rep) = import(&d("ben"), &to_ben);
    assert_eq!(code, 0, "{rep}");
    assert_eq!(texts(&d("ben"), "ann"), vec!["for Ben, carried by Cy"]);
    // Ben's acknowledgement travels back through Cy too.
    let back = d("ben-to-cy.libra");
    json(&libra(&d("ben"), &["--json", "bundle", "export", &back.display().to_string(), "--for", "cy"]));
    assert_eq!(import(&d("cy"), &back).0, 0);
    let to_ann = d("cy-to-ann.libra");
    json(&libra(&d("cy"), &["--json", "bundle", "export", &to_ann.display().to_string(), "--for", "ann"]));
    assert_eq!(import(&d("ann"), &to_ann).0, 0);
    let v = json(&libra(&d("ann"), &["--json", "chat", "ben"]));
    assert_eq!(v["messages"][0]["delivery"], "delivered", "{v}");
    // A forged statement (one byte of a tag changed, checksums made to match) is refused.
    let mut bytes = std::fs::read(&to_cy).expect("read");
    let secs = sections(&bytes);
    let &(at, kind, _, len) = secs.iter().find(|s| s.1 == 3).expect("a grant section");
    assert_eq!(kind, 3);
    let body_end = at + 9 + len;
    bytes[body_end - 67] ^= 1;
    let sum = *blake3::hash(&bytes[at..body_end]).as_bytes();
    bytes[body_end..body_end + 32].copy_from_slice(&sum);
    std::fs::write(d("forged.libra"), &bytes).expect("write");
    let (code, rep) = import(&d("ben"), &d("forged.libra"));
    assert_eq!((code, rep["grants"].as_u64()), (1, Some(0)), "{rep}");
    assert!(rep["problems"].to_string().contains("signature does not verify"), "{rep}");
}

#[test]
fn bundles_imported_in_any_order_give_the_same_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = pair(dir.path());
    // Three trips of the stick, each carrying only what came since the one before.
    let mut files = Vec::new();
    for (i, text) in ["first", "second", "third"].iter().enumerate() {
        json(&libra(&a, &["--json", "send", "Ben", text]));
        let f = dir.path().join(format!("trip{i}.libra"));
        json(&libra(&a, &["--json", "bundle", "export", &f.display().to_string(), "--for", "Ben"]));
        files.push(f);
    }
    // What was imported: the chat and Ann's logs (Ben's own log holds his acknowledgements,
    // one per import that brought messages: it differs with the number of trips, rightly).
    let state = |data: &Path| {
        let id = json(&libra(data, &["--json", "id"]));
        let own = [id["device_id"].clone(), id["user_id"].clone()];
        let logs = json(&libra(data, &["--json", "log", "list"]));
        let others: Vec<Value> =
            logs.as_array().expect("logs").iter().filter(|l| !own.contains(&l["author"])).cloned().collect();
        assert_eq!(others.len(), 2, "Ann's user and device logs: {logs}");
        (texts(data, "Ann"), others)
    };
    let mut states = Vec::new();
    for (k, order) in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]].iter().enumerate() {
        let ben = dir.path().join(format!("ben{k}"));
        copy_dir(&b, &ben);
        let mut last = Value::Null;
        for i in order {
            let (code, rep) = import(&ben, &files[*i]);
            assert_eq!(code, 0, "{order:?}: {rep}");
            last = rep;
        }
        assert_eq!(last["waiting"], 0, "{order:?}: nothing waits once all are in: {last}");
        assert!(libra(&ben, &["audit", "verify"]).status.success());
        states.push(state(&ben));
    }
    assert_eq!(states[0].0, vec!["first", "second", "third"]);
    assert!(states.iter().all(|s| *s == states[0]), "{states:?}");
    // A later trip alone: its entries wait (and say so), nothing is refused; the missing one
    // lets them in.
    let ben = dir.path().join("ben-wait");
    copy_dir(&b, &ben);
    let (code, rep) = import(&ben, &files[2]);
    assert_eq!((code, rep["accepted"].as_u64()), (0, Some(0)), "{rep}");
    assert!(rep["waiting"].as_u64().is_some_and(|n| n >= 1), "{rep}");
    assert!(rep["rejected"].as_array().is_some_and(Vec::is_empty), "{rep}");
    let (code, rep) = import(&ben, &files[1]);
    assert_eq!(code, 0, "{rep}");
    assert!(rep["waiting"].as_u64().is_some_and(|n| n >= 1), "the third still waits for the first: {rep}");
    import(&ben, &files[0]);
    assert_eq!(texts(&ben, "Ann"), vec!["first", "second", "third"]);
}
