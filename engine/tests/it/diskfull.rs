//! A full disk, for real: a 16 MiB tmpfs in a private mount namespace (`unshare -m`, which the
//! test runs itself), filled to the last byte. Writes fail with a clear error, reads keep
//! working, nothing stored is damaged, and once space is freed the same running engine writes
//! again — no restart.

use std::io::Write;
use std::process::Command;

use libra_engine::engine::Engine;
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

fn in_namespace(dir: &std::path::Path) {
    let engine = Engine::init(&dir.join("node"), "Disk").expect("init");
    let mut stored = Vec::new();
    for i in 0..20 {
        let e = engine.write(move |n| n.append_device(&payload(i))).expect("engine").expect("append");
        stored.push(e.id);
    }
    // Fill the file system to the last byte.
    let filler_path = dir.join("filler");
    let mut filler = std::fs::File::create(&filler_path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while filler.write_all(&chunk).is_ok() {}
    while filler.write_all(&chunk[..512]).is_ok() {}
    let _ = filler.sync_all();
    // Writes fail now, each with an error that says so; none panics.
    let mut failure = None;
    for i in 20..5_000 {
        match engine.write(move |n| n.append_device(&payload(i))) {
            Ok(Ok(e)) => stored.push(e.id),
            Ok(Err(e)) => {
                failure = Some(e.to_string());
                break;
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let failure = failure.expect("writes kept succeeding on a full disk");
    println!("write on a full disk: {failure}");
    // Reads keep working, and everything acknowledged is there.
    let count = engine.read(|n| n.store.entry_count()).expect("reads work while the disk is full");
    assert!(count >= stored.len() as u64);
    assert!(failure.contains("No space left") || failure.contains("space"), "unclear error: {failure}");
    // More writes while still full: each fails or (once reopening freed journal space)
    // succeeds durably; none hangs or panics.
    for i in 0..5 {
        if let Ok(Ok(e)) = engine.write(move |n| n.append_device(&payload(50_000 + i))) {
            stored.push(e.id);
        }
    }
    // Space comes back: the same engine writes again.
    drop(filler);
    std::fs::remove_file(&filler_path).expect("free space");
    let after = engine
        .write(|n| n.append_device(&payload(99_999)))
        .expect("the engine writes again once space is back")
        .expect("append after space was freed");
    stored.push(after.id);
    for id in &stored {
        let held = engine.read(|n| n.store.get(id).expect("read").is_some()).expect("read");
        assert!(held, "an acknowledged entry is missing after the disk was full");
    }
    let problems = engine.read(|n| n.store.verify().expect("verify")).expect("read");
    assert!(problems.is_empty(), "{problems:?}");
    engine.shutdown();
    // And it opens again cleanly.
    let reopened = Engine::open(&dir.join("node")).expect("reopen");
    assert!(reopened.read(|n| n.store.get(&after.id).expect("read").is_some()).expect("read"));
    println!("disk-full run complete");
}
