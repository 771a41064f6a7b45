//! The order in which heads moved: a sync point is a position in it, and the logs moved since
//! a point are what a session with a peer synced at that point may need to reconcile
//! (spec/sync.md, section 8.9). Each head record keeps its log's last position and the store
//! keeps the order's random epoch, so the order — and every point in it — outlives a restart.

use std::collections::{BTreeMap, HashMap};

pub use crate::sync::ChangePoint;

#[derive(Debug)]
pub(crate) struct Moves {
    epoch: u64,
    count: u64,
    /// Each log's last move, and the same by position.
    at: HashMap<[u8; 32], u64>,
    order: BTreeMap<u64, [u8; 32]>,
}

/// A fresh epoch for a new order.
pub(crate) fn new_epoch() -> u64 {
    let mut e = [0u8; 8];
    // A clash of two epochs would only make a session verify a wrong point, which its
    // fingerprint check catches (section 8.9); randomness just makes that vanishingly rare.
    let _ = getrandom::fill(&mut e);
    u64::from_le_bytes(e)
}

impl Moves {
    /// The order of epoch `epoch` with each log at its last move (0: before every point).
    pub(crate) fn restore(epoch: u64, moved: impl Iterator<Item = ([u8; 32], u64)>) -> Moves {
        let mut m = Moves { epoch, count: 0, at: HashMap::new(), order: BTreeMap::new() };
        for (author, at) in moved.filter(|(_, at)| *at > 0) {
            m.moved_at(&author, at);
        }
        m
    }

    /// The position the next move takes.
    pub(crate) fn next(&self) -> u64 {
        self.count + 1
    }

    /// `author` moved, at position `at` (from [`Moves::next`], counted up within a batch).
    pub(crate) fn moved_at(&mut self, author: &[u8; 32], at: u64) {
        self.count = self.count.max(at);
        if let Some(old) = self.at.insert(*author, at) {
            self.order.remove(&old);
        }
        self.order.insert(at, *author);
    }

    #[cfg(test)]
    fn moved(&mut self, author: &[u8; 32]) {
        self.moved_at(author, self.next());
    }

    pub(crate) fn point(&self) -> ChangePoint {
        (self.epoch, self.count)
    }

    /// The logs moved after `point`, if it is of this order and they are at most `limit`.
    pub(crate) fn since(&self, point: ChangePoint, limit: usize) -> Option<Vec<[u8; 32]>> {
        if point.0 != self.epoch || point.1 > self.count {
            return None;
        }
        let mut out = Vec::new();
        for (_, a) in self.order.range(point.1 + 1..) {
            if out.len() == limit {
                return None;
            }
            out.push(*a);
        }
        out.sort_unstable();
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_moved_since_a_point() {
        let mut m = Moves::restore(new_epoch(), std::iter::empty());
        m.moved(&[1; 32]);
        let p = m.point();
        m.moved(&[2; 32]);
        m.moved(&[1; 32]);
        m.moved(&[2; 32]);
        assert_eq!(m.since(p, 10), Some(vec![[1; 32], [2; 32]]));
        assert_eq!(m.since(p, 1), None, "more than the limit");
        assert_eq!(m.since(m.point(), 10), Some(vec![]));
        assert_eq!(m.since((p.0.wrapping_add(1), p.1), 10), None, "another order's point");
    }

    #[test]
    fn a_restored_order_answers_as_the_one_it_was_saved_from() {
        let mut m = Moves::restore(9, std::iter::empty());
        m.moved(&[1; 32]);
        let p = m.point();
        m.moved(&[2; 32]);
        m.moved(&[3; 32]);
        m.moved(&[2; 32]);
        let saved = m.at.iter().map(|(a, at)| (*a, *at)).chain([([4; 32], 0)]);
        let r = Moves::restore(9, saved.collect::<Vec<_>>().into_iter());
        assert_eq!(r.point(), m.point());
        assert_eq!(r.since(p, 10), m.since(p, 10));
        assert_eq!(r.since(p, 10), Some(vec![[2; 32], [3; 32]]), "a log written before moves were kept is older");
    }
}
