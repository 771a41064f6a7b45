//! The first-contact decoder (spec/sync.md 8.10): an answerer's coded symbols are outside bytes.
//! Input: the size of the opener's own set, then 20-byte cells, peeled in two batches.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::sync::sketch::{CELL_LEN, Cell, Decoder, LogKey};

/// The opener's own keys for a size byte `n` (as the sketch tests' `fuzz_own`).
fn own(n: u8) -> Vec<LogKey> {
    (0..n).map(|i| LogKey { a: u64::from(i) << 40 | 5, tag: u32::from(i) * 31 + 1 }).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    // Non-canonical cells are refused by the message decoder before they reach here.
    let Some(cells) = rest.chunks_exact(CELL_LEN).map(Cell::from_bytes).collect::<Option<Vec<_>>>() else { return };
    let (first, second) = cells.split_at(cells.len() / 2);
    let own = own(n);
    let mut d = Decoder::new();
    for part in [first, second] {
        if part.is_empty() || d.add(part, &own).is_err() {
            return;
        }
        assert!(d.peeled().len() <= d.len(), "at most one log peeled per cell");
    }
});
