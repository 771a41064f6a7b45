//! What the start-up benches share: Ann's data directory holding `n` messages from Ben.

// The allocator the app ships with on Linux (app/src/main.rs).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::{Path, PathBuf};

/// Seeds `<dir>/ann` with Ben's `n` sealed messages, received and stored, and closes it as the
/// app leaves a store (flushed). Returns Ann's data directory.
pub fn ann_with_messages(dir: &Path, n: usize) -> PathBuf {
    let (mut a, b) = libra_engine::testkit::ben_wrote_to_ann(dir, n, |i| {
        format!("message {i}: the quick brown fox jumps over the lazy dog")
    })
    .expect("seed");
    // Ann receives all of Ben's logs.
    let all = libra_engine::testkit::entries_of(&b).expect("read");
    for chunk in all.chunks(10_000) {
        a.store.ingest(chunk.to_vec(), libra_engine::clock::wall_ms()).expect("ingest");
    }
    a.store.take_new_messages();
    // A clean shutdown flushes, as the app does on exit.
    a.store.flush().expect("flush");
    dir.join("ann")
}
