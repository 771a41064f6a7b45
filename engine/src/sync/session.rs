//! The reconciliation session: a deterministic state machine over messages. It never touches a
//! socket or a store; the driver feeds it messages (`handle`) and carries out what it asks
//! (`poll_message`, `poll_transfer`).

use std::collections::VecDeque;
use std::sync::Arc;

use super::SyncError;
use super::headset::{AUTHOR_PREFIX, Bound, HeadItem, HeadSet, ID_PREFIX, bound_between};
use super::wire::{Item, MAX_FRAME, MAX_ITEMS, MAX_RANGES, MAX_WANTS, Message, Range, RangeBody};
use crate::codec::Bytes;
use crate::log::EntryId;

/// A range with more items than this is split into fingerprinted buckets; at or below it, the
/// items are listed.
pub const LIST_THRESHOLD: usize = 16;
/// Buckets per split.
pub const BUCKETS: usize = 16;
/// Most reconcile rounds a session accepts (16-way splits need ~log16(n) + 2).
pub const MAX_ROUNDS: u32 = 64;
/// Most single entries a peer may request in one session.
pub const MAX_WANTS_PER_SESSION: usize = 4096;

/// Read access to the local logs, for checking that a peer's head lies on our chain.
pub trait LogIndex {
    /// The id at `seq` of `author`'s log, if held. A failed read is an error, never "not held"
    /// (which would be taken for a fork).
    fn id_at(&self, author: &[u8; 32], seq: u64) -> Result<Option<EntryId>, super::LocalError>;
}

/// Entries `from..=to` of `author`'s log that the peer lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    pub author: [u8; 32],
    pub from: u64,
    pub to: u64,
}

/// Counters for the peers view and the benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub rounds: u32,
    pub ranges_sent: usize,
    pub items_sent: usize,
    pub forks_seen: usize,
}

pub struct Session {
    heads: Arc<HeadSet>,
    out: VecDeque<Message>,
    transfers: VecDeque<Transfer>,
    wants: Vec<([u8; 32], u64)>,
    wants_served: usize,
    reconciled: bool,
    /// A local read failed while comparing: the session ends (code 100).
    local_error: Option<String>,
    sent_done: bool,
    peer_done: bool,
    pub stats: SessionStats,
}

/// What an answer costs on the wire so far, to stay well inside MAX_FRAME, MAX_RANGES and
/// MAX_ITEMS whatever the peer asked.
#[derive(Default)]
struct OutBudget {
    counted: usize,
    ranges: usize,
    items: usize,
    bytes: usize,
}

impl OutBudget {
    fn add(&mut self, ranges: &[Range]) {
        for r in ranges {
            self.ranges += 1;
            // Bound (≤ 34 B), mode, fingerprint (≤ 18 B), item array header.
            self.bytes += 60;
            if let RangeBody::Items(i) | RangeBody::Final(i) = &r.body {
                self.items += i.len();
                // Author prefix (18 B), seq (≤ 9 B), id prefix (10 B), array header.
                self.bytes += i.len() * 38;
            }
        }
    }
    fn full(&self) -> bool {
        self.bytes >= MAX_FRAME / 2
            || self.ranges + BUCKETS >= MAX_RANGES
            || self.items + 2 * LIST_THRESHOLD >= MAX_ITEMS / 2
    }
}

fn item_of(h: &HeadItem) -> Item {
    let mut a = [0u8; AUTHOR_PREFIX];
    a.copy_from_slice(&h.author[..AUTHOR_PREFIX]);
    let mut i = [0u8; ID_PREFIX];
    i.copy_from_slice(&h.id.as_bytes()[..ID_PREFIX]);
    Item { author: Bytes(a), seq: h.seq, id: Bytes(i) }
}

fn lack_marker(peer: &Item) -> Item {
    Item { author: peer.author, seq: 0, id: Bytes([0; ID_PREFIX]) }
}

fn id_prefix_matches(id: &EntryId, prefix: &Bytes<ID_PREFIX>) -> bool {
    id.as_bytes()[..ID_PREFIX] == prefix.0
}

impl Session {
    /// A session over `heads`, the logs this node may exchange with this peer. The initiator
    /// opens with the fingerprint of everything. A shared set is read, never copied.
    pub fn new(heads: impl Into<Arc<HeadSet>>, initiator: bool) -> Session {
        let mut heads = heads.into();
        if !heads.is_settled() {
            Arc::make_mut(&mut heads).settle();
        }
        let mut out = VecDeque::new();
        if initiator {
            // Always a fingerprint first, even for small sets: the common case is "nothing
            // changed", which then costs one round trip.
            let (a, b) = heads.span(&None, &None);
            let body = RangeBody::Fingerprint(heads.fingerprint(a, b));
            out.push_back(Message::Reconcile(vec![Range { upper: None, body }]));
        }
        let mut s = Session {
            heads,
            out,
            transfers: VecDeque::new(),
            wants: Vec::new(),
            wants_served: 0,
            reconciled: false,
            local_error: None,
            sent_done: false,
            peer_done: false,
            stats: SessionStats::default(),
        };
        s.count_out();
        s
    }

    fn count_out(&mut self) {
        if let Some(Message::Reconcile(r)) = self.out.back() {
            self.stats.ranges_sent += r.len();
            self.stats.items_sent += r
                .iter()
                .map(|r| match &r.body {
                    RangeBody::Items(i) | RangeBody::Final(i) => i.len(),
                    _ => 0,
                })
                .sum::<usize>();
        }
    }

    /// Handles a reconciliation-level message. Entries are the driver's business and never
    /// reach the session.
    pub fn handle(&mut self, msg: Message, log: &impl LogIndex) -> Result<(), SyncError> {
        match msg {
            Message::Reconcile(ranges) => self.handle_reconcile(ranges, log),
            Message::Want(w) => {
                self.wants_served += w.len();
                if self.wants_served > MAX_WANTS_PER_SESSION {
                    return Err(SyncError::LimitExceeded("wanted entries in one session"));
                }
                for (author, seq) in w {
                    // Only single entries of logs we offer this peer.
                    if self.heads.get(&author).is_some_and(|h| seq >= 1 && seq <= h.seq) {
                        self.transfers.push_back(Transfer { author, from: seq, to: seq });
                    }
                }
                Ok(())
            }
            Message::Done => {
                if !self.reconciled {
                    return Err(SyncError::Protocol("done before reconciliation ended"));
                }
                self.peer_done = true;
                Ok(())
            }
            Message::Close { code, reason } => Err(SyncError::PeerClosed { code, reason }),
            Message::Entries(_) | Message::Introduce { .. } | Message::Grant(_) => {
                Err(SyncError::Protocol("routed to the session"))
            }
        }
    }

    fn handle_reconcile(&mut self, ranges: Vec<Range>, log: &impl LogIndex) -> Result<(), SyncError> {
        let r = self.handle_reconcile_inner(ranges, log);
        match self.local_error.take() {
            Some(e) => Err(SyncError::Local(e)),
            None => r,
        }
    }

    fn handle_reconcile_inner(&mut self, ranges: Vec<Range>, log: &impl LogIndex) -> Result<(), SyncError> {
        if self.reconciled {
            return Err(SyncError::Protocol("reconcile after reconciliation ended"));
        }
        self.stats.rounds += 1;
        if self.stats.rounds > MAX_ROUNDS {
            return Err(SyncError::LimitExceeded("reconcile rounds"));
        }
        if ranges.is_empty() {
            self.reconciled = true;
            return Ok(());
        }
        let mut response: Vec<Range> = Vec::new();
        let mut lower: Bound = None;
        let mut budget = OutBudget::default();
        for r in ranges {
            if budget.full() {
                // Answer the rest next round: one fingerprint for everything from here on keeps
                // every message within the frame and range limits, and the peer splits it again.
                let (a, b) = self.heads.span(&lower, &None);
                response.push(Range { upper: None, body: RangeBody::Fingerprint(self.heads.fingerprint(a, b)) });
                break;
            }
            let (a, b) = self.heads.span(&lower, &r.upper);
            match r.body {
                RangeBody::Skip => response.push(Range { upper: r.upper.clone(), body: RangeBody::Skip }),
                RangeBody::Fingerprint(fp) => {
                    if self.heads.fingerprint(a, b) == fp {
                        response.push(Range { upper: r.upper.clone(), body: RangeBody::Skip });
                    } else if b - a <= LIST_THRESHOLD {
                        let items = self.heads.items(a, b).iter().map(item_of).collect();
                        response.push(Range { upper: r.upper.clone(), body: RangeBody::Items(items) });
                    } else {
                        self.split(a, b, &r.upper, &mut response);
                    }
                }
                RangeBody::Items(peer) => {
                    let mine: Vec<HeadItem> = self.heads.items(a, b).to_vec();
                    let list = self.compare(&mine, &peer, true, log);
                    response.push(Range { upper: r.upper.clone(), body: RangeBody::Final(list) });
                }
                RangeBody::Final(peer) => {
                    let mine: Vec<HeadItem> = self.heads.items(a, b).to_vec();
                    self.compare(&mine, &peer, false, log);
                    response.push(Range { upper: r.upper.clone(), body: RangeBody::Skip });
                }
            }
            budget.add(&response[budget.counted..]);
            budget.counted = response.len();
            lower = r.upper;
        }
        for chunk in std::mem::take(&mut self.wants).chunks(MAX_WANTS) {
            self.out.push_back(Message::Want(chunk.to_vec()));
        }
        if response.iter().all(|r| r.body == RangeBody::Skip) {
            self.reconciled = true;
            self.out.push_back(Message::Reconcile(Vec::new()));
        } else {
            // Merge runs of adjacent skips into one range: fewer bounds on the wire.
            let mut merged: Vec<Range> = Vec::with_capacity(response.len());
            for r in response {
                if r.body == RangeBody::Skip && merged.last().is_some_and(|l| l.body == RangeBody::Skip) {
                    if let Some(l) = merged.last_mut() {
                        l.upper = r.upper;
                    }
                } else {
                    merged.push(r);
                }
            }
            self.out.push_back(Message::Reconcile(merged));
            self.count_out();
        }
        Ok(())
    }

    /// Splits our items `[a, b)` into buckets with fingerprints.
    fn split(&mut self, a: usize, b: usize, upper: &Bound, response: &mut Vec<Range>) {
        let n = b - a;
        let items = self.heads.items(a, b);
        for k in 0..BUCKETS {
            let (s, e) = (k * n / BUCKETS, (k + 1) * n / BUCKETS);
            if s == e {
                continue;
            }
            let bound = if e < n { Some(bound_between(&items[e - 1].author, &items[e].author)) } else { upper.clone() };
            let fp = self.heads.fingerprint(a + s, a + e);
            response.push(Range { upper: bound, body: RangeBody::Fingerprint(fp) });
        }
    }

    /// Compares our items in a range with the peer's. `complete`: the peer listed all its items
    /// (we answer with our differing items and lack markers); otherwise it is the peer's answer
    /// to our complete list. Queues the transfers that are ours to make.
    fn compare(&mut self, mine: &[HeadItem], peer: &[Item], complete: bool, log: &impl LogIndex) -> Vec<Item> {
        let mut answer = Vec::new();
        let find = |author: &[u8; 32]| peer.iter().find(|p| author.starts_with(&p.author.0));
        for o in mine {
            match find(&o.author) {
                None if complete => self.transfers.push_back(Transfer { author: o.author, from: 1, to: o.seq }),
                // Not in an answer: the peer has the same head, or is ahead and sends.
                None => {}
                Some(p) if p.seq == 0 => self.transfers.push_back(Transfer { author: o.author, from: 1, to: o.seq }),
                Some(p) if p.seq == o.seq && !id_prefix_matches(&o.id, &p.id) => {
                    // Two heads at one seq: an equivocation. Each side sends its own.
                    self.stats.forks_seen += 1;
                    self.transfers.push_back(Transfer { author: o.author, from: o.seq, to: o.seq });
                    if complete {
                        answer.push(item_of(o));
                    }
                }
                Some(p) if p.seq == o.seq => {}
                Some(p) if p.seq < o.seq => {
                    let held = match log.id_at(&o.author, p.seq) {
                        Ok(h) => h,
                        Err(e) => {
                            self.local_error.get_or_insert(e.0);
                            continue;
                        }
                    };
                    let on_our_chain = held.is_some_and(|id| id_prefix_matches(&id, &p.id));
                    if on_our_chain {
                        self.transfers.push_back(Transfer { author: o.author, from: p.seq + 1, to: o.seq });
                    } else {
                        // The peer's head is not on our chain: send ours at that seq and ask
                        // for theirs, so both sides hold the fork proof.
                        self.stats.forks_seen += 1;
                        self.transfers.push_back(Transfer { author: o.author, from: p.seq, to: p.seq });
                        self.wants.push((o.author, p.seq));
                    }
                }
                // The peer is ahead: it must learn where we are.
                Some(_) if complete => answer.push(item_of(o)),
                Some(_) => {}
            }
        }
        if complete {
            for p in peer {
                if !mine.iter().any(|o| o.author.starts_with(&p.author.0)) {
                    answer.push(lack_marker(p));
                }
            }
            answer.sort_by_key(|x| x.author);
            answer.dedup_by(|x, y| x.author == y.author);
        }
        answer
    }

    /// The next message to send.
    pub fn poll_message(&mut self) -> Option<Message> {
        self.out.pop_front()
    }

    /// The next transfer to carry out.
    pub fn poll_transfer(&mut self) -> Option<Transfer> {
        self.transfers.pop_front()
    }

    /// The driver has sent every transfer polled so far. Once reconciliation has ended, that is
    /// when we tell the peer we are done.
    pub fn transfers_sent(&mut self) {
        if self.reconciled && self.transfers.is_empty() && !self.sent_done && self.out.is_empty() {
            self.sent_done = true;
            self.out.push_back(Message::Done);
        }
    }

    pub fn reconciled(&self) -> bool {
        self.reconciled
    }

    /// Both sides have sent everything the reconciliation called for.
    pub fn is_synced(&self) -> bool {
        self.reconciled && self.sent_done && self.peer_done
    }

    pub fn heads(&self) -> &Arc<HeadSet> {
        &self.heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Bytes;

    struct NoLogs;
    impl LogIndex for NoLogs {
        fn id_at(&self, _: &[u8; 32], _: u64) -> Result<Option<EntryId>, crate::sync::LocalError> {
            Ok(None)
        }
    }

    fn item(i: u32, seq: u64) -> HeadItem {
        let author = *blake3::hash(&i.to_le_bytes()).as_bytes();
        HeadItem {
            author,
            seq,
            id: EntryId(Bytes(*blake3::hash(&[&author[..], &seq.to_le_bytes()].concat()).as_bytes())),
        }
    }

    /// Pumps two sessions through encoded messages; returns each side's transfers.
    fn pump(a: HeadSet, b: HeadSet) -> (Vec<Transfer>, Vec<Transfer>, u32) {
        let (mut sa, mut sb) = (Session::new(a, true), Session::new(b, false));
        let (mut ta, mut tb) = (Vec::new(), Vec::new());
        fn step(from: &mut Session, to: &mut Session, t: &mut Vec<Transfer>) -> bool {
            let mut moved = false;
            while let Some(x) = from.poll_transfer() {
                t.push(x);
            }
            from.transfers_sent();
            while let Some(m) = from.poll_message() {
                let bytes = m.encode();
                assert!(bytes.len() <= MAX_FRAME, "a message of {} bytes", bytes.len());
                let m = Message::decode(&bytes).expect("every message decodes within the limits");
                to.handle(m, &NoLogs).expect("handled");
                moved = true;
            }
            moved
        }
        for _ in 0..200 {
            let moved = step(&mut sa, &mut sb, &mut ta) | step(&mut sb, &mut sa, &mut tb);
            if sa.is_synced() && sb.is_synced() {
                return (ta, tb, sa.stats.rounds.max(sb.stats.rounds));
            }
            assert!(moved, "stalled");
        }
        panic!("no convergence");
    }

    #[test]
    fn large_divergent_sets_stay_within_message_limits() {
        // 200k logs each, half shared: the answers must be deferred, not oversized.
        let a = HeadSet::from_items((0..200_000).map(|i| item(i, 1)));
        let b = HeadSet::from_items((100_000..300_000).map(|i| item(i, 1)));
        let (ta, tb, rounds) = pump(a, b);
        assert_eq!(ta.len(), 100_000, "A sends each log B lacks");
        assert_eq!(tb.len(), 100_000, "B sends each log A lacks");
        assert!(rounds < MAX_ROUNDS);
    }

    #[test]
    fn an_empty_node_answers_a_fingerprint() {
        let a = HeadSet::from_items((0..100).map(|i| item(i, 1)));
        let (ta, tb, _) = pump(a, HeadSet::new());
        assert_eq!((ta.len(), tb.len()), (100, 0));
        let (ta, tb, _) = pump(HeadSet::new(), HeadSet::from_items((0..100).map(|i| item(i, 1))));
        assert_eq!((ta.len(), tb.len()), (0, 100));
    }

    #[test]
    fn overlapping_ranges_are_refused() {
        let bad = Message::Reconcile(vec![
            Range { upper: None, body: RangeBody::Skip },
            Range { upper: None, body: RangeBody::Skip },
        ]);
        assert!(Message::decode(&bad.encode()).is_err());
    }
}
#[cfg(test)]
mod round_limit {
    use super::*;
    #[test]
    fn rounds_past_the_limit_are_refused() {
        struct NoLogs;
        impl LogIndex for NoLogs {
            fn id_at(&self, _: &[u8; 32], _: u64) -> Result<Option<EntryId>, crate::sync::LocalError> {
                Ok(None)
            }
        }
        let mut s = Session::new(HeadSet::new(), false);
        let mut result = Ok(());
        for i in 0..=MAX_ROUNDS {
            let m = Message::Reconcile(vec![Range { upper: None, body: RangeBody::Fingerprint([i as u8 + 1; 16]) }]);
            result = s.handle(m, &NoLogs);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SyncError::LimitExceeded("reconcile rounds")));
    }
}
