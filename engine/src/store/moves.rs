//! The order in which heads moved, in memory: a sync point is a position in it, and the logs
//! moved since a point are what a session with a peer synced at that point may need to
//! reconcile (spec/sync.md, section 8.9). Each store instance starts a new order with a random
//! epoch, so a point from before a restart or a reopen is never taken for one of this order.

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

impl Default for Moves {
    fn default() -> Self {
        let mut e = [0u8; 8];
        // A clash of two epochs would only make a session verify a wrong point, which its
        // fingerprint check catches (section 8.9); randomness just makes that vanishingly rare.
        let _ = getrandom::fill(&mut e);
        Moves { epoch: u64::from_le_bytes(e), count: 0, at: HashMap::new(), order: BTreeMap::new() }
    }
}

impl Moves {
    pub(crate) fn moved(&mut self, author: &[u8; 32]) {
        self.count += 1;
        if let Some(old) = self.at.insert(*author, self.count) {
            self.order.remove(&old);
        }
        self.order.insert(self.count, *author);
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
        let mut m = Moves::default();
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
}
