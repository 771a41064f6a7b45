//! The first-contact decoder (spec/sync.md 8.10): an answerer's coded symbols are outside bytes.
//! Input: the size of the opener's own set, then cells, peeled in two batches.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::sync::sketch::{CELL_LEN, Cell, Decoder, Key};

/// The opener's own keys of the fuzz input: `n` fixed keys.
fn own(n: u8) -> Vec<Key> {
    (0..n)
        .map(|i| {
            let mut k = [0u8; 12];
            k[0] = i;
            k[11] = i.wrapping_mul(31);
            k
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let cells: Vec<Cell> = rest.chunks_exact(CELL_LEN).map(Cell::from_bytes).collect();
    let (first, second) = cells.split_at(cells.len() / 2);
    let own = own(n);
    let mut d = Decoder::new();
    for part in [first, second] {
        if part.is_empty() || d.add(part, &own).is_err() {
            return;
        }
        assert!(d.recovered().len() <= d.len(), "at most one key peeled per cell");
    }
});
