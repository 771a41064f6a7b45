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
    /// The item hash of spec/sync.md 7.2.
    pub fn hash(&self) -> [u8; 32] {
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
            // key < pad(b)  ⇔  key[..n] < b[..n]: a bound is at most 32 bytes (the wire refuses
            // longer ones), so when the prefixes are equal the key is at or above it.
            key[..n] < b[..n]
        }
    }
}

/// The shortest prefix of `next` that is still above `last`: a compact bound between them.
pub fn bound_between(last: &[u8; 32], next: &[u8; 32]) -> Vec<u8> {
    let common = last.iter().zip(next.iter()).take_while(|(a, b)| a == b).count();
    next[..(common + 1).min(32)].to_vec()
}

/// The sorted head set with cached item hashes and a Fenwick tree of their sums: a head that
/// advances costs O(log n), any range's fingerprint O(log n). New and removed logs wait in
/// `pending` until [`HeadSet::settle`] merges them (O(n), once per batch of writes), so a cold
/// sync that brings many new logs does not move the array once per log.
#[derive(Debug, Clone, Default)]
pub struct HeadSet {
    items: Vec<HeadItem>,
    sums: Vec<Sum>,
    /// 1-based Fenwick tree over `sums`.
    tree: Vec<Sum>,
    /// Logs added (`Some`) or removed (`None`) since the last settle.
    pending: BTreeMap<[u8; 32], Option<HeadItem>>,
    /// Per tug-of-war sign bit, how many set bits the items' author keys and item hashes have
    /// there together (spec/sync.md 8.10): kept like the sums, so a sketch opening costs
    /// nothing that grows with the set.
    ones: Vec<u32>,
}

impl HeadSet {
    pub fn new() -> Self {
        HeadSet::default()
    }

    pub fn from_items(items: impl IntoIterator<Item = HeadItem>) -> Self {
        let mut s = HeadSet::new();
        for i in items {
            s.pending.insert(i.author, Some(i));
        }
        s.settle();
        s
    }

    fn index(&self, author: &[u8; 32]) -> Result<usize, usize> {
        self.items.binary_search_by(|i| i.author.cmp(author))
    }

    /// Inserts or updates a log's head.
    pub fn set(&mut self, item: HeadItem) {
        if let Some(slot) = self.pending.get_mut(&item.author) {
            *slot = Some(item);
            return;
        }
        match self.index(&item.author) {
            Ok(i) => {
                let hash = item.hash();
                let sum = Sum::of(&hash);
                let delta_in = sum;
                let delta_out = self.sums[i];
                let old = self.hash_at(i);
                super::sketch::update_ones(&mut self.ones, &old, false);
                super::sketch::update_ones(&mut self.ones, &hash, true);
                self.items[i] = item;
                self.sums[i] = sum;
                let mut k = i + 1;
                while k < self.tree.len() {
                    self.tree[k] = self.tree[k].add(delta_in).sub(delta_out);
                    k += k & k.wrapping_neg();
                }
            }
            Err(_) => {
                self.pending.insert(item.author, Some(item));
            }
        }
    }

    pub fn remove(&mut self, author: &[u8; 32]) {
        if self.index(author).is_ok() {
            self.pending.insert(*author, None);
        } else {
            self.pending.remove(author);
        }
    }

    /// Whether every change is merged: only a settled set answers ranges and fingerprints.
    pub fn is_settled(&self) -> bool {
        self.pending.is_empty()
    }

    /// Merges added and removed logs and rebuilds the sums.
    pub fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let old = std::mem::take(&mut self.items);
        let mut merged = Vec::with_capacity(old.len() + pending.len());
        let mut p = pending.into_iter().peekable();
        for item in old {
            while let Some((a, _)) = p.peek()
                && *a < item.author
            {
                if let Some((_, Some(new))) = p.next() {
                    merged.push(new);
                }
            }
            match p.peek() {
                Some((a, change)) if *a == item.author => {
                    if let Some(new) = change {
                        merged.push(*new);
                    }
                    p.next();
                }
                _ => merged.push(item),
            }
        }
        merged.extend(p.filter_map(|(_, c)| c));
        self.sums = merged.iter().map(|i| Sum::of(&i.hash())).collect();
        self.items = merged;
        self.ones = super::sketch::ones_of((0..self.items.len()).map(|i| (self.items[i].author, self.hash_at(i))));
        let n = self.items.len();
        self.tree = vec![Sum::default(); n + 1];
        for i in 1..=n {
            self.tree[i] = self.tree[i].add(self.sums[i - 1]);
            let j = i + (i & i.wrapping_neg());
            if j <= n {
                self.tree[j] = self.tree[j].add(self.tree[i]);
            }
        }
    }

    /// Logs in the set, pending changes included.
    pub fn len(&self) -> usize {
        let mut n = self.items.len();
        for (a, c) in &self.pending {
            match (self.index(a).is_ok(), c.is_some()) {
                (false, true) => n += 1,
                (true, false) => n -= 1,
                _ => {}
            }
        }
        n
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, author: &[u8; 32]) -> Option<HeadItem> {
        match self.pending.get(author) {
            Some(c) => *c,
            None => self.index(author).ok().map(|i| self.items[i]),
        }
    }

    fn prefix_sum(&self, mut i: usize) -> Sum {
        let mut acc = Sum::default();
        i = i.min(self.items.len());
        while i > 0 {
            acc = acc.add(self.tree[i]);
            i -= i & i.wrapping_neg();
        }
        acc
    }

    /// Index of the first item not below `bound`.
    fn index_of(&self, bound: &Bound) -> usize {
        self.items.partition_point(|i| below(&i.author, bound))
    }

    /// Item indices `[a, b)` of the range `[lower, upper)` (of a settled set).
    pub fn span(&self, lower: &Bound, upper: &Bound) -> (usize, usize) {
        debug_assert!(self.is_settled(), "ranges of an unsettled head set");
        let a = match lower {
            None => 0,
            Some(_) => self.index_of(lower),
        };
        let b = self.index_of(upper).max(a);
        (a, b)
    }

    pub fn items(&self, a: usize, b: usize) -> &[HeadItem] {
        debug_assert!(self.is_settled(), "items of an unsettled head set");
        let n = self.items.len();
        &self.items[a.min(n)..b.min(n)]
    }

    /// Fingerprint of the items at indices `[a, b)`.
    pub fn fingerprint(&self, a: usize, b: usize) -> [u8; FP_LEN] {
        debug_assert!(self.is_settled(), "fingerprint of an unsettled head set");
        let (a, b) = (a.min(b), b.min(self.items.len()));
        let s = self.prefix_sum(b).sub(self.prefix_sum(a.min(b)));
        let mut bytes = [0u8; 32];
        for (i, l) in s.0.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&l.to_le_bytes());
        }
        fingerprint_of(bytes, (b - a.min(b)) as u64)
    }

    /// Fingerprint of every item but those of `authors` (sorted, unique): O(k log n).
    pub fn fingerprint_excluding(&self, authors: &[[u8; 32]]) -> [u8; FP_LEN] {
        debug_assert!(self.is_settled(), "fingerprint of an unsettled head set");
        let mut sum = self.prefix_sum(self.items.len());
        let mut count = self.items.len() as u64;
        for a in authors {
            if let Ok(i) = self.index(a) {
                sum = sum.sub(self.sums[i]);
                count -= 1;
            }
        }
        let mut bytes = [0u8; 32];
        for (i, l) in sum.0.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&l.to_le_bytes());
        }
        fingerprint_of(bytes, count)
    }

    /// The cached item hash (section 7.2) of the item at index `i` (of a settled set).
    pub fn hash_at(&self, i: usize) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (k, l) in self.sums[i].0.iter().enumerate() {
            out[k * 8..k * 8 + 8].copy_from_slice(&l.to_le_bytes());
        }
        out
    }

    /// Per tug-of-war sign bit, the set bits of the authors and item hashes there (of a settled
    /// set; empty when the set never held an item).
    pub fn tow_ones(&self) -> &[u32] {
        debug_assert!(self.is_settled(), "counters of an unsettled head set");
        &self.ones
    }

    /// Finds own authors whose key starts with `prefix` (normally zero or one).
    pub fn by_prefix(&self, prefix: &[u8]) -> Vec<HeadItem> {
        let start = self.items.partition_point(|i| i.author[..] < *prefix);
        self.items[start..].iter().take_while(|i| i.author.starts_with(prefix)).copied().collect()
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
        let s = HeadSet::from_items((0..50).map(|i| item(i * 5, u64::from(i))));
        let mut t = HeadSet::from_items((10..30).map(|i| item(i * 5, u64::from(i))));
        let (a, b) = s.span(&Some(vec![50]), &Some(vec![150]));
        let (c, d) = t.span(&Some(vec![50]), &None);
        assert_eq!((b - a, d - c), (20, 20));
        assert_eq!(s.fingerprint(a, b), t.fingerprint(c, d));
        t.set(item(60, 99));
        assert_ne!(s.fingerprint(a, b), t.fingerprint(c, d));
    }

    /// In-place updates (through the tree), additions and removals (through a settle) give the
    /// fingerprints a set built from scratch gives, for every range.
    #[test]
    fn maintained_sets_equal_rebuilt_ones() {
        let mut s = HeadSet::from_items((0..40).map(|i| item(i * 3, 1)));
        let mut want: BTreeMap<[u8; 32], HeadItem> = (0..40).map(|i| (item(i * 3, 1).author, item(i * 3, 1))).collect();
        for step in 0..300u32 {
            let x = (step * 37 % 130) as u8;
            match step % 5 {
                0 => {
                    s.remove(&item(x, 0).author);
                    want.remove(&item(x, 0).author);
                }
                _ => {
                    let it = item(x, u64::from(step));
                    s.set(it);
                    want.insert(it.author, it);
                }
            }
            assert_eq!(s.len(), want.len());
            assert_eq!(s.get(&item(x, 0).author), want.get(&item(x, 0).author).copied());
            if step % 7 == 0 {
                s.settle();
                let fresh = HeadSet::from_items(want.values().copied());
                assert_eq!(s.items(0, s.len()), fresh.items(0, fresh.len()));
                for a in 0..=s.len() {
                    for b in a..=s.len() {
                        assert_eq!(s.fingerprint(a, b), fresh.fingerprint(a, b), "[{a}, {b}) at step {step}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_fingerprint_excluding_logs_equals_that_of_the_set_without_them() {
        let all = HeadSet::from_items((0..30).map(|i| item(i * 7, 1)));
        let out: Vec<[u8; 32]> = [3u8, 9, 33].iter().map(|i| item(i * 7, 0).author).collect();
        let rest = HeadSet::from_items((0..30).filter(|i| ![3, 9].contains(i)).map(|i| item(i * 7, 1)));
        let (a, b) = rest.span(&None, &None);
        assert_eq!(all.fingerprint_excluding(&out), rest.fingerprint(a, b));
        assert_eq!(all.fingerprint_excluding(&[]), all.fingerprint(0, all.len()));
    }

    #[test]
    fn an_empty_set_has_a_fingerprint() {
        let s = HeadSet::new();
        let (a, b) = s.span(&None, &None);
        assert_eq!((a, b), (0, 0));
        assert_eq!(s.fingerprint(a, b), fingerprint_of([0; 32], 0));
        assert!(s.is_empty());
        assert_eq!(s.len(), 0);
        let one = HeadSet::from_items([HeadItem { author: [1; 32], seq: 1, id: EntryId(Bytes([2; 32])) }]);
        assert!(!one.is_empty() && one.len() == 1);
        // A prefix as long as the key finds it too.
        assert_eq!(one.by_prefix(&[1; 32]).len(), 1);
        assert_eq!(one.by_prefix(&[1; 16]).len(), 1);
        assert!(one.by_prefix(&[2; 16]).is_empty());
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
