//! The first-contact sketch (spec/sync.md 8.10): a tug-of-war estimate of how many logs two
//! sets differ in, and rateless IBLT coded symbols (Yang et al., "Practical Rateless Set
//! Reconciliation", SIGCOMM 2024) from which the opener peels the difference itself.
//!
//! Why: two nodes that never synced have no sync point, and ranges then cost ~log16(n) round
//! trips and hundreds of bytes per differing log at 100k logs. Here a differing log costs about
//! 1.4 symbols of 20 bytes, whether one side lacks it or both hold it at other heads: a log's
//! symbol indices come from its author alone, so both heads of a log land in the same cells,
//! and a cell holds `a·w(tag)`, `w(tag)` and `tag` sums from which one log's author bits and
//! both head tags come back (a = F / G in GF(2^61 − 1)).

use super::headset::{HeadItem, HeadSet};

/// Bytes of one coded symbol on the wire: F (u64 LE) ‖ G (u64 LE) ‖ T (u32 LE).
pub const CELL_LEN: usize = 20;
/// Counters of the tug-of-war estimate.
pub const TOW_LEN: usize = 192;
/// Most symbols one session may ask for (1.25 MiB of cells); past it, ranges are cheaper.
pub const MAX_SYMBOLS: usize = 65_536;
/// Most symbols in one message (640 KiB).
pub const SYMBOLS_PER_MESSAGE: usize = 32_768;
/// The field of F and G: the Mersenne prime 2^61 − 1.
pub const P: u64 = (1 << 61) - 1;
/// Author bits in a log key: below 2^60 < P.
pub const AUTHOR_BITS: u32 = 60;

/// A log as the sketch sees it: the first 60 bits of its author and the tag of its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogKey {
    pub a: u64,
    pub tag: u32,
}

/// The first 60 bits of an author key (big-endian): the sketch's name for a log.
pub fn author_bits(author: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&author[..8]);
    u64::from_be_bytes(b) >> (64 - AUTHOR_BITS)
}

/// The tag of a head whose item hash (section 7.2) is `hash`: its first 4 bytes, little-endian,
/// with 0 taken as 1 (0 stands for "not held").
pub fn tag_of_hash(hash: &[u8; 32]) -> u32 {
    u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]]).max(1)
}

pub fn key_of(author: &[u8; 32], hash: &[u8; 32]) -> LogKey {
    LogKey { a: author_bits(author), tag: tag_of_hash(hash) }
}

pub fn key_of_item(item: &HeadItem) -> LogKey {
    key_of(&item.author, &item.hash())
}

/// Every log's key, from the set's cached item hashes, ordered by `a`.
pub fn keys(heads: &HeadSet) -> Vec<LogKey> {
    let (a, b) = heads.span(&None, &None);
    heads.items(a, b).iter().enumerate().map(|(i, it)| key_of(&it.author, &heads.hash_at(a + i))).collect()
}

/// The murmur3 64-bit finalizer: a fixed, cheap mix (its inputs are already hashes or keys; a
/// peer that grinds them only makes its own decode fail).
fn fmix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn reduce(x: u64) -> u64 {
    let x = (x & P) + (x >> 61);
    if x >= P { x - P } else { x }
}

fn add(x: u64, y: u64) -> u64 {
    reduce(x + y)
}

fn sub(x: u64, y: u64) -> u64 {
    reduce(x + P - y)
}

fn mul(x: u64, y: u64) -> u64 {
    let z = u128::from(x) * u128::from(y);
    reduce(((z as u64) & P) + (z >> 61) as u64)
}

fn inv(x: u64) -> u64 {
    // Fermat: x^(P−2).
    let (mut base, mut e, mut acc) = (x, P - 2, 1u64);
    while e > 0 {
        if e & 1 == 1 {
            acc = mul(acc, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    acc
}

/// The weight of a tag in GF(P): nonzero for a tag, 0 for "not held".
pub fn weight(tag: u32) -> u64 {
    if tag == 0 {
        return 0;
    }
    (fmix(u64::from(tag) ^ 0x5851_f42d_4c95_7f2d) % P).max(1)
}

/// The seed of a log's symbol indices.
pub fn index_seed(a: u64) -> u64 {
    fmix(a ^ 0x9e37_79b9_7f4a_7c15)
}

/// Multiplier of the index generator (a multiplicative congruential generator mod 2^64).
const MUL: u64 = 0xda94_2042_e4dd_58b5;

/// The symbol indices a log maps to, increasing: 0, then gaps drawn so that index `i` is hit
/// with probability about 1 / (1 + i/2).
pub struct Indices {
    state: u64,
    next: Option<u64>,
}

impl Indices {
    pub fn of(a: u64) -> Indices {
        Indices { state: index_seed(a), next: Some(0) }
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

/// One coded symbol: over its logs' heads, F = Σ a·w(tag), G = Σ w(tag) (in GF(P)) and
/// T = Σ tag (mod 2^32), each head added for the answerer and subtracted for the opener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cell {
    pub f: u64,
    pub g: u64,
    pub t: u32,
}

impl Cell {
    /// Adds (`plus`) or subtracts the change of log `a` from head tag `from` to `to` (0: none).
    fn apply(&mut self, a: u64, from: u32, to: u32, plus: bool) {
        let dg = sub(weight(to), weight(from));
        let df = mul(a, dg);
        let dt = to.wrapping_sub(from);
        if plus {
            self.f = add(self.f, df);
            self.g = add(self.g, dg);
            self.t = self.t.wrapping_add(dt);
        } else {
            self.f = sub(self.f, df);
            self.g = sub(self.g, dg);
            self.t = self.t.wrapping_sub(dt);
        }
    }

    /// The change of log `a` from head tag `from` to `to` (0: none), as a cell.
    fn change(a: u64, from: u32, to: u32) -> Cell {
        let mut c = Cell::default();
        c.apply(a, from, to, true);
        c
    }

    fn subtract(&mut self, o: &Cell) {
        self.f = sub(self.f, o.f);
        self.g = sub(self.g, o.g);
        self.t = self.t.wrapping_sub(o.t);
    }

    fn is_zero(&self) -> bool {
        *self == Cell::default()
    }

    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.f.to_le_bytes());
        out.extend_from_slice(&self.g.to_le_bytes());
        out.extend_from_slice(&self.t.to_le_bytes());
    }

    /// A cell from its 20 wire bytes; `None` when F or G is not below P (not canonical).
    pub fn from_bytes(b: &[u8]) -> Option<Cell> {
        let b: &[u8; CELL_LEN] = b.try_into().ok()?;
        let u = |r: std::ops::Range<usize>| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[r]);
            u64::from_le_bytes(x)
        };
        let c = Cell { f: u(0..8), g: u(8..16), t: u32::from_le_bytes([b[16], b[17], b[18], b[19]]) };
        (c.f < P && c.g < P).then_some(c)
    }
}

/// Symbols `[from, to)` of a set of log keys.
pub fn encode(keys: &[LogKey], from: usize, to: usize) -> Vec<Cell> {
    let mut cells = vec![Cell::default(); to.saturating_sub(from)];
    for k in keys {
        for i in Indices::of(k.a).take_while(|i| *i < to as u64) {
            if let Some(c) = (i as usize).checked_sub(from).and_then(|j| cells.get_mut(j)) {
                c.apply(k.a, 0, k.tag, true);
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
    /// More logs peeled than there are symbols: the symbols were not a set's.
    TooManyLogs,
}

/// One differing log: its author bits and each side's head tag (0: that side lacks the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peeled {
    pub a: u64,
    pub ours: u32,
    pub theirs: u32,
}

/// The opener's side: the peer's symbols minus its own, peeled into the logs that differ.
#[derive(Debug, Default)]
pub struct Decoder {
    cells: Vec<Cell>,
    peeled: Vec<Peeled>,
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

    /// Takes the peer's next symbols (from index `len()`) and our own keys (ordered by `a`);
    /// peels what it can.
    pub fn add(&mut self, theirs: &[Cell], own: &[LogKey]) -> Result<(), DecodeError> {
        let from = self.cells.len();
        let to = from + theirs.len();
        let mine = encode(own, from, to);
        let mut fresh: Vec<Cell> = theirs.to_vec();
        for (c, m) in fresh.iter_mut().zip(&mine) {
            c.subtract(m);
        }
        for p in &self.peeled {
            let change = Cell::change(p.a, p.ours, p.theirs);
            for i in Indices::of(p.a).take_while(|i| *i < to as u64).filter(|i| *i >= from as u64) {
                fresh[i as usize - from].subtract(&change);
            }
        }
        self.cells.extend(fresh);
        self.peel((from..to).collect(), own)
    }

    /// The log a cell holds alone, if it does: F / G is 60 bits, and the tags it implies (ours
    /// from our own set, theirs from T) give back G.
    fn pure(c: &Cell, own: &[LogKey]) -> Option<Peeled> {
        if c.g == 0 {
            return None;
        }
        let a = mul(c.f, inv(c.g));
        if a >> AUTHOR_BITS != 0 {
            return None;
        }
        let at = own.partition_point(|k| k.a < a);
        let ours = own.get(at).filter(|k| k.a == a).map_or(0, |k| k.tag);
        let theirs = c.t.wrapping_add(ours);
        (theirs != ours && sub(weight(theirs), weight(ours)) == c.g).then_some(Peeled { a, ours, theirs })
    }

    fn peel(&mut self, mut queue: Vec<usize>, own: &[LogKey]) -> Result<(), DecodeError> {
        let m = self.cells.len() as u64;
        // A cell waits in the queue at most once: the queue never outgrows the cells, whatever
        // logs (with however many indices) a hostile peer's symbols name.
        let mut queued = vec![false; self.cells.len()];
        for i in &queue {
            queued[*i] = true;
        }
        while let Some(i) = queue.pop() {
            queued[i] = false;
            let Some(p) = Self::pure(&self.cells[i], own) else { continue };
            if self.peeled.len() >= self.cells.len() {
                return Err(DecodeError::TooManyLogs);
            }
            self.peeled.push(p);
            let change = Cell::change(p.a, p.ours, p.theirs);
            for j in Indices::of(p.a).take_while(|j| *j < m) {
                let j = j as usize;
                self.cells[j].subtract(&change);
                if !queued[j] {
                    queued[j] = true;
                    queue.push(j);
                }
            }
        }
        Ok(())
    }

    /// Every symbol peeled to zero: the peeled logs are the whole difference.
    pub fn is_complete(&self) -> bool {
        !self.cells.is_empty() && self.cells.iter().all(Cell::is_zero)
    }

    pub fn peeled(&self) -> &[Peeled] {
        &self.peeled
    }

    /// A complete decode of these logs, for tests of what a session does with one.
    #[cfg(test)]
    pub(crate) fn with_peeled(peeled: Vec<Peeled>) -> Decoder {
        Decoder { cells: vec![Cell::default()], peeled }
    }
}

/// Bytes of the author and of the item hash whose bits give the tug-of-war signs.
const SIGN_BYTES: std::ops::Range<usize> = 8..8 + TOW_LEN / 8;

/// Per sign bit `j`, the number of set bits `j` among these items' author keys and item hashes
/// together. A histogram per byte first: 48 increments per item instead of 384.
pub fn ones_of(items: impl Iterator<Item = ([u8; 32], [u8; 32])>) -> Vec<u32> {
    let mut hist = vec![[0u32; 256]; TOW_LEN / 8];
    for (author, hash) in items {
        for k in 0..TOW_LEN / 8 {
            hist[k][usize::from(author[SIGN_BYTES.start + k])] += 1;
            hist[k][usize::from(hash[SIGN_BYTES.start + k])] += 1;
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

/// Adds or removes one item hash's bits from `ones` (a head that moves: its author stays).
pub fn update_ones(ones: &mut [u32], hash: &[u8; 32], add: bool) {
    for (j, one) in ones.iter_mut().enumerate() {
        if hash[SIGN_BYTES.start + j / 8] >> (j % 8) & 1 == 1 {
            *one = if add { one.wrapping_add(1) } else { one.wrapping_sub(1) };
        }
    }
}

/// The tug-of-war counters of a set, mod 2^16: counter `j` sums, over the items, u + v where
/// u = ±1 by bit `j` of the author's bytes 8.. and v = ±1 by bit `j` of the item hash's bytes
/// 8... A log both sides hold at other heads then differs by v − v' and a log one side lacks by
/// u + v: both have second moment 2, so counters differ by about √(2 × differing logs). Only
/// differences are used, far below 2^15 for any difference worth symbols: 16 bits carry them.
pub fn tow(heads: &HeadSet) -> [i16; TOW_LEN] {
    let ones = heads.tow_ones();
    let n = heads.len() as i64;
    let mut t = [0i16; TOW_LEN];
    for (c, o) in t.iter_mut().zip(ones.iter().chain(std::iter::repeat(&0))) {
        *c = (2 * i64::from(*o) - 2 * n) as i16;
    }
    t
}

/// The estimated number of differing logs, from two sets' counters: each squared difference
/// (taken mod 2^16) has twice that as its expectation.
pub fn estimate(a: &[i16; TOW_LEN], b: &[i16; TOW_LEN]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x.wrapping_sub(*y)).powi(2)).sum::<f64>() / (2 * TOW_LEN) as f64
}

/// Symbols the answerer sends first for an estimated `d` differing logs: peeling takes about
/// 1.4 per log (1.6 when few differ) and the estimate is within 12 % most of the time, so most
/// sessions peel at once.
pub fn first_batch(d: f64) -> usize {
    ((1.6 * d).ceil() as usize).saturating_add(32)
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
mod tests;
