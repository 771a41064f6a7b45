use super::*;
use crate::log::{MAX_PAYLOAD, sign_entry};
use ed25519_dalek::SigningKey;

/// A chain of `n` entries by key `k`, each with a payload of `len` bytes.
fn chain(k: u8, n: usize, len: usize) -> Vec<Entry> {
    let key = SigningKey::from_bytes(&[k; 32]);
    let mut out: Vec<Entry> = Vec::new();
    for i in 0..n {
        let prev = out.last().map(|e| (e.header().seq, e.id));
        out.push(sign_entry(&key, prev, i as u64 + 1, crate::payload::KIND_SEALED, vec![k; len]));
    }
    out
}

/// A node holding `entries` (validated as they come).
fn holding(entries: impl IntoIterator<Item = Entry>) -> MemLogs {
    let mut m = MemLogs::default();
    for e in entries {
        m.ingest(e, true);
    }
    m
}

fn author(k: u8) -> [u8; 32] {
    SigningKey::from_bytes(&[k; 32]).verifying_key().to_bytes()
}

#[test]
fn ingest_takes_the_next_entry_and_refuses_gaps_unless_told_not_to_validate() {
    let es = chain(1, 4, 8);
    let mut m = MemLogs::default();
    m.ingest(es[0].clone(), true);
    m.ingest(es[2].clone(), true);
    assert_eq!(m.logs[&author(1)].len(), 1, "a gap is refused");
    m.ingest(es[1].clone(), true);
    m.ingest(es[0].clone(), true);
    assert_eq!(m.logs[&author(1)].len(), 2, "the next is taken, a copy of a held one ignored");
    assert!(m.forked.is_empty());
    m.ingest(es[3].clone(), false);
    assert_eq!(m.logs[&author(1)].len(), 3, "without validation the gap is taken as it comes");
}

#[test]
fn another_entry_at_a_held_position_freezes_the_log() {
    let (es, other) = (chain(1, 3, 8), chain(1, 1, 9));
    let mut m = MemLogs::default();
    m.ingest(es[0].clone(), true);
    m.ingest(other[0].clone(), true);
    assert_eq!(m.forked, BTreeSet::from([author(1)]));
    m.ingest(es[1].clone(), true);
    assert_eq!(m.logs[&author(1)].len(), 1, "a frozen log takes nothing more");
}

#[test]
fn positions_count_from_one_and_heads_skip_empty_logs() {
    let (a, b) = (chain(1, 3, 8), chain(2, 1, 8));
    let mut m = holding(a.iter().chain(&b).cloned());
    m.logs.insert(author(3), Vec::new());
    assert_eq!(m.id_at(&author(1), 0).expect("id"), None);
    assert_eq!(m.id_at(&author(1), 1).expect("id"), Some(a[0].id));
    assert_eq!(m.id_at(&author(1), 3).expect("id"), Some(a[2].id));
    assert_eq!(m.id_at(&author(1), 4).expect("id"), None);
    assert_eq!(m.id_at(&author(9), 1).expect("id"), None);
    assert_eq!(m.entry_count(), 4);
    let heads = m.heads();
    assert_eq!(heads.len(), 2);
    assert_eq!(heads.get(&author(1)), Some(HeadItem { author: author(1), seq: 3, id: a[2].id }));
    assert_eq!(heads.get(&author(2)), Some(HeadItem { author: author(2), seq: 1, id: b[0].id }));
}

#[test]
fn a_range_is_inclusive_at_both_ends() {
    let es = chain(1, 5, 8);
    let m = holding(es.clone());
    assert_eq!(m.range(&author(1), 2, 4), es[1..4].iter().map(Entry::encode).collect::<Vec<_>>());
    assert_eq!(m.range(&author(1), 5, 5), vec![es[4].encode()]);
    assert!(m.range(&author(2), 1, 5).is_empty());
}

/// The entries of each Entries message one side sent, in order.
fn entries_per_message(t: &Transcript, from_a: bool) -> Vec<usize> {
    t.messages
        .iter()
        .filter(|(a, _)| *a == from_a)
        .filter_map(|(_, w)| match Message::decode(w) {
            Ok(Message::Entries(es)) => Some(es.len()),
            _ => None,
        })
        .collect()
}

#[test]
fn entries_go_512_to_a_message() {
    let mut a = holding(chain(1, 1100, 1));
    let mut b = MemLogs::default();
    let t = run_pair(&mut a, &mut b, true).expect("sync");
    assert_eq!(b.entry_count(), 1100);
    assert_eq!(entries_per_message(&t, true), vec![512, 512, 76]);
}

#[test]
fn entries_fill_a_message_up_to_half_a_frame() {
    // Each entry takes a little more than 64 KiB: seven fit in half a frame, eight do not.
    let mut a = holding(chain(1, 16, MAX_PAYLOAD as usize));
    let mut b = MemLogs::default();
    let t = run_pair(&mut a, &mut b, true).expect("sync");
    assert_eq!(b.entry_count(), 16);
    assert_eq!(entries_per_message(&t, true), vec![7, 7, 2]);
    for (_, w) in &t.messages {
        assert!(w.len() <= super::super::MAX_FRAME / 2 + 64, "{} bytes", w.len());
    }
}

#[test]
fn the_transcript_counts_bytes_with_headers_and_reconcile_round_trips() {
    let mut a = MemLogs::default();
    let mut b = MemLogs::default();
    for e in chain(1, 3, 8) {
        a.ingest(e.clone(), true);
        b.ingest(e, true);
    }
    let t = run_pair(&mut a, &mut b, true).expect("sync");
    assert_eq!(t.bytes, t.messages.iter().map(|(_, w)| w.len() + 4).sum::<usize>());
    // Identical: the opening and its empty answer, one round trip, nothing else.
    assert_eq!((t.reconcile_messages, t.round_trips()), (2, 1));
    let tags: Vec<(bool, Option<u8>)> = t.messages.iter().map(|(a, w)| (*a, w.get(1).copied())).collect();
    assert_eq!(tags, vec![(true, Some(1)), (false, Some(1)), (true, Some(4)), (false, Some(4))], "then each is done");
    // One side ahead: entries move, and the messages that are not reconciliation are not counted.
    b.ingest(chain(2, 1, 8).remove(0), true);
    let t = run_pair(&mut a, &mut b, true).expect("sync");
    assert_eq!(a.entry_count(), 4);
    assert!(entries_per_message(&t, false) == vec![1], "{:?}", t.messages);
    let reconcile = t.messages.iter().filter(|(_, w)| matches!(w.get(1), Some(1 | 8..=13))).count();
    assert_eq!(t.reconcile_messages, reconcile);
    assert!(t.messages.len() > reconcile);
    assert_eq!(t.round_trips(), reconcile.div_ceil(2));
}

#[test]
fn each_entry_counts_five_bytes_of_framing_toward_half_a_frame() {
    // Entries of 58,254 bytes (after the first, which has no prev and is shorter): with 5
    // bytes each of framing, nine come to more than half a frame (524,288), so eight go to a
    // message; without it, nine would fit.
    let probe = chain(1, 2, 58_000)[1].encode().len();
    let len = 58_000 + 58_254 - probe;
    let es = chain(1, 18, len);
    assert_eq!(es[1].encode().len(), 58_254);
    let mut a = holding(es);
    let mut b = MemLogs::default();
    let t = run_pair(&mut a, &mut b, true).expect("sync");
    assert_eq!(entries_per_message(&t, true), vec![8, 8, 2]);
}
