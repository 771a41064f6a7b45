//! The first-contact sketch (spec/sync.md 8.10): a tug-of-war estimate of how many items two
//! sets differ by, and rateless IBLT coded symbols (Yang et al., "Practical Rateless Set
//! Reconciliation", SIGCOMM 2024) from which the opener peels the difference itself.
//!
//! Why: two nodes that never synced have no sync point, and ranges then cost ~log16(n) round
//! trips and hundreds of bytes per differing log at 100k logs; a coded symbol costs 16 bytes and
//! about 1.4 symbols recover one differing item, in one round trip.

use super::headset::{HeadItem, HeadSet};

/// Bytes of an item's sketch key: author prefix (8) ‖ the first 4 bytes of its item hash.
pub const KEY_LEN: usize = 12;
/// Bytes of one coded symbol on the wire: key xor (12) ‖ checksum xor (3) ‖ count mod 256 (1).
pub const CELL_LEN: usize = 16;
/// Counters of the tug-of-war estimate.
pub const TOW_LEN: usize = 192;
/// Most symbols one session may ask for (1 MiB of cells); past it, ranges are cheaper.
pub const MAX_SYMBOLS: usize = 65_536;
/// Most symbols in one message (512 KiB).
pub const SYMBOLS_PER_MESSAGE: usize = 32_768;

pub type Key = [u8; KEY_LEN];

/// The sketch key of an item whose item hash is `hash`.
pub fn key_of(author: &[u8; 32], hash: &[u8; 32]) -> Key {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&author[..8]);
    k[8..].copy_from_slice(&hash[..4]);
    k
}

/// The sketch key of a head item.
pub fn key_of_item(item: &HeadItem) -> Key {
    key_of(&item.author, &item.hash())
}

/// Every item's sketch key, from the set's cached item hashes.
pub fn keys(heads: &HeadSet) -> Vec<Key> {
    let (a, b) = heads.span(&None, &None);
    heads.items(a, b).iter().enumerate().map(|(i, it)| key_of(&it.author, &heads.hash_at(a + i))).collect()
}

/// The murmur3 64-bit finalizer: a fixed, cheap mix (keys are already hashes; this only has to
/// spread them, and a peer that grinds keys only makes its own decode fail).
fn fmix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The 64-bit hash of a key: it seeds the key's symbol indices and gives its checksum.
pub fn key_hash(k: &Key) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&k[..8]);
    let mut b = [0u8; 4];
    b.copy_from_slice(&k[8..]);
    fmix(u64::from_le_bytes(a) ^ fmix(u64::from(u32::from_le_bytes(b)) ^ 0x9e37_79b9_7f4a_7c15))
}

pub(crate) fn checksum(h: u64) -> [u8; 3] {
    let c = (h >> 40).to_le_bytes();
    [c[0], c[1], c[2]]
}

/// Multiplier of the index generator (a multiplicative congruential generator mod 2^64).
const MUL: u64 = 0xda94_2042_e4dd_58b5;

/// The symbol indices a key maps to, increasing: 0, then gaps drawn so that index `i` is hit with
/// probability 1 / (1 + i/2).
pub struct Indices {
    state: u64,
    next: Option<u64>,
}

impl Indices {
    pub fn of(k: &Key) -> Indices {
        Indices { state: key_hash(k), next: Some(0) }
    }
}

impl Iterator for Indices {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        let cur = self.next?;
        self.state = self.state.wrapping_mul(MUL);
        // P(next > k | at cur) = ((cur+1)(cur+2)) / ((k+1)(k+2)) ≈ ((cur+1.5)/(k+1.5))²: inverse
        // transform with u = (state+1)/2^64. IEEE double arithmetic, exactly as written.
        let gap = ((cur as f64 + 1.5) * (4_294_967_296.0 / (self.state as f64 + 1.0).sqrt() - 1.0)).ceil();
        // `as` saturates; a gap is at least 1 so no index repeats.
        self.next = cur.checked_add((gap as u64).max(1));
        Some(cur)
    }
}

/// One coded symbol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cell {
    pub key: Key,
    pub chk: [u8; 3],
    pub count: u8,
}

impl Cell {
    /// Adds (`theirs`) or removes a key.
    pub(crate) fn apply(&mut self, k: &Key, chk: &[u8; 3], add: bool) {
        for (a, b) in self.key.iter_mut().zip(k) {
            *a ^= b;
        }
        for (a, b) in self.chk.iter_mut().zip(chk) {
            *a ^= b;
        }
        self.count = if add { self.count.wrapping_add(1) } else { self.count.wrapping_sub(1) };
    }

    fn is_zero(&self) -> bool {
        *self == Cell::default()
    }

    /// The key this cell holds alone, if it does: count ±1 and a matching checksum.
    fn pure(&self) -> Option<bool> {
        let sign = match self.count {
            1 => true,
            255 => false,
            _ => return None,
        };
        (checksum(key_hash(&self.key)) == self.chk).then_some(sign)
    }

    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.chk);
        out.push(self.count);
    }

    pub fn from_bytes(b: &[u8]) -> Cell {
        let mut c = Cell::default();
        c.key.copy_from_slice(&b[..KEY_LEN]);
        c.chk.copy_from_slice(&b[KEY_LEN..KEY_LEN + 3]);
        c.count = b[CELL_LEN - 1];
        c
    }
}

/// Symbols `[from, to)` of a set of keys.
pub fn encode(keys: &[Key], from: usize, to: usize) -> Vec<Cell> {
    let mut cells = vec![Cell::default(); to.saturating_sub(from)];
    for k in keys {
        let chk = checksum(key_hash(k));
        for i in Indices::of(k).take_while(|i| *i < to as u64) {
            if let Some(c) = (i as usize).checked_sub(from).and_then(|j| cells.get_mut(j)) {
                c.apply(k, &chk, true);
            }
        }
    }
    cells
}

/// Cells as wire bytes.
pub fn cells_to_bytes(cells: &[Cell]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cells.len() * CELL_LEN);
    for c in cells {
        c.to_bytes(&mut out);
    }
    out
}

/// Why a decode cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// More keys peeled than there are symbols: the symbols were not a set's.
    TooManyKeys,
}

/// The opener's side: the peer's symbols minus its own, peeled into the keys only one side holds.
#[derive(Debug, Default)]
pub struct Decoder {
    cells: Vec<Cell>,
    /// Recovered keys: `true` when the peer holds it, `false` when we do.
    recovered: Vec<(Key, bool)>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Symbols received so far.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Takes the peer's next symbols (from index `len()`) and our own keys; peels what it can.
    pub fn add(&mut self, theirs: &[Cell], own: &[Key]) -> Result<(), DecodeError> {
        let from = self.cells.len();
        let to = from + theirs.len();
        let mine = encode(own, from, to);
        let mut fresh: Vec<Cell> = theirs.to_vec();
        for (c, m) in fresh.iter_mut().zip(&mine) {
            c.apply(&m.key, &m.chk, false);
            // `apply` took one off the count; take the rest of ours off.
            c.count = c.count.wrapping_add(1).wrapping_sub(m.count);
        }
        for (k, theirs) in &self.recovered {
            let chk = checksum(key_hash(k));
            for i in Indices::of(k).take_while(|i| *i < to as u64).filter(|i| *i >= from as u64) {
                fresh[i as usize - from].apply(k, &chk, !theirs);
            }
        }
        self.cells.extend(fresh);
        self.peel((from..to).collect())
    }

    fn peel(&mut self, mut queue: Vec<usize>) -> Result<(), DecodeError> {
        let m = self.cells.len() as u64;
        while let Some(i) = queue.pop() {
            let c = self.cells[i];
            let Some(theirs) = c.pure() else { continue };
            if self.recovered.len() >= self.cells.len() {
                return Err(DecodeError::TooManyKeys);
            }
            self.recovered.push((c.key, theirs));
            for j in Indices::of(&c.key).take_while(|j| *j < m) {
                // Removing a key the peer holds is adding its inverse.
                self.cells[j as usize].apply(&c.key, &c.chk, !theirs);
                queue.push(j as usize);
            }
        }
        Ok(())
    }

    /// Every symbol peeled to zero: the recovered keys are the whole difference.
    pub fn is_complete(&self) -> bool {
        !self.cells.is_empty() && self.cells.iter().all(Cell::is_zero)
    }

    /// The recovered keys: `(key, the peer holds it)`.
    pub fn recovered(&self) -> &[(Key, bool)] {
        &self.recovered
    }
}

/// Bytes of the item hash whose bits give the tug-of-war signs (after the 4 bytes of the tag).
const SIGN_BYTES: std::ops::Range<usize> = 8..8 + TOW_LEN / 8;

/// Per sign bit, how many of these item hashes have it set. A histogram per byte first: 24
/// increments per item instead of 192.
pub fn ones_of(hashes: impl Iterator<Item = [u8; 32]>) -> Vec<u32> {
    let mut hist = vec![[0u32; 256]; TOW_LEN / 8];
    for h in hashes {
        for (k, b) in h[SIGN_BYTES].iter().enumerate() {
            hist[k][usize::from(*b)] += 1;
        }
    }
    let mut ones = vec![0u32; TOW_LEN];
    for (k, counts) in hist.iter().enumerate() {
        for (v, n) in counts.iter().enumerate() {
            for bit in 0..8 {
                if v >> bit & 1 == 1 {
                    ones[k * 8 + bit] += n;
                }
            }
        }
    }
    ones
}

/// Adds or removes one item hash from `ones` (a head that moves).
pub fn update_ones(ones: &mut [u32], hash: &[u8; 32], add: bool) {
    for (j, one) in ones.iter_mut().enumerate() {
        if hash[SIGN_BYTES.start + j / 8] >> (j % 8) & 1 == 1 {
            *one = if add { one.wrapping_add(1) } else { one.wrapping_sub(1) };
        }
    }
}

/// The tug-of-war counters of a set, mod 2^16: counter `j` sums ±1 over the items, + when bit
/// `j % 8` of byte `8 + j / 8` of the item hash is set. Only differences of counters are used,
/// and they stay far below 2^15 for any difference worth symbols, so 16 bits carry them.
pub fn tow(heads: &HeadSet) -> [i16; TOW_LEN] {
    let ones = heads.tow_ones();
    let n = heads.len() as i64;
    let mut t = [0i16; TOW_LEN];
    for (c, o) in t.iter_mut().zip(ones.iter().chain(std::iter::repeat(&0))) {
        *c = (2 * i64::from(*o) - n) as i16;
    }
    t
}

/// The estimated number of items in the symmetric difference of two sets, from their counters:
/// each squared difference (taken mod 2^16) has that expectation.
pub fn estimate(a: &[i16; TOW_LEN], b: &[i16; TOW_LEN]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x.wrapping_sub(*y)).powi(2)).sum::<f64>() / TOW_LEN as f64
}

/// Symbols the answerer sends first for an estimated difference of `d` items.
pub fn first_batch(d: f64) -> usize {
    ((1.4 * d).ceil() as usize).saturating_add(16)
}

/// Counters as wire bytes (i16 little-endian each), and back.
pub fn tow_to_bytes(t: &[i16; TOW_LEN]) -> Vec<u8> {
    t.iter().flat_map(|c| c.to_le_bytes()).collect()
}

pub fn tow_from_bytes(b: &[u8]) -> Option<[i16; TOW_LEN]> {
    if b.len() != TOW_LEN * 2 {
        return None;
    }
    let mut t = [0i16; TOW_LEN];
    for (j, c) in t.iter_mut().enumerate() {
        *c = i16::from_le_bytes([b[j * 2], b[j * 2 + 1]]);
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyset(range: std::ops::Range<u32>) -> Vec<Key> {
        range
            .map(|i| {
                let h = blake3::hash(&i.to_le_bytes());
                let mut k = [0u8; KEY_LEN];
                k.copy_from_slice(&h.as_bytes()[..KEY_LEN]);
                k
            })
            .collect()
    }

    /// Decodes `ours` against `theirs`, adding symbols in steps of `step`; returns the symbols
    /// it took and the recovered keys.
    fn decode(ours: &[Key], theirs: &[Key], step: usize) -> (usize, Vec<(Key, bool)>) {
        let mut d = Decoder::new();
        while !d.is_complete() {
            let from = d.len();
            d.add(&encode(theirs, from, from + step), ours).expect("decode");
            assert!(d.len() < 100_000, "no convergence");
        }
        (d.len(), d.recovered().to_vec())
    }

    #[test]
    fn the_difference_is_recovered_with_its_sides() {
        let ours = keyset(0..1_000);
        let theirs = keyset(10..1_030);
        let (_, mut got) = decode(&ours, &theirs, 8);
        got.sort();
        let mut want: Vec<(Key, bool)> = keyset(0..10)
            .into_iter()
            .map(|k| (k, false))
            .chain(keyset(1_000..1_030).into_iter().map(|k| (k, true)))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn equal_sets_decode_at_once() {
        let s = keyset(0..500);
        let (m, got) = decode(&s, &s, 1);
        assert_eq!((m, got.len()), (1, 0));
    }

    /// Symbols needed per differing item, the figure the answerer's first batch is sized by.
    #[test]
    fn about_one_and_a_half_symbols_recover_an_item() {
        for d in [20u32, 200, 2_000] {
            let mut total = 0;
            for seed in 0..5 {
                let base = seed * 100_000;
                let ours = keyset(base..base + 5_000);
                let theirs = keyset(base + d..base + 5_000 + d);
                let (m, got) = decode(&ours, &theirs, 1.max(d as usize / 50));
                assert_eq!(got.len(), 2 * d as usize);
                total += m;
            }
            let per = total as f64 / 5.0 / (2.0 * f64::from(d));
            eprintln!("d = {} items: {per:.2} symbols per item", 2 * d);
            assert!(per < 2.5, "{per}");
        }
    }

    #[test]
    fn index_gaps_follow_the_distribution() {
        // Index i is hit with probability 1/(1 + i/2): about 2 ln(1 + m/2) + 1 indices below m.
        let ks = keyset(0..20_000);
        let below = |m: u64| ks.iter().map(|k| Indices::of(k).take_while(|i| *i < m).count()).sum::<usize>() as f64;
        for m in [16u64, 1_024] {
            let want: f64 = (0..m).map(|i| 1.0 / (1.0 + i as f64 / 2.0)).sum::<f64>() * ks.len() as f64;
            let got = below(m);
            assert!((got / want - 1.0).abs() < 0.03, "m = {m}: {got} against {want}");
        }
    }

    #[test]
    fn tug_of_war_estimates_the_difference() {
        use crate::codec::Bytes;
        use crate::log::EntryId;
        let item = |i: u32, seq: u64| {
            let author = *blake3::hash(&i.to_le_bytes()).as_bytes();
            HeadItem {
                author,
                seq,
                id: EntryId(Bytes(*blake3::hash(&[&author[..], &seq.to_le_bytes()].concat()).as_bytes())),
            }
        };
        let a = HeadSet::from_items((0..20_000).map(|i| item(i, 1)));
        let b = HeadSet::from_items((0..20_000).map(|i| item(i, if i % 20 == 0 { 2 } else { 1 })));
        // 1000 logs at other heads: 2000 items.
        let e = estimate(&tow(&a), &tow(&b));
        assert!((1_200.0..3_000.0).contains(&e), "{e}");
        assert_eq!(estimate(&tow(&a), &tow(&a)), 0.0);
        assert_eq!(tow_from_bytes(&tow_to_bytes(&tow(&a))), Some(tow(&a)));
        // Counters kept up to date as heads move equal those of a set built from scratch.
        let mut moved = a.clone();
        for i in (0..20_000).filter(|i| i % 20 == 0) {
            moved.set(item(i, 2));
        }
        moved.remove(&item(3, 0).author);
        moved.set(item(30_000, 1));
        moved.settle();
        let fresh = HeadSet::from_items(
            (0..20_000)
                .filter(|i| *i != 3)
                .chain([30_000])
                .map(|i| item(i, if i % 20 == 0 && i < 20_000 { 2 } else { 1 })),
        );
        assert_eq!(tow(&moved), tow(&fresh));
    }

    /// Writes the fuzz target's real seed: symbols 0..24 of the target's own 20 keys with two
    /// removed and three added (run with `--ignored` after a format change).
    #[test]
    #[ignore]
    fn write_the_fuzz_seed() {
        let own = |n: u8| -> Vec<Key> {
            (0..n)
                .map(|i| {
                    let mut k = [0u8; 12];
                    k[0] = i;
                    k[11] = i.wrapping_mul(31);
                    k
                })
                .collect()
        };
        let mut theirs: Vec<Key> = own(20)[2..].to_vec();
        theirs.extend(keyset(0..3));
        let mut seed = vec![20u8];
        seed.extend(cells_to_bytes(&encode(&theirs, 0, 24)));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/sketch");
        std::fs::write(dir.join("peels"), seed).expect("seed");
    }

    #[test]
    fn a_key_the_peer_never_sent_is_no_panic() {
        // Random cells: the decoder stops, complete or not, and never panics.
        let junk: Vec<Cell> = (0..64u32).map(|i| Cell::from_bytes(blake3::hash(&i.to_le_bytes()).as_bytes())).collect();
        let mut d = Decoder::new();
        let _ = d.add(&junk, &keyset(0..10));
        assert!(!d.is_complete());
    }
}
