//! The set being reconciled: one item per log, `(author, seq, head id)`, sorted by author, with
//! cached item hashes and prefix sums so that the fingerprint of any range costs O(log n).

use std::collections::BTreeMap;

use crate::log::EntryId;

/// Bytes of an author key sent in item lists; the receiver matches them against its own keys.
pub const AUTHOR_PREFIX: usize = 16;
/// Bytes of a head id sent in item lists: enough to tell two heads at one seq apart.
pub const ID_PREFIX: usize = 8;
/// Bytes of a range fingerprint.
pub const FP_LEN: usize = 16;

/// One log's head as the reconciliation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadItem {
    pub author: [u8; 32],
    pub seq: u64,
    pub id: EntryId,
}

impl HeadItem {
    fn hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"libra-sync-item-v1");
        h.update(&self.author);
        h.update(&self.seq.to_be_bytes());
        h.update(self.id.as_bytes());
        *h.finalize().as_bytes()
    }
}

/// A 256-bit sum, little-endian limbs, wrapping: a commutative group, so range sums are
/// differences of prefix sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sum([u64; 4]);

impl Sum {
    fn of(bytes: &[u8; 32]) -> Sum {
        let mut limbs = [0u64; 4];
        for (i, l) in limbs.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            *l = u64::from_le_bytes(b);
        }
        Sum(limbs)
    }
    fn add(self, o: Sum) -> Sum {
        let mut r = [0u64; 4];
        let mut carry = false;
        for (i, slot) in r.iter_mut().enumerate() {
            let (s1, c1) = self.0[i].overflowing_add(o.0[i]);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *slot = s2;
            carry = c1 || c2;
        }
        Sum(r)
    }
    fn sub(self, o: Sum) -> Sum {
        let mut r = [0u64; 4];
        let mut borrow = false;
        for (i, slot) in r.iter_mut().enumerate() {
            let (d1, b1) = self.0[i].overflowing_sub(o.0[i]);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *slot = d2;
            borrow = b1 || b2;
        }
        Sum(r)
    }
}

/// The fingerprint of a set of items: blake3 over their hash sum and their count.
pub fn fingerprint_of(sum_bytes: [u8; 32], count: u64) -> [u8; FP_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(b"libra-sync-fp-v1");
    h.update(&sum_bytes);
    h.update(&count.to_be_bytes());
    let mut out = [0u8; FP_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..FP_LEN]);
    out
}

/// A range bound: a key prefix, standing for the smallest key that starts with it. `None` is
/// the end of the key space.
pub type Bound = Option<Vec<u8>>;

/// Whether `key` lies below `bound`.
pub fn below(key: &[u8; 32], bound: &Bound) -> bool {
    match bound {
        None => true,
        Some(b) => {
            let n = b.len().min(32);
            // key < pad(b)  ⇔  key[..n] < b[..n], or equal with b longer than the key.
            match key[..n].cmp(&b[..n]) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => b[n..].iter().any(|&x| x != 0),
            }
        }
    }
}

/// The shortest prefix of `next` that is still above `last`: a compact bound between them.
pub fn bound_between(last: &[u8; 32], next: &[u8; 32]) -> Vec<u8> {
    let common = last.iter().zip(next.iter()).take_while(|(a, b)| a == b).count();
    next[..(common + 1).min(32)].to_vec()
}

/// The sorted head set with cached hashes.
#[derive(Debug, Clone, Default)]
pub struct HeadSet {
    items: BTreeMap<[u8; 32], (u64, EntryId, Sum)>,
    /// Sorted view and prefix sums, rebuilt lazily after changes.
    sorted: Vec<HeadItem>,
    prefix: Vec<Sum>,
    dirty: bool,
}

impl HeadSet {
    pub fn new() -> Self {
        HeadSet::default()
    }

    pub fn from_items(items: impl IntoIterator<Item = HeadItem>) -> Self {
        let mut s = HeadSet::new();
        for i in items {
            s.set(i);
        }
        s
    }

    /// Inserts or updates a log's head.
    pub fn set(&mut self, item: HeadItem) {
        let sum = Sum::of(&item.hash());
        self.items.insert(item.author, (item.seq, item.id, sum));
        self.dirty = true;
    }

    pub fn remove(&mut self, author: &[u8; 32]) {
        if self.items.remove(author).is_some() {
            self.dirty = true;
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn get(&self, author: &[u8; 32]) -> Option<HeadItem> {
        self.items.get(author).map(|(seq, id, _)| HeadItem { author: *author, seq: *seq, id: *id })
    }

    fn refresh(&mut self) {
        if !self.dirty && self.prefix.len() == self.items.len() + 1 {
            return;
        }
        self.sorted.clear();
        self.prefix.clear();
        self.prefix.push(Sum::default());
        let mut acc = Sum::default();
        for (author, (seq, id, sum)) in &self.items {
            self.sorted.push(HeadItem { author: *author, seq: *seq, id: *id });
            acc = acc.add(*sum);
            self.prefix.push(acc);
        }
        self.dirty = false;
    }

    /// Index of the first item not below `bound`.
    fn index_of(&self, bound: &Bound) -> usize {
        self.sorted.partition_point(|i| below(&i.author, bound))
    }

    /// Item indices `[a, b)` of the range `[lower, upper)`.
    pub fn span(&mut self, lower: &Bound, upper: &Bound) -> (usize, usize) {
        self.refresh();
        let a = match lower {
            None => 0,
            Some(_) => self.index_of(lower),
        };
        let b = self.index_of(upper).max(a);
        (a, b)
    }

    pub fn items(&mut self, a: usize, b: usize) -> &[HeadItem] {
        self.refresh();
        &self.sorted[a.min(self.sorted.len())..b.min(self.sorted.len())]
    }

    /// Fingerprint of the items at indices `[a, b)`.
    pub fn fingerprint(&mut self, a: usize, b: usize) -> [u8; FP_LEN] {
        self.refresh();
        let at = |i: usize| self.prefix.get(i).or(self.prefix.last()).copied().unwrap_or_default();
        let s = at(b).sub(at(a));
        let mut bytes = [0u8; 32];
        for (i, l) in s.0.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&l.to_le_bytes());
        }
        fingerprint_of(bytes, (b - a) as u64)
    }

    /// Finds own authors whose key starts with `prefix` (normally zero or one).
    pub fn by_prefix(&mut self, prefix: &[u8]) -> Vec<HeadItem> {
        self.refresh();
        let start = self.sorted.partition_point(|i| i.author[..] < *prefix);
        self.sorted[start..].iter().take_while(|i| i.author.starts_with(prefix)).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Bytes;

    fn item(a: u8, seq: u64) -> HeadItem {
        let mut author = [0u8; 32];
        author[0] = a;
        author[31] = a;
        HeadItem { author, seq, id: EntryId(Bytes([seq as u8; 32])) }
    }

    #[test]
    fn range_fingerprints_match_direct_computation() {
        let mut s = HeadSet::from_items((0..50).map(|i| item(i * 5, u64::from(i))));
        let mut t = HeadSet::from_items((10..30).map(|i| item(i * 5, u64::from(i))));
        let (a, b) = s.span(&Some(vec![50]), &Some(vec![150]));
        let (c, d) = t.span(&Some(vec![50]), &None);
        assert_eq!((b - a, d - c), (20, 20));
        assert_eq!(s.fingerprint(a, b), t.fingerprint(c, d));
        t.set(item(60, 99));
        assert_ne!(s.fingerprint(a, b), t.fingerprint(c, d));
    }

    #[test]
    fn an_empty_set_has_a_fingerprint() {
        let mut s = HeadSet::new();
        let (a, b) = s.span(&None, &None);
        assert_eq!((a, b), (0, 0));
        assert_eq!(s.fingerprint(a, b), fingerprint_of([0; 32], 0));
    }

    #[test]
    fn bounds() {
        let x = [1u8; 32];
        let mut y = [1u8; 32];
        y[3] = 2;
        let b = bound_between(&x, &y);
        assert_eq!(b, vec![1, 1, 1, 2]);
        assert!(below(&x, &Some(b.clone())));
        assert!(!below(&y, &Some(b)));
        assert!(below(&y, &None));
    }
}
