//! The reconciliation core, driven in memory: two nodes, messages pumped between them, no
//! sockets (like quinn-proto's `Pair`).

use std::collections::BTreeMap;

use libra_engine::log::{ChainPoint, Entry, EntryId, validate_next};
use libra_engine::sync::{HeadItem, HeadSet, LogIndex, Message, Session};
use proptest::prelude::*;

use crate::util::{chain, key};

/// A node's logs in memory, with the store's acceptance rules: next seq on the chain, or a
/// fork when an author signs a second entry for a held seq.
#[derive(Default, Clone)]
pub struct MemNode {
    pub logs: BTreeMap<[u8; 32], Vec<Entry>>,
    pub forked: std::collections::BTreeSet<[u8; 32]>,
}

impl LogIndex for MemNode {
    fn id_at(&self, author: &[u8; 32], seq: u64) -> Option<EntryId> {
        let i = usize::try_from(seq).ok()?.checked_sub(1)?;
        self.logs.get(author)?.get(i).map(|e| e.id)
    }
}

impl MemNode {
    pub fn heads(&self) -> HeadSet {
        HeadSet::from_items(
            self.logs
                .iter()
                .filter_map(|(a, l)| l.last().map(|e| HeadItem { author: *a, seq: e.header().seq, id: e.id })),
        )
    }

    fn ingest(&mut self, e: Entry) {
        let author = e.header().author.0;
        if self.forked.contains(&author) {
            return;
        }
        let log = self.logs.entry(author).or_default();
        let seq = e.header().seq as usize;
        if seq >= 1 && seq <= log.len() {
            if log[seq - 1].id != e.id {
                self.forked.insert(author);
            }
            return;
        }
        if validate_next(log.last().map(ChainPoint::of).as_ref(), &e).is_ok() {
            log.push(e);
        }
    }

    fn entries(&self, author: &[u8; 32], from: u64, to: u64) -> Vec<Entry> {
        let log = self.logs.get(author).map(Vec::as_slice).unwrap_or_default();
        log.iter().filter(|e| (from..=to).contains(&e.header().seq)).cloned().collect()
    }
}

/// What one side sends in one turn: its transfers as entry messages, then its queued messages.
fn outgoing(node: &MemNode, sess: &mut Session) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(t) = sess.poll_transfer() {
        let es = node.entries(&t.author, t.from, t.to);
        out.push(Message::Entries(es.iter().map(Entry::encode).collect()).encode());
    }
    sess.transfers_sent();
    while let Some(m) = sess.poll_message() {
        out.push(m.encode());
    }
    out
}

fn deliver(node: &mut MemNode, sess: &mut Session, wire: Vec<Vec<u8>>) {
    for w in wire {
        match Message::decode(&w).expect("decodes") {
            Message::Entries(es) => {
                for e in es {
                    node.ingest(Entry::decode(&e).expect("entry"));
                }
            }
            other => sess.handle(other, &*node).expect("handle"),
        }
    }
}

/// Sync statistics: reconcile turns (one direction each), bytes each way.
#[derive(Debug, Default)]
pub struct PairStats {
    pub turns: usize,
    pub bytes_ab: usize,
    pub bytes_ba: usize,
}

/// Runs a whole session between `a` (initiator) and `b` until both are synced.
pub fn sync_pair(a: &mut MemNode, b: &mut MemNode) -> PairStats {
    let mut sa = Session::new(a.heads(), true);
    let mut sb = Session::new(b.heads(), false);
    let mut stats = PairStats::default();
    for _ in 0..400 {
        let wa = outgoing(a, &mut sa);
        stats.turns += usize::from(!wa.is_empty());
        stats.bytes_ab += wa.iter().map(|w| w.len() + 4).sum::<usize>();
        let moved_a = !wa.is_empty();
        deliver(b, &mut sb, wa);
        let wb = outgoing(b, &mut sb);
        stats.turns += usize::from(!wb.is_empty());
        stats.bytes_ba += wb.iter().map(|w| w.len() + 4).sum::<usize>();
        let moved_b = !wb.is_empty();
        deliver(a, &mut sa, wb);
        if sa.is_synced() && sb.is_synced() {
            return stats;
        }
        assert!(moved_a || moved_b, "stalled before both sides were synced");
    }
    panic!("no convergence");
}

fn assert_union(a: &MemNode, b: &MemNode, full: &BTreeMap<[u8; 32], Vec<Entry>>) {
    for (author, log) in full {
        if a.forked.contains(author) || b.forked.contains(author) {
            continue;
        }
        let la = a.logs.get(author).map_or(0, Vec::len);
        let lb = b.logs.get(author).map_or(0, Vec::len);
        assert_eq!(la, lb, "log lengths differ");
        assert!(la <= log.len());
    }
}

#[test]
fn identical_stores_need_one_round_trip() {
    let mut a = MemNode::default();
    for i in 0..300 {
        let k = key(&format!("log {i}"));
        a.logs.insert(k.verifying_key().to_bytes(), chain(&k, 3));
    }
    let mut b = a.clone();
    let s = sync_pair(&mut a, &mut b);
    // A: fingerprint; B: empty reconcile (done). Then Done both ways.
    assert!(s.bytes_ab < 128 && s.bytes_ba < 128, "{s:?}");
}

#[test]
fn three_nodes_in_a_line_converge() {
    let (mut a, mut b, mut c) = (MemNode::default(), MemNode::default(), MemNode::default());
    for (node, name) in [(&mut a, "a"), (&mut b, "b"), (&mut c, "c")] {
        let k = key(name);
        node.logs.insert(k.verifying_key().to_bytes(), chain(&k, 5));
    }
    sync_pair(&mut a, &mut b);
    sync_pair(&mut b, &mut c);
    // A's entries reached C through B.
    assert!(c.logs.contains_key(&key("a").verifying_key().to_bytes()));
    sync_pair(&mut a, &mut b);
    for n in [&a, &b, &c] {
        assert_eq!(n.logs.len(), 3);
        assert!(n.logs.values().all(|l| l.len() == 5));
    }
}

#[test]
fn an_interrupted_sync_resumes_without_resending() {
    let k = key("big");
    let full = chain(&k, 200);
    let mut a = MemNode::default();
    a.logs.insert(k.verifying_key().to_bytes(), full.clone());
    let mut b = MemNode::default();
    // The first session delivered 120 entries before the connection dropped.
    b.logs.insert(k.verifying_key().to_bytes(), full[..120].to_vec());
    let s = sync_pair(&mut a, &mut b);
    assert_eq!(b.logs[&k.verifying_key().to_bytes()].len(), 200);
    let entry_bytes: usize = full[120..].iter().map(|e| e.encode().len()).sum();
    assert!(s.bytes_ab < entry_bytes + 1024, "resent too much: {} for {entry_bytes}", s.bytes_ab);
}

#[test]
fn forks_are_found_by_both_sides() {
    let k = key("mallory");
    let base = chain(&k, 4);
    let other = libra_engine::log::sign_entry(&k, Some((2, base[1].id)), 9_999_999, 99, b"other".to_vec());
    let (mut a, mut b) = (MemNode::default(), MemNode::default());
    let author = k.verifying_key().to_bytes();
    a.logs.insert(author, base.clone());
    b.logs.insert(author, vec![base[0].clone(), base[1].clone(), other]);
    sync_pair(&mut a, &mut b);
    assert!(a.forked.contains(&author) && b.forked.contains(&author));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random splits of random logs (some forked) reconcile to exactly the union.
    #[test]
    fn random_stores_reconcile_to_the_union(
        logs in proptest::collection::vec((1usize..12, 0usize..13, 0usize..13, any::<bool>()), 0..60),
    ) {
        let (mut a, mut b) = (MemNode::default(), MemNode::default());
        let mut full = BTreeMap::new();
        for (i, (len, ca, cb, fork)) in logs.iter().enumerate() {
            let k = key(&format!("p{i}"));
            let author = k.verifying_key().to_bytes();
            let log = chain(&k, *len);
            let (ca, cb) = ((*ca).min(*len), (*cb).min(*len));
            if ca > 0 { a.logs.insert(author, log[..ca].to_vec()); }
            if cb > 0 {
                let mut mine = log[..cb].to_vec();
                if *fork && cb >= 2 && ca >= cb {
                    let prev = &mine[cb - 2];
                    let alt = libra_engine::log::sign_entry(&k, Some((prev.header().seq, prev.id)), 50_000_000, 7, b"alt".to_vec());
                    mine[cb - 1] = alt;
                }
                b.logs.insert(author, mine);
            }
            full.insert(author, log);
        }
        sync_pair(&mut a, &mut b);
        assert_union(&a, &b, &full);
        for (author, log) in &full {
            if a.forked.contains(author) { continue; }
            let have = a.logs.get(author).map_or(0, Vec::len);
            let want = logs.iter().enumerate().find(|(i, _)| key(&format!("p{i}")).verifying_key().to_bytes() == *author)
                .map(|(_, (len, ca, cb, _))| (*ca).min(*len).max((*cb).min(*len))).unwrap_or(0);
            prop_assert_eq!(have, want);
            prop_assert!(have <= log.len());
        }
    }
}
