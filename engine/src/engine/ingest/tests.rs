//! An ingest stored in chunks ends as the same ingest in one call: the same report, heads and
//! fork proofs, whatever the chunk size.

use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;

use super::*;
use crate::log::sign_entry;

const KIND: u16 = 100;

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

/// A log of `n` entries by `k`, stamped from `ms` on, its payloads tagged `tag`.
fn chain(k: &SigningKey, n: u64, ms: u64, tag: u8) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for seq in 1..=n {
        let prev = out.last().map(|e: &Entry| (e.header().seq, e.id));
        out.push(sign_entry(k, prev, crate::clock::from_ms(ms + seq), KIND, vec![tag, seq as u8]));
    }
    out
}

fn badly_signed(e: &Entry) -> Entry {
    let mut bytes = e.signed_bytes.clone();
    *bytes.last_mut().expect("signature") ^= 1;
    Entry::from_parts(bytes, e.payload.clone()).expect("decodes")
}

/// Five logs: a good one; one with a forged entry in the middle; one with two entries for its
/// first position (a fork) and more after them; one stamped two days ahead from its third
/// entry on; and one already partly held by the store.
fn batch() -> (Vec<Entry>, Vec<Entry>) {
    let now = crate::clock::wall_ms();
    let good = chain(&key(1), 9, 1_000, 1);
    let mut forged = chain(&key(2), 8, 1_000, 2);
    forged[3] = badly_signed(&forged[3]);
    let (x, y) = (chain(&key(3), 5, 1_000, 3), chain(&key(3), 1, 2_000, 4));
    let mut forks = x.clone();
    forks.insert(1, y[0].clone());
    let mut ahead = chain(&key(4), 2, now, 5);
    for seq in 3..=6 {
        let prev = ahead.last().map(|e| (e.header().seq, e.id));
        let ms = now + 2 * crate::clock::MAX_AHEAD_MS + seq;
        ahead.push(sign_entry(&key(4), prev, crate::clock::from_ms(ms), KIND, vec![5, seq as u8]));
    }
    let known = chain(&key(5), 7, 1_000, 6);
    let held = known[..3].to_vec();
    // Interleaved as a peer might send them, one log's entries in order.
    let mut all: Vec<Entry> = Vec::new();
    let logs = [good, forged, forks, ahead, known];
    for i in 0..10 {
        for log in &logs {
            if let Some(e) = log.get(i) {
                all.push(e.clone());
            }
        }
    }
    (all, held)
}

fn store_with(held: &[Entry]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Store::open(dir.path().join("s")).expect("open");
    s.ingest(held.to_vec(), 0).expect("held before");
    (dir, s)
}

/// The report with how far ahead a held entry was taken out: each ingest reads the clock.
fn timeless(mut r: IngestReport) -> IngestReport {
    for x in &mut r.rejected {
        if let crate::log::ValidationError::Ahead { ahead_ms } = &mut x.error {
            *ahead_ms = 0;
        }
    }
    r
}

/// What the store holds of the batch's logs: heads and fork proofs.
fn state(s: &Store) -> (Vec<Option<u64>>, usize) {
    let heads = (1..=5).map(|i| s.head(&key(i).verifying_key().to_bytes()).map(|h| h.seq)).collect();
    (heads, s.forks().expect("forks").len())
}

/// The batch, which of it verifies, and the store and report of ingesting it in one call.
struct OneCall {
    all: Vec<Entry>,
    held: Vec<Entry>,
    verified: BTreeSet<EntryId>,
    _dir: tempfile::TempDir,
    whole: Store,
    expected: IngestReport,
}

fn one_call() -> OneCall {
    let (all, held) = batch();
    let refs: Vec<&Entry> = all.iter().collect();
    let bad: BTreeSet<usize> = crate::log::verify_many(&refs, 1).into_iter().collect();
    let verified: BTreeSet<EntryId> =
        all.iter().enumerate().filter(|(i, _)| !bad.contains(i)).map(|(_, e)| e.id).collect();
    let (_dir, mut whole) = store_with(&held);
    let expected = whole.ingest_preverified(all.clone(), crate::clock::wall_ms(), &verified).expect("one call");
    assert!(expected.accepted > 0 && !expected.rejected.is_empty() && !expected.held.is_empty());
    assert_eq!(expected.forks.len(), 1);
    assert!(expected.duplicates > 0);
    OneCall { all, held, verified, _dir, whole, expected }
}

#[test]
fn an_ingest_in_chunks_ends_as_the_same_ingest_in_one_call() {
    let OneCall { all, held, verified, _dir, whole, expected } = one_call();
    for size in 1..=12 {
        let (_d, mut s) = store_with(&held);
        let answer: Arc<Mutex<Option<Result<IngestReport, EngineError>>>> = Arc::default();
        let a = answer.clone();
        let mut ingest = Ingest::new(
            all.clone(),
            verified.clone(),
            None,
            Box::new(move |r| {
                *a.lock().expect("lock") = Some(r);
            }),
        );
        ingest.fixed = Some(size);
        let mut chunks = 1;
        while !ingest.run_chunk(&mut s, false) {
            assert!(answer.lock().expect("lock").is_none(), "answered only once all is stored");
            chunks += 1;
        }
        assert!(size >= all.len() || chunks > 1, "{chunks} chunks of {size}");
        let got = answer.lock().expect("lock").take().expect("answered").expect("stored");
        assert_eq!(timeless(got), timeless(expected.clone()), "chunks of {size}");
        assert_eq!(state(&s), state(&whole), "chunks of {size}");
    }
}

#[test]
fn a_chunk_never_parts_two_entries_of_one_position() {
    let k = key(3);
    let (x, y) = (chain(&k, 3, 1_000, 3), chain(&k, 1, 2_000, 4));
    let all = vec![x[0].clone(), y[0].clone(), x[1].clone(), x[2].clone()];
    let mut ingest = Ingest::new(all, BTreeSet::new(), None, Box::new(|_| {}));
    let first = ingest.next_chunk(1);
    assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), vec![x[0].id, y[0].id], "the pair, first sent first");
    assert_eq!(ingest.next_chunk(1).iter().map(|e| e.id).collect::<Vec<_>>(), vec![x[1].id]);
}

#[test]
fn an_ingest_in_pieces_with_shared_marks_ends_as_the_same_ingest_in_one_call() {
    let OneCall { all, held, verified, _dir, whole, expected } = one_call();

    for size in 1..=8 {
        let pieces = pieces(all.clone(), size);
        assert_eq!(pieces.iter().map(Vec::len).sum::<usize>(), all.len(), "pieces of {size} keep every entry");
        assert!(size >= all.len() || pieces.len() > 1, "pieces of {size}");
        let (_d, mut s) = store_with(&held);
        let marks: Arc<Mutex<Marks>> = Arc::default();
        let mut report = IngestReport::default();
        for piece in pieces {
            let answer: Arc<Mutex<Option<Result<IngestReport, EngineError>>>> = Arc::default();
            let a = answer.clone();
            let reply = Box::new(move |r| *a.lock().expect("lock") = Some(r));
            let mut ingest = Ingest::piece(piece, verified.clone(), None, marks.clone(), reply);
            while !ingest.run_chunk(&mut s, false) {}
            report.merge(answer.lock().expect("lock").take().expect("answered").expect("stored"));
        }
        // Without the shared marks a later piece would try a log an earlier one refused or
        // held back again, and the report (and store) would differ.
        assert_eq!(timeless(report), timeless(expected.clone()), "pieces of {size}");
        assert_eq!(state(&s), state(&whole), "pieces of {size}");
    }
}

#[test]
fn a_piece_never_parts_two_entries_of_one_position() {
    let k = key(3);
    let (x, y) = (chain(&k, 3, 1_000, 3), chain(&k, 1, 2_000, 4));
    let all = vec![x[0].clone(), y[0].clone(), x[1].clone(), x[2].clone()];
    let ids = |p: &Vec<Entry>| p.iter().map(|e| e.id).collect::<Vec<_>>();
    let got = pieces(all, 1);
    assert_eq!(got.iter().map(ids).collect::<Vec<_>>(), vec![vec![x[0].id, y[0].id], vec![x[1].id], vec![x[2].id]]);
}
