//! The vendored fjall's worker pool (engine/vendor/fjall/LIBRA-PATCH.md, change 9): the worker
//! kept free for flushes hands compactions back to the queue, and must not spin on them.

use std::time::{Duration, Instant};

#[test]
fn a_worker_handing_compactions_back_pauses_instead_of_spinning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = fjall::Database::builder(dir.path()).worker_threads(2).open().expect("open");
    let ks = db.keyspace("k", || fjall::KeyspaceCreateOptions::default().max_memtable_size(1 << 20)).expect("keyspace");
    let start = Instant::now();
    // Random keys over many small memtables: each flush asks both workers to compact, and the
    // tables overlap, so one worker compacts for a while as the other gets the requests.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..150_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ks.insert(x.to_be_bytes(), [7u8; 200]).expect("insert");
    }
    // Until no compaction has run for a while.
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_millis(300) && start.elapsed() < Duration::from_secs(120) {
        if db.active_compactions() > 0 {
            quiet_since = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed_ms = start.elapsed().as_millis();
    let handoffs = db.compaction_handoffs() as u128;
    assert!(db.compactions_completed() > 0, "the test must make fjall compact");
    assert!(handoffs > 0, "the test must make worker 0 hand a compaction back");
    // Each hand-back is followed by a pause of 1 ms: at most one per millisecond. Without it,
    // worker 0 took its own request back hundreds of thousands of times a second.
    assert!(handoffs <= elapsed_ms + 1, "{handoffs} hand-backs in {elapsed_ms} ms: worker 0 spins");
}
