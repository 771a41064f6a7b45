//! A full disk, for real: a 16 MiB tmpfs in a private mount namespace (`unshare -m`, which the
//! test runs itself), filled to the last byte. Writes fail with a clear error, reads keep
//! working, nothing stored is damaged, and once space is freed the same running engine writes
//! again — no restart. Trials alternate our own appends and a peer's entries ingested.

use std::io::Write;
use std::process::Command;

use libra_engine::engine::Engine;
use libra_engine::log::{Entry, EntryId};
use libra_engine::payload::{Payload, Profile};

const CHILD: &str = "LIBRA_DISKFULL_DIR";

fn payload(i: usize) -> Payload {
    // Profiles are small; the name is padded to make every write cost journal space.
    Payload::Profile(Profile { name: format!("{i:0>60}") })
}

#[test]
fn a_full_disk_fails_writes_clearly_and_writing_resumes_once_space_is_back() {
    if let Ok(dir) = std::env::var(CHILD) {
        return in_namespace(std::path::Path::new(&dir));
    }
    let mnt = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let script = format!(
        "mount -t tmpfs -o size=16m tmpfs '{}' && exec '{}' --exact diskfull::a_full_disk_fails_writes_clearly_and_writing_resumes_once_space_is_back --nocapture --test-threads 1",
        mnt.path().display(),
        exe.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env(CHILD, mnt.path())
        .output()
        .expect("unshare (util-linux) is needed for this test");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{log}");
    assert!(out.status.success(), "the disk-full run failed:\n{log}");
    assert!(log.contains("disk-full run complete"), "the child did not run the scenario:\n{log}");
}

/// One write of the kind a trial tests: our own append, or a peer's entries through the
/// store's ingest, on the engine's writer. Returns the ids it stored.
fn write(engine: &Engine, ingest: bool, i: usize, peer: &[Entry], at: &mut usize) -> Result<Vec<EntryId>, String> {
    if !ingest {
        let e = engine.write(move |n| n.append_device(&payload(i))).map_err(|e| e.to_string())?;
        return e.map(|e| vec![e.id]).map_err(|e| e.to_string());
    }
    let batch: Vec<Entry> = peer[*at..(*at + 5).min(peer.len())].to_vec();
    assert!(!batch.is_empty(), "the peer's chain is used up: fewer trials");
    let ids: Vec<EntryId> = batch.iter().map(|e| e.id).collect();
    let now = libra_engine::clock::wall_ms();
    let r = engine.write(move |n| n.store.ingest(batch, now)).map_err(|e| e.to_string())?;
    let r = r.map_err(|e| e.to_string())?;
    // A retry after a failed write may find the batch held already: that write's outcome was
    // unknown, and the store, reopened, kept it.
    assert_eq!(r.accepted + r.duplicates, ids.len(), "a batch is taken whole or not at all");
    *at += ids.len();
    Ok(ids)
}

fn fill(path: &std::path::Path) -> std::fs::File {
    let mut filler = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while filler.write_all(&chunk).is_ok() {}
    while filler.write_all(&chunk[..512]).is_ok() {}
    let _ = filler.sync_all();
    filler
}

fn in_namespace(dir: &std::path::Path) {
    // Trials alternate own appends and ingest; more with LIBRA_DISKFULL_TRIALS.
    let trials: usize = std::env::var("LIBRA_DISKFULL_TRIALS").ok().and_then(|t| t.parse().ok()).unwrap_or(4);
    let engine = Engine::init(&dir.join("node"), "Disk").expect("init");
    let peer = crate::util::chain(&crate::util::key("disk peer"), 20_000);
    let mut at = 0;
    let mut stored: Vec<EntryId> = Vec::new();
    for i in 0..20 {
        stored.extend(write(&engine, i % 2 == 1, i, &peer, &mut at).expect("write"));
    }
    let filler_path = dir.join("filler");
    for trial in 0..trials {
        let ingest = trial % 2 == 1;
        // Fill the file system to the last byte.
        let filler = fill(&filler_path);
        // Writes fail now, each with an error that says so; none panics.
        let mut failure = None;
        for i in 0..5_000 {
            match write(&engine, ingest, 100_000 * (trial + 1) + i, &peer, &mut at) {
                Ok(ids) => stored.extend(ids),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let failure = failure.expect("writes kept succeeding on a full disk");
        println!("trial {trial} ({}): {failure}", if ingest { "ingest" } else { "append" });
        // Reads keep working, and everything acknowledged is there.
        let count = engine.read(|n| n.store.entry_count()).expect("reads work while the disk is full");
        assert!(count >= stored.len() as u64);
        assert!(failure.contains("No space left"), "unclear error: {failure}");
        // More writes while still full: each fails or (once reopening freed journal space)
        // succeeds durably; none hangs or panics.
        for i in 0..5 {
            if let Ok(ids) = write(&engine, ingest, 50_000 + i, &peer, &mut at) {
                stored.extend(ids);
            }
        }
        // Space comes back: the same engine writes again, both kinds.
        drop(filler);
        std::fs::remove_file(&filler_path).expect("free space");
        for kind in [false, true] {
            let ids = write(&engine, kind, 99_999, &peer, &mut at).expect("the engine writes again once space is back");
            stored.extend(ids);
        }
        for id in &stored {
            let held = engine.read(|n| n.store.get(id).expect("read").is_some()).expect("read");
            assert!(held, "an acknowledged entry is missing after the disk was full");
        }
        let problems = engine.read(|n| n.store.verify().expect("verify")).expect("read");
        assert!(problems.is_empty(), "{problems:?}");
    }
    engine.shutdown();
    // And it opens again cleanly, with everything acknowledged.
    let reopened = Engine::open(&dir.join("node")).expect("reopen");
    for id in &stored {
        assert!(reopened.read(|n| n.store.get(id).expect("read").is_some()).expect("read"), "lost after reopen");
    }
    println!("disk-full trials: {trials}, {} entries acknowledged and all present", stored.len());
    println!("disk-full run complete");
}
