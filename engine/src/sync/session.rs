//! The reconciliation session: a deterministic state machine over messages. It never touches a
//! socket or a store; the driver feeds it messages (`handle`) and carries out what it asks
//! (`poll_message`, `poll_transfer`).

mod first_contact;

use std::collections::VecDeque;
use std::sync::Arc;

use super::SyncError;
use super::headset::{AUTHOR_PREFIX, Bound, FP_LEN, HeadItem, HeadSet, ID_PREFIX, below, bound_between};
use super::wire::{Item, MAX_FRAME, MAX_ITEMS, MAX_RANGES, MAX_SINCE, MAX_WANTS, Message, Range, RangeBody};
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
pub use first_contact::{PLACE_DEPTH, SKETCH_MIN};

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
    /// Coded symbols sent (section 8.10).
    pub symbols_sent: usize,
    pub ranges_sent: usize,
    pub items_sent: usize,
    pub forks_seen: usize,
}

pub struct Session {
    heads: Arc<HeadSet>,
    initiator: bool,
    /// Our logs that moved since the last session with this peer synced (section 8.9).
    since: Option<Vec<[u8; 32]>>,
    /// The items our Since listed, until its answer arrives.
    since_sent: Option<Vec<HeadItem>>,
    /// The first-contact sketch exchange while it lasts (section 8.10).
    sketch: first_contact::Sketch,
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

/// The opening by ranges (section 8.1): one fingerprint range over the whole key space.
fn range_opening(heads: &HeadSet) -> Message {
    let (a, b) = heads.span(&None, &None);
    Message::Reconcile(vec![Range { upper: None, body: RangeBody::Fingerprint(heads.fingerprint(a, b)) }])
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
        Session::with_since(heads, initiator, None)
    }

    /// [`Session::new`] for a peer we synced with before: `since` lists our logs that moved
    /// since (section 8.9). The initiator then opens with a Since; a responder uses it to
    /// answer one.
    pub fn with_since(heads: impl Into<Arc<HeadSet>>, initiator: bool, since: Option<Vec<[u8; 32]>>) -> Session {
        let mut heads = heads.into();
        if !heads.is_settled() {
            Arc::make_mut(&mut heads).settle();
        }
        // Only logs this session reconciles count.
        let since = since.map(|l| l.into_iter().filter(|a| heads.get(a).is_some()).collect::<Vec<_>>());
        let mut out = VecDeque::new();
        let mut since_sent = None;
        let mut sketch = first_contact::Sketch::None;
        if let Some(l) = since.as_ref().filter(|l| initiator && l.len() <= MAX_SINCE) {
            let items: Vec<HeadItem> = l.iter().filter_map(|a| heads.get(a)).collect();
            out.push_back(Message::Since {
                fp: heads.fingerprint_excluding(l),
                items: items.iter().map(item_of).collect(),
            });
            since_sent = Some(items);
        } else if initiator && heads.len() >= SKETCH_MIN {
            out.push_back(first_contact::opening(&heads));
            sketch = first_contact::Sketch::Opened;
        } else if initiator {
            // Always a fingerprint first, even for small sets: the common case is "nothing
            // changed", which then costs one round trip.
            out.push_back(range_opening(&heads));
        }
        let mut s = Session {
            heads,
            initiator,
            since,
            since_sent,
            sketch,
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
            Message::Since { fp, items } => self.handle_since(fp, items, log),
            Message::SinceAnswer { fp, heads, extra } => self.handle_since_answer(fp, heads, extra, log),
            Message::Sketch { fp, tow } => self.handle_sketch(fp, &tow),
            Message::Symbols { from, cells } => self.handle_symbols(from, cells, log),
            Message::More { upto } => self.handle_more(upto),
            Message::Resolve { lack, heads } => self.handle_resolve(lack, heads, log),
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
        // The peer answered our Since or sketch with ranges: it could not use it.
        self.since_sent = None;
        self.sketch = first_contact::Sketch::None;
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
                    // Only our items the peer names matter: found by prefix, not by walking
                    // the range (which after a Since is every log).
                    let range = self.heads.items(a, b);
                    let lo = range.first().map(|i| i.author);
                    let mut mine: Vec<HeadItem> = Vec::new();
                    for p in &peer {
                        mine.extend(
                            self.heads
                                .by_prefix(&p.author.0)
                                .into_iter()
                                .filter(|i| lo.is_some_and(|l| i.author >= l) && below(&i.author, &r.upper)),
                        );
                    }
                    mine.dedup_by_key(|i| i.author);
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

    /// The answer to a fingerprint that differs over the whole key space: our items if few,
    /// else buckets (what a Reconcile of one differing range gets).
    fn whole_range(&self) -> Vec<Range> {
        let (a, b) = self.heads.span(&None, &None);
        if b - a <= LIST_THRESHOLD {
            let items = self.heads.items(a, b).iter().map(item_of).collect();
            return vec![Range { upper: None, body: RangeBody::Items(items) }];
        }
        let mut response = Vec::new();
        self.split(a, b, &None, &mut response);
        response
    }

    /// Our log matching a peer's item (by author prefix), if we hold one.
    fn ours(&self, peer: &Item) -> Option<HeadItem> {
        self.heads.by_prefix(&peer.author.0).into_iter().next()
    }

    fn flush_wants(&mut self) {
        for chunk in std::mem::take(&mut self.wants).chunks(MAX_WANTS) {
            self.out.push_back(Message::Want(chunk.to_vec()));
        }
    }

    /// A Since from the initiator (section 8.9): if the logs neither side lists agree, answer
    /// for the listed ones; else fall back to ranges.
    fn handle_since(&mut self, fp: [u8; FP_LEN], items: Vec<Item>, log: &impl LogIndex) -> Result<(), SyncError> {
        if self.initiator || self.stats.rounds > 0 || self.reconciled {
            return Err(SyncError::Protocol("since out of place"));
        }
        self.stats.rounds += 1;
        let mine: Vec<Option<HeadItem>> = items.iter().map(|p| self.ours(p)).collect();
        let mut listed: Vec<[u8; 32]> = mine.iter().flatten().map(|h| h.author).collect();
        listed.sort_unstable();
        let extra: Vec<[u8; 32]> =
            self.since.iter().flatten().filter(|a| listed.binary_search(a).is_err()).copied().collect();
        let mut excluded = listed;
        excluded.extend(&extra);
        excluded.sort_unstable();
        excluded.dedup();
        let rest = self.heads.fingerprint_excluding(&excluded);
        if extra.is_empty() && rest != fp {
            // The logs neither listed differ: the point was not a common one.
            let ranges = self.whole_range();
            self.out.push_back(Message::Reconcile(ranges));
            self.count_out();
            return Ok(());
        }
        let mut heads = Vec::with_capacity(items.len());
        for (p, o) in items.iter().zip(&mine) {
            match o {
                Some(o) => {
                    self.compare(&[*o], std::slice::from_ref(p), false, log);
                    heads.push((o.seq, item_of(o).id.0));
                }
                None => heads.push((0, [0; ID_PREFIX])),
            }
        }
        let extra_items: Vec<Item> = extra.iter().filter_map(|a| self.heads.get(a)).map(|h| item_of(&h)).collect();
        self.stats.items_sent += extra_items.len();
        self.flush_wants();
        self.out.push_back(Message::SinceAnswer { fp: (!extra.is_empty()).then_some(rest), heads, extra: extra_items });
        if let Some(e) = self.local_error.take() {
            return Err(SyncError::Local(e));
        }
        Ok(())
    }

    /// The answer to our Since: check the rest if asked, then compare what both listed.
    fn handle_since_answer(
        &mut self,
        fp: Option<[u8; FP_LEN]>,
        heads: Vec<(u64, [u8; ID_PREFIX])>,
        extra: Vec<Item>,
        log: &impl LogIndex,
    ) -> Result<(), SyncError> {
        let Some(sent) = self.since_sent.take() else {
            return Err(SyncError::Protocol("since answer without a since"));
        };
        self.stats.rounds += 1;
        if heads.len() != sent.len() {
            return Err(SyncError::Protocol("since answer does not match the since"));
        }
        let extra_mine: Vec<HeadItem> = extra.iter().filter_map(|p| self.ours(p)).collect();
        if let Some(fp) = fp {
            let mut excluded: Vec<[u8; 32]> = sent.iter().chain(&extra_mine).map(|h| h.author).collect();
            excluded.sort_unstable();
            excluded.dedup();
            if self.heads.fingerprint_excluding(&excluded) != fp {
                let ranges = self.whole_range();
                self.out.push_back(Message::Reconcile(ranges));
                self.count_out();
                return Ok(());
            }
        }
        for (o, (seq, id)) in sent.iter().zip(heads) {
            let p = Item { author: item_of(o).author, seq, id: Bytes(id) };
            self.compare(&[*o], &[p], false, log);
        }
        let list = self.compare(&extra_mine, &extra, true, log);
        self.flush_wants();
        if let Some(e) = self.local_error.take() {
            return Err(SyncError::Local(e));
        }
        if list.is_empty() {
            self.reconciled = true;
            self.out.push_back(Message::Reconcile(Vec::new()));
        } else {
            self.out.push_back(Message::Reconcile(vec![Range { upper: None, body: RangeBody::Final(list) }]));
            self.count_out();
        }
        Ok(())
    }

    /// Splits our items `[a, b)` into buckets with fingerprints.
    fn split(&self, a: usize, b: usize, upper: &Bound, response: &mut Vec<Range>) {
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

    pub(super) fn item(i: u32, seq: u64) -> HeadItem {
        let author = *blake3::hash(&i.to_le_bytes()).as_bytes();
        HeadItem {
            author,
            seq,
            id: EntryId(Bytes(*blake3::hash(&[&author[..], &seq.to_le_bytes()].concat()).as_bytes())),
        }
    }

    /// Pumps two sessions through encoded messages; returns each side's transfers, the rounds
    /// and the bytes of every message.
    pub(super) fn run(
        mut sa: Session,
        mut sb: Session,
        log: &impl LogIndex,
    ) -> (Vec<Transfer>, Vec<Transfer>, u32, usize) {
        let (mut ta, mut tb, mut bytes) = (Vec::new(), Vec::new(), 0);
        fn step(
            from: &mut Session,
            to: &mut Session,
            t: &mut Vec<Transfer>,
            bytes: &mut usize,
            log: &impl LogIndex,
        ) -> bool {
            let mut moved = false;
            while let Some(x) = from.poll_transfer() {
                t.push(x);
            }
            from.transfers_sent();
            while let Some(m) = from.poll_message() {
                let raw = m.encode();
                assert!(raw.len() <= MAX_FRAME, "a message of {} bytes", raw.len());
                *bytes += raw.len();
                let m = Message::decode(&raw).expect("every message decodes within the limits");
                to.handle(m, log).expect("handled");
                moved = true;
            }
            moved
        }
        for _ in 0..200 {
            let moved =
                step(&mut sa, &mut sb, &mut ta, &mut bytes, log) | step(&mut sb, &mut sa, &mut tb, &mut bytes, log);
            if sa.is_synced() && sb.is_synced() {
                return (ta, tb, sa.stats.rounds.max(sb.stats.rounds), bytes);
            }
            assert!(moved, "stalled");
        }
        panic!("no convergence");
    }

    fn pump(a: HeadSet, b: HeadSet) -> (Vec<Transfer>, Vec<Transfer>, u32) {
        let (ta, tb, rounds, _) = run(Session::new(a, true), Session::new(b, false), &NoLogs);
        (ta, tb, rounds)
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

    /// Every log is the chain `item` makes: any seq is on it.
    pub(super) struct Chains;
    impl LogIndex for Chains {
        fn id_at(&self, author: &[u8; 32], seq: u64) -> Result<Option<EntryId>, crate::sync::LocalError> {
            Ok(Some(EntryId(Bytes(*blake3::hash(&[&author[..], &seq.to_le_bytes()].concat()).as_bytes()))))
        }
    }

    /// Like `pump`, with each side's logs moved since a common sync point.
    fn pump_since(
        a: HeadSet,
        b: HeadSet,
        since_a: Vec<[u8; 32]>,
        since_b: Option<Vec<[u8; 32]>>,
    ) -> (Vec<Transfer>, Vec<Transfer>, u32, usize) {
        run(Session::with_since(a, true, Some(since_a)), Session::with_since(b, false, since_b), &Chains)
    }

    fn logs(range: std::ops::Range<u32>, seq: impl Fn(u32) -> u64) -> HeadSet {
        HeadSet::from_items(range.map(|i| item(i, seq(i))))
    }

    #[test]
    fn a_since_opening_finds_what_moved_in_one_round_trip() {
        // 20k logs in common; the opener moved 100 of them (the peer is behind on those).
        let moved: Vec<u32> = (0..100).map(|i| i * 197).collect();
        let a = logs(0..20_000, |i| if moved.contains(&i) { 2 } else { 1 });
        let b = logs(0..20_000, |_| 1);
        let mut since: Vec<[u8; 32]> = moved.iter().map(|i| item(*i, 0).author).collect();
        since.sort_unstable();
        let (ta, tb, rounds, bytes) = pump_since(a, b, since, None);
        assert_eq!(ta.len(), 100, "the opener sends each moved log");
        assert!(ta.iter().all(|t| t.from == 2 && t.to == 2));
        assert!(tb.is_empty());
        assert!(rounds <= 2, "{rounds} rounds");
        assert!(bytes < 100 * 64, "{bytes} bytes for 100 moved logs");
    }

    #[test]
    fn both_sides_moved_logs_are_reconciled_through_the_since() {
        let a = logs(0..5_000, |i| if i % 500 == 0 { 3 } else { 1 });
        let b = logs(0..5_001, |i| if i % 700 == 1 { 4 } else { 1 });
        let sa: Vec<[u8; 32]> = (0..5_000).filter(|i| i % 500 == 0).map(|i| item(i, 0).author).collect();
        let mut sb: Vec<[u8; 32]> =
            (0..5_001).filter(|i| i % 700 == 1 || *i == 5_000).map(|i| item(i, 0).author).collect();
        sb.sort_unstable();
        let mut sa = sa;
        sa.sort_unstable();
        let (ta, tb, rounds, _) = pump_since(a, b, sa, Some(sb));
        assert_eq!(ta.len(), 10);
        assert_eq!(tb.len(), 9, "the peer's moved logs and the one the opener lacks: {tb:?}");
        assert!(tb.iter().any(|t| t.from == 1), "the log the opener lacks goes whole");
        assert!(rounds <= 3, "{rounds} rounds");
    }

    #[test]
    fn a_since_from_a_point_that_is_not_common_falls_back_to_ranges() {
        // The opener's list misses a log that differs: the rest's fingerprint disagrees and
        // the session reconciles by ranges, still reaching the union.
        let a = logs(0..3_000, |i| if i == 10 || i == 2_000 { 2 } else { 1 });
        let b = logs(0..3_000, |_| 1);
        let (ta, tb, _, _) = pump_since(a, b, vec![item(10, 0).author], None);
        assert_eq!(ta.len(), 2, "{ta:?}");
        assert!(tb.is_empty());
        // And with the peer's own list naming an extra log, the opener's check catches it.
        let a = logs(0..3_000, |i| if i == 2_000 { 2 } else { 1 });
        let b = logs(0..3_000, |i| if i == 7 { 2 } else { 1 });
        let (ta, tb, _, _) = pump_since(a, b, vec![], Some(vec![item(7, 0).author]));
        assert_eq!((ta.len(), tb.len()), (1, 1));
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

    struct NoLogs;
    impl LogIndex for NoLogs {
        fn id_at(&self, _: &[u8; 32], _: u64) -> Result<Option<EntryId>, crate::sync::LocalError> {
            Ok(None)
        }
    }

    #[test]
    fn rounds_past_the_limit_are_refused() {
        let mut s = Session::new(HeadSet::new(), false);
        let mut result = Ok(());
        for i in 0..=MAX_ROUNDS {
            let m = Message::Reconcile(vec![Range { upper: None, body: RangeBody::Fingerprint([i as u8 + 1; 16]) }]);
            result = s.handle(m, &NoLogs);
            if result.is_err() {
                // Exactly MAX_ROUNDS rounds are answered; the next is refused.
                assert_eq!(i, MAX_ROUNDS, "refused at round {}", i + 1);
                break;
            }
        }
        assert_eq!(result, Err(SyncError::LimitExceeded("reconcile rounds")));
    }

    /// A peer may want at most MAX_WANTS_PER_SESSION single entries in one session, over any
    /// number of messages; it gets only entries of logs offered to it.
    #[test]
    fn wants_past_the_session_limit_are_refused() {
        let offered = [9u8; 32];
        let id = EntryId(crate::codec::Bytes([1; 32]));
        let heads = HeadSet::from_items([crate::sync::HeadItem { author: offered, seq: 1_000_000, id }]);
        let mut s = Session::new(heads, false);
        let per = MAX_WANTS / 4;
        let chunk =
            |from: usize, author: [u8; 32]| Message::Want((from..from + per).map(|q| (author, q as u64 + 1)).collect());
        let mut asked = 0;
        while asked < MAX_WANTS_PER_SESSION {
            // Every other message names a log not offered: not served, but counted.
            let author = if (asked / per).is_multiple_of(2) { offered } else { [8; 32] };
            assert_eq!(s.handle(chunk(asked, author), &NoLogs), Ok(()), "at {asked}");
            asked += per;
        }
        let mut served = 0;
        while let Some(t) = s.poll_transfer() {
            assert_eq!(t.author, offered, "only offered logs are served");
            served += 1;
        }
        assert_eq!(served, MAX_WANTS_PER_SESSION / 2, "the offered half, one transfer per wanted entry");
        assert_eq!(
            s.handle(Message::Want(vec![(offered, 1)]), &NoLogs),
            Err(SyncError::LimitExceeded("wanted entries in one session"))
        );
    }

    /// `n` received ranges, each from `body(r)`, with increasing 16-byte bounds.
    fn received(n: usize, body: impl Fn(usize, &dyn Fn(usize) -> [u8; AUTHOR_PREFIX]) -> RangeBody) -> Vec<Range> {
        let prefix = |i: usize| ((i as u128 + 1) << 8).to_be_bytes();
        (0..n)
            .map(|r| Range { upper: (r + 1 < n).then(|| prefix((r + 1) * 16).to_vec()), body: body(r, &prefix) })
            .collect()
    }

    /// The answer (spec/sync.md 8.2) to `ranges` from a node that holds nothing.
    fn answer_of(ranges: Vec<Range>) -> Vec<Range> {
        let mut s = Session::new(HeadSet::new(), false);
        s.handle(Message::Reconcile(ranges), &NoLogs).expect("handle");
        match s.poll_message() {
            Some(Message::Reconcile(answer)) => answer,
            other => panic!("expected a Reconcile, got {other:?}"),
        }
    }

    /// The answer budget cuts where the spec says. Items ranges of 16 items, answered by a node
    /// holding none of them: each answer is a final range of 16 lack markers, estimated at
    /// 60 + 16 × 38 bytes, and the answer is full once the estimate reaches MAX_FRAME / 2.
    #[test]
    fn the_byte_budget_cuts_an_answer_where_the_spec_says() {
        let items = |r: usize, prefix: &dyn Fn(usize) -> [u8; AUTHOR_PREFIX]| {
            RangeBody::Items(
                (0..16)
                    .map(|j| Item { author: Bytes(prefix(r * 16 + j)), seq: 1, id: Bytes([1; ID_PREFIX]) })
                    .collect(),
            )
        };
        let answer = answer_of(received(2000, items));
        let handled = (MAX_FRAME / 2).div_ceil(60 + 16 * 38);
        assert_eq!(answer.len(), handled + 1, "{handled} answered, then one range for the rest");
        assert!(
            answer[..handled]
                .iter()
                .all(|r| matches!(&r.body, RangeBody::Final(i) if i.len() == 16 && i.iter().all(|x| x.seq == 0)))
        );
        assert!(matches!(answer[handled].body, RangeBody::Fingerprint(_)) && answer[handled].upper.is_none());
    }

    /// The range budget: fingerprint ranges that match are answered with skips (60 bytes each
    /// in the estimate, far from the byte limit), until the ranges plus a split's 16 reach
    /// MAX_RANGES; then one fingerprint range closes the rest.
    #[test]
    fn the_range_budget_cuts_an_answer_where_the_spec_says() {
        let empty = HeadSet::new().fingerprint(0, 0);
        let answer = answer_of(received(MAX_RANGES, |_, _| RangeBody::Fingerprint(empty)));
        // Adjacent skips merge into one: a skip up to the last one handled, then the rest.
        let handled = MAX_RANGES - BUCKETS;
        assert_eq!(answer.len(), 2, "{answer:?}");
        assert!(matches!(answer[0].body, RangeBody::Skip));
        let prefix = |i: usize| ((i as u128 + 1) << 8).to_be_bytes();
        assert_eq!(answer[0].upper.as_deref(), Some(&prefix(handled * 16)[..]), "{handled} ranges handled");
        assert!(matches!(answer[1].body, RangeBody::Fingerprint(_)) && answer[1].upper.is_none());
    }

    /// A Want is served only for entries of the log that exist here: seq 0 and seqs past the
    /// head ask for nothing.
    #[test]
    fn wants_outside_a_log_are_ignored() {
        let head = super::tests::item(1, 5);
        let mut s = Session::new(HeadSet::from_items([head]), false);
        s.handle(Message::Want(vec![(head.author, 0), (head.author, 6), ([7; 32], 1), (head.author, 5)]), &NoLogs)
            .expect("handle");
        assert_eq!(s.poll_transfer(), Some(Transfer { author: head.author, from: 5, to: 5 }));
        assert_eq!(s.poll_transfer(), None);
    }

    /// A head set with changes not merged yet is settled before a session reads it: the
    /// opening fingerprint covers every item.
    #[test]
    fn a_session_settles_the_head_set_it_is_given() {
        let mut unsettled = HeadSet::new();
        unsettled.set(super::tests::item(1, 3));
        unsettled.set(super::tests::item(2, 4));
        assert!(!unsettled.is_settled());
        let opening = |h: HeadSet| Session::new(h, true).poll_message();
        assert_eq!(
            opening(unsettled),
            opening(HeadSet::from_items([super::tests::item(1, 3), super::tests::item(2, 4)]))
        );
    }

    /// The counters the peers view and the benches read: ranges and listed items sent.
    #[test]
    fn sent_ranges_and_items_are_counted() {
        let mine: Vec<HeadItem> = (0..5).map(|i| super::tests::item(i, 1)).collect();
        let opener = Session::new(HeadSet::from_items(mine.clone()), true);
        assert_eq!((opener.stats.ranges_sent, opener.stats.items_sent), (1, 0), "the opening fingerprint");
        let mut s = Session::new(HeadSet::from_items(mine), false);
        s.handle(Message::Reconcile(vec![Range { upper: None, body: RangeBody::Fingerprint([0; FP_LEN]) }]), &NoLogs)
            .expect("handle");
        // At most 16 items differ from the peer's fingerprint: all five are listed.
        assert_eq!((s.stats.ranges_sent, s.stats.items_sent), (1, 5));
    }

    /// A Since is the responder's first message or nothing (spec/sync.md 8.9): one received by
    /// the initiator, after a round, a second one, or after reconciliation is a protocol error.
    #[test]
    fn a_since_out_of_place_is_refused() {
        let heads = || HeadSet::from_items([super::tests::item(1, 2)]);
        let since = || Message::Since { fp: [0; FP_LEN], items: Vec::new() };
        let out_of_place = Err(SyncError::Protocol("since out of place"));
        let mut initiator = Session::new(heads(), true);
        assert_eq!(initiator.handle(since(), &NoLogs), out_of_place);

        let mut twice = Session::new(heads(), false);
        assert_eq!(twice.handle(since(), &NoLogs), Ok(()));
        assert_eq!(twice.handle(since(), &NoLogs), out_of_place);

        let mut after_a_round = Session::new(heads(), false);
        let differs = Message::Reconcile(vec![Range { upper: None, body: RangeBody::Fingerprint([0; FP_LEN]) }]);
        assert_eq!(after_a_round.handle(differs, &NoLogs), Ok(()));
        assert_eq!(after_a_round.handle(since(), &NoLogs), out_of_place);

        let mut reconciled = Session::new(heads(), false);
        assert_eq!(reconciled.handle(Message::Reconcile(Vec::new()), &NoLogs), Ok(()));
        assert_eq!(reconciled.handle(since(), &NoLogs), out_of_place);
    }

    /// An answer to a Since first asks for what it found off its chain (the Wants go before
    /// the answer) and counts the extra items it lists.
    #[test]
    fn a_since_answer_sends_its_wants_first_and_counts_its_extra_items() {
        use super::tests::item;
        let (listed, moved) = (item(1, 5), item(3, 1));
        let heads = HeadSet::from_items([listed, item(2, 1), moved]);
        let mut s = Session::with_since(heads, false, Some(vec![moved.author]));
        let mut theirs = item_of(&item(1, 2));
        theirs.id = Bytes([0xee; ID_PREFIX]);
        s.handle(Message::Since { fp: [0; FP_LEN], items: vec![theirs] }, &NoLogs).expect("since");
        assert_eq!(s.stats.items_sent, 1);
        assert_eq!(s.stats.forks_seen, 1);
        assert_eq!(s.poll_message(), Some(Message::Want(vec![(listed.author, 2)])));
        match s.poll_message() {
            Some(Message::SinceAnswer { fp: Some(_), heads, extra }) => {
                assert_eq!(heads, vec![(5, item_of(&listed).id.0)]);
                assert_eq!(extra, vec![item_of(&moved)]);
            }
            other => panic!("expected the answer, got {other:?}"),
        }
    }

    /// A peer's head at a lower seq that is not on our chain: we send our entry at that seq,
    /// ask for theirs (so both sides hold the fork proof) and count the fork.
    #[test]
    fn a_peer_head_off_our_chain_is_a_fork_found_below_our_head() {
        let ours = super::tests::item(1, 5);
        let mut theirs = item_of(&super::tests::item(1, 2));
        theirs.id = Bytes([0xee; ID_PREFIX]);
        let mut s = Session::new(HeadSet::from_items([ours]), false);
        let listed = Message::Reconcile(vec![Range { upper: None, body: RangeBody::Items(vec![theirs]) }]);
        s.handle(listed, &super::tests::Chains).expect("handle");
        assert_eq!(s.stats.forks_seen, 1);
        assert_eq!(s.poll_transfer(), Some(Transfer { author: ours.author, from: 2, to: 2 }));
        assert_eq!(s.poll_transfer(), None);
        assert_eq!(s.poll_message(), Some(Message::Want(vec![(ours.author, 2)])));
        // On our chain: no fork, the rest of our log goes.
        let mut s = Session::new(HeadSet::from_items([ours]), false);
        let on_chain = item_of(&super::tests::item(1, 2));
        let listed = Message::Reconcile(vec![Range { upper: None, body: RangeBody::Items(vec![on_chain]) }]);
        s.handle(listed, &super::tests::Chains).expect("handle");
        assert_eq!(s.stats.forks_seen, 0);
        assert_eq!(s.poll_transfer(), Some(Transfer { author: ours.author, from: 3, to: 5 }));
    }

    /// The answer to a listed range: where the peer is ahead we say where we are, what the
    /// peer lacks we send whole, what we lack we mark; the session ends reconciled once both
    /// sides skip, and keeps the head set it was given.
    #[test]
    fn a_complete_answer_says_where_we_stand_on_every_log() {
        let (ahead, lacked, ours_only) = (super::tests::item(1, 2), super::tests::item(2, 4), super::tests::item(3, 3));
        let heads = HeadSet::from_items([ahead, ours_only]);
        let mut s = Session::new(heads.clone(), false);
        let mut peer = vec![item_of(&super::tests::item(1, 7)), item_of(&lacked)];
        peer.sort_by_key(|i| i.author);
        s.handle(Message::Reconcile(vec![Range { upper: None, body: RangeBody::Items(peer) }]), &super::tests::Chains)
            .expect("handle");
        assert_eq!(s.poll_transfer(), Some(Transfer { author: ours_only.author, from: 1, to: 3 }));
        assert_eq!(s.poll_transfer(), None);
        let mut want = vec![item_of(&ahead), lack_marker(&item_of(&lacked))];
        want.sort_by_key(|i| i.author);
        assert_eq!(
            s.poll_message(),
            Some(Message::Reconcile(vec![Range { upper: None, body: RangeBody::Final(want) }]))
        );
        assert!(!s.reconciled());
        s.handle(Message::Reconcile(Vec::new()), &super::tests::Chains).expect("end");
        assert!(s.reconciled());
        assert_eq!(s.heads().fingerprint(0, s.heads().len()), heads.fingerprint(0, heads.len()));
    }

    /// Two heads at one seq with different ids are an equivocation: the node that sees it sends
    /// its own entry at that seq, lists its head in the final answer, and counts the fork.
    #[test]
    fn two_heads_at_one_seq_are_a_fork() {
        let ours = super::tests::item(1, 3);
        let mut theirs = item_of(&ours);
        theirs.id = Bytes([0xee; ID_PREFIX]);
        let mut s = Session::new(HeadSet::from_items([ours]), false);
        let listed = Message::Reconcile(vec![Range { upper: None, body: RangeBody::Items(vec![theirs]) }]);
        s.handle(listed, &NoLogs).expect("handle");
        assert_eq!(s.stats.forks_seen, 1);
        assert_eq!(s.poll_transfer(), Some(Transfer { author: ours.author, from: 3, to: 3 }));
        assert_eq!(s.poll_transfer(), None);
        match s.poll_message() {
            Some(Message::Reconcile(r)) => assert_eq!(r[0].body, RangeBody::Final(vec![item_of(&ours)])),
            other => panic!("expected the final answer, got {other:?}"),
        }
    }
}
