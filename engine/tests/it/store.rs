//! The fjall store: appends, reads, ingest, idempotence, forks, and refusing bad stores.

use libra_engine::log::{Entry, MAX_PAYLOAD, ValidationError, sign_entry};
use libra_engine::store::StoreError;
use libra_engine::{Store, clock};

use crate::util::{chain, key, temp_store};

#[test]
fn append_read_and_reopen() {
    let (dir, mut store) = temp_store();
    let k = key("alice");
    let items: Vec<(u16, Vec<u8>)> = (0..10).map(|i| (99, format!("m{i}").into_bytes())).collect();
    let appended = store.append(&k, items, 1_000).expect("append");
    assert_eq!(appended.iter().map(|e| e.header().seq).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    let author = k.verifying_key().to_bytes();
    let head = store.head(&author).expect("head");
    assert_eq!((head.seq, head.id), (10, appended[9].id));
    drop(store);

    let store = Store::open(dir.path().join("store")).expect("reopen");
    assert_eq!(store.head(&author).map(|h| h.seq), Some(10));
    let log = store.read_log(&author, 4, 3).expect("read");
    assert_eq!(log.iter().map(|e| e.header().seq).collect::<Vec<_>>(), vec![4, 5, 6]);
    assert_eq!(log[0].payload.as_deref(), Some(&b"m3"[..]));
    let newest = store.newest(&author, 2).expect("newest");
    assert_eq!(newest.iter().map(|e| e.header().seq).collect::<Vec<_>>(), vec![10, 9]);
    let got = store.get(&appended[6].id).expect("get").expect("found");
    assert_eq!(got, appended[6]);
    assert_eq!(store.get(&libra_engine::EntryId(libra_engine::codec::Bytes([1; 32]))).expect("get"), None);
    assert!(store.verify().expect("verify").is_empty());
}

#[test]
fn timestamps_increase_even_if_the_clock_steps_back() {
    let (_dir, mut store) = temp_store();
    let k = key("alice");
    let a = store.append(&k, vec![(99, b"a".to_vec())], 5_000).expect("append");
    let b = store.append(&k, vec![(99, b"b".to_vec())], 1_000).expect("append");
    assert!(b[0].header().timestamp > a[0].header().timestamp);
}

#[test]
fn oversize_append_is_refused_and_nothing_stored() {
    let (_dir, mut store) = temp_store();
    let k = key("alice");
    let err = store.append(&k, vec![(99, b"ok".to_vec()), (99, vec![0; MAX_PAYLOAD as usize + 1])], 1);
    assert!(matches!(err, Err(StoreError::Invalid(ValidationError::Oversize { limit: MAX_PAYLOAD, .. }))));
    assert_eq!(store.head(&k.verifying_key().to_bytes()), None);
}

#[test]
fn ingest_is_idempotent_and_order_free() {
    let (_dir, mut store) = temp_store();
    let a = chain(&key("a"), 50);
    let b = chain(&key("b"), 30);
    // A prefix of one log first, then everything interleaved and reversed.
    let r1 = store.ingest(a[..20].to_vec(), clock::wall_ms()).expect("ingest");
    let mut all: Vec<Entry> = a.iter().cloned().chain(b.iter().cloned()).collect();
    all.reverse();
    let r2 = store.ingest(all.clone(), clock::wall_ms()).expect("ingest");
    assert!(r1.rejected.is_empty() && r2.rejected.is_empty(), "{r1:?} {r2:?}");
    assert_eq!(r1.accepted + r2.accepted, 80);
    assert_eq!(r2.duplicates, 20);
    let r3 = store.ingest(all, clock::wall_ms()).expect("ingest");
    assert_eq!((r3.accepted, r3.duplicates), (0, 80));
    assert_eq!(store.entry_count(), 80);
    assert!(store.verify().expect("verify").is_empty());
}

#[test]
fn ingest_stops_at_the_first_invalid_entry_of_a_log() {
    let (_dir, mut store) = temp_store();
    let mut a = chain(&key("a"), 10);
    let good_b = chain(&key("b"), 5);
    a[6].payload = Some(b"tampered".to_vec());
    let r = store.ingest(a.iter().chain(good_b.iter()).cloned().collect(), 0).expect("ingest");
    assert_eq!(r.accepted, 6 + 5);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].seq, 7);
    assert!(matches!(r.rejected[0].error, ValidationError::PayloadSizeMismatch { .. }));
    assert_eq!(r.skipped, 3);
    assert_eq!(store.head(&key("a").verifying_key().to_bytes()).map(|h| h.seq), Some(6));

    // A bad signature found by batch verification, in the middle of a long run.
    let mut c = chain(&key("c"), 700);
    let n = c[500].signed_bytes.len();
    c[500].signed_bytes[n - 1] ^= 1;
    let c: Vec<Entry> = c.into_iter().map(|e| Entry::from_parts(e.signed_bytes, e.payload).expect("decodes")).collect();
    let r = store.ingest(c, 0).expect("ingest");
    assert_eq!(r.accepted, 500);
    assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
    assert_eq!(r.rejected[0].error, ValidationError::BadSignature);
    assert_eq!(r.rejected[0].seq, 501);
    assert_eq!(r.skipped, 199);
    assert!(store.verify().expect("verify").is_empty());
}

#[test]
fn a_gap_is_refused() {
    let (_dir, mut store) = temp_store();
    let a = chain(&key("a"), 5);
    let r = store.ingest(vec![a[0].clone(), a[2].clone()], 0).expect("ingest");
    assert_eq!(r.accepted, 1);
    assert_eq!(r.rejected[0].error, ValidationError::WrongSeq { expected: 2, found: 3 });
}

#[test]
fn forks_are_proven_kept_and_freeze_the_log() {
    let (dir, mut store) = temp_store();
    let k = key("mallory");
    let a = chain(&k, 5);
    store.ingest(a.clone(), 0).expect("ingest");
    let other = sign_entry(&k, Some((2, a[1].id)), 1_000_500, 99, b"the other story".to_vec());
    let r = store.ingest(vec![other.clone()], 0).expect("ingest");
    let author = k.verifying_key().to_bytes();
    assert_eq!(r.forks, vec![author]);
    assert_eq!(r.rejected[0].error, ValidationError::Fork);
    assert!(store.is_forked(&author));
    // The first entry is kept.
    assert_eq!(store.get_at(&author, 3).expect("read").map(|e| e.id), Some(a[2].id));
    // Nothing more is accepted from that log, not even its own next entry.
    let next = sign_entry(&k, Some((5, a[4].id)), 2_000_000, 99, b"more".to_vec());
    let r = store.ingest(vec![next], 0).expect("ingest");
    assert_eq!((r.accepted, r.rejected[0].error.clone()), (0, ValidationError::Forked));
    assert!(matches!(store.append(&k, vec![(99, vec![])], 0), Err(StoreError::Invalid(ValidationError::Forked))));
    drop(store);

    let store = Store::open(dir.path().join("store")).expect("reopen");
    assert!(store.is_forked(&author));
    let forks = store.forks().expect("forks");
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0].1.verify(), Ok((author, 3)));
    assert_eq!(forks[0].1.second.0, other.signed_bytes);
    assert!(store.verify().expect("verify").is_empty());
}

#[test]
fn a_forged_conflict_is_not_a_fork() {
    let (_dir, mut store) = temp_store();
    let k = key("alice");
    let a = chain(&k, 3);
    store.ingest(a.clone(), 0).expect("ingest");
    let mut fake = sign_entry(&k, Some((1, a[0].id)), 1_000_700, 99, b"x".to_vec());
    let n = fake.signed_bytes.len();
    fake.signed_bytes[n - 1] ^= 1;
    let fake = Entry::from_parts(fake.signed_bytes, fake.payload).expect("decodes");
    let r = store.ingest(vec![fake], 0).expect("ingest");
    assert_eq!(r.rejected[0].error, ValidationError::BadSignature);
    assert!(!store.is_forked(&k.verifying_key().to_bytes()));
}

#[test]
fn two_versions_of_a_new_entry_in_one_batch_are_a_fork() {
    let (_dir, mut store) = temp_store();
    let k = key("mallory");
    let a = chain(&k, 2);
    let other = sign_entry(&k, Some((1, a[0].id)), 1_000_900, 99, b"other".to_vec());
    let r = store.ingest(vec![a[0].clone(), a[1].clone(), other], 0).expect("ingest");
    assert_eq!(r.accepted, 2);
    assert_eq!(r.forks.len(), 1);
}

#[test]
fn a_second_open_is_refused_while_locked() {
    let (dir, _store) = temp_store();
    match Store::open(dir.path().join("store")) {
        Err(StoreError::Locked(_)) => {}
        other => panic!("expected Locked, got {:?}", other.err()),
    }
}

#[test]
fn a_store_of_another_format_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    {
        let db = fjall::Database::builder(&path).open().expect("fjall");
        let meta = db.keyspace("meta", fjall::KeyspaceCreateOptions::default).expect("ks");
        meta.insert("format", "libra-store-v0").expect("insert");
        db.persist(fjall::PersistMode::SyncAll).expect("persist");
    }
    match Store::open(&path) {
        Err(StoreError::WrongFormat { found, .. }) => assert_eq!(found, "libra-store-v0"),
        other => panic!("expected WrongFormat, got {:?}", other.err()),
    }
}

#[test]
fn a_damaged_store_gives_an_error_not_a_panic() {
    let (dir, mut store) = temp_store();
    store.append(&key("a"), vec![(99, b"x".to_vec())], 1).expect("append");
    drop(store);
    let path = dir.path().join("store");
    // Overwrite every file of the store with garbage.
    fn scramble(p: &std::path::Path) {
        for entry in std::fs::read_dir(p).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                scramble(&path);
            } else if path.file_name().is_some_and(|n| n != "lock") {
                std::fs::write(&path, b"\xde\xad\xbe\xef not a store").expect("write");
            }
        }
    }
    scramble(&path);
    assert!(Store::open(&path).is_err());
}

#[test]
fn the_cached_head_set_follows_every_write() {
    use libra_engine::sync::{HeadItem, HeadSet};
    let rebuilt = |s: &Store| {
        let h = HeadSet::from_items(s.heads().map(|(a, h)| HeadItem { author: a, seq: h.seq, id: h.id }));
        let (a, b) = h.span(&None, &None);
        h.fingerprint(a, b)
    };
    let cached = |s: &mut Store| {
        let h = s.head_set();
        let (a, b) = h.span(&None, &None);
        h.fingerprint(a, b)
    };
    let (dir, mut store) = temp_store();
    assert_eq!(cached(&mut store), rebuilt(&store));
    store.append(&key("a"), vec![(99, b"x".to_vec())], 1).expect("append");
    store.ingest(chain(&key("b"), 5), 0).expect("ingest");
    assert_eq!(cached(&mut store), rebuilt(&store));
    store.append(&key("a"), vec![(99, b"y".to_vec())], 2).expect("append");
    assert_eq!(cached(&mut store), rebuilt(&store));
    drop(store);
    let mut store = Store::open(dir.path().join("store")).expect("reopen");
    assert_eq!(cached(&mut store), rebuilt(&store));
    assert_eq!(store.head_set().len(), 2);
}

/// Thousands of forgeries of one new position in one batch: at most two are weighed, ingest
/// does not recurse per forgery (it once could, deep enough to overflow the writer's stack),
/// and the honest log is untouched.
#[test]
fn many_forgeries_of_one_position_are_bounded() {
    let (_dir, mut store) = temp_store();
    let k = key("mallory");
    let a = chain(&k, 1);
    store.ingest(a.clone(), 0).expect("ingest");
    let mut batch = Vec::new();
    for i in 0..20_000u32 {
        let mut fake = sign_entry(&k, Some((1, a[0].id)), 1_000_700, 99, b"x".to_vec());
        let n = fake.signed_bytes.len();
        // A different bad signature each time: every forgery has its own id.
        fake.signed_bytes[n - 1] ^= (i % 255 + 1) as u8;
        fake.signed_bytes[n - 2] ^= (i / 255) as u8;
        batch.push(Entry::from_parts(fake.signed_bytes, fake.payload).expect("decodes"));
    }
    let r = store.ingest(batch, 0).expect("ingest");
    assert_eq!(r.accepted, 0);
    assert!(r.skipped >= 19_000, "{r:?}");
    assert!(!store.is_forked(&k.verifying_key().to_bytes()));
    assert_eq!(store.head(&k.verifying_key().to_bytes()).map(|h| h.seq), Some(1));
}

/// Opening never deletes data: a keyspace that lost its `current` file makes the open fail,
/// naming it, and leaves it where it is (fjall would remove it and lose what it held); with
/// the file back, everything is there.
#[test]
fn a_damaged_keyspace_is_reported_and_never_removed() {
    let (dir, mut store) = temp_store();
    let k = key("a");
    store.ingest(chain(&k, 5), libra_engine::clock::wall_ms()).expect("ingest");
    drop(store);
    let path = dir.path().join("store");
    let keyspaces: Vec<std::path::PathBuf> = std::fs::read_dir(path.join("keyspaces"))
        .expect("keyspaces")
        .map(|d| d.expect("entry").path())
        .filter(|p| p.join("current").exists())
        .collect();
    assert!(keyspaces.len() >= 11, "{keyspaces:?}");
    for ks in &keyspaces {
        let current = std::fs::read(ks.join("current")).expect("read");
        std::fs::remove_file(ks.join("current")).expect("remove");
        for _ in 0..2 {
            let err = match libra_engine::Store::open(&path) {
                Ok(_) => panic!("opened with {} damaged", ks.display()),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(&ks.display().to_string()) && err.contains("current"), "{err}");
            assert!(ks.is_dir(), "{} was removed", ks.display());
        }
        std::fs::write(ks.join("current"), current).expect("restore");
    }
    let store = libra_engine::Store::open(&path).expect("opens again");
    assert_eq!(store.head(&k.verifying_key().to_bytes()).map(|h| h.seq), Some(5));
}

#[test]
fn what_a_contact_is_known_to_hold_only_rises_and_survives_a_reopen() {
    use libra_engine::codec::Bytes;
    use libra_engine::identity::UserId;
    let (dir, store) = temp_store();
    let (ben, cy) = (UserId(Bytes([1; 32])), UserId(Bytes([2; 32])));
    let heads = |pairs: &[(u8, u64)]| pairs.iter().map(|(a, s)| ([*a; 32], *s)).collect();
    store.raise_known_heads(&ben, &heads(&[(7, 5), (8, 2)])).expect("raise");
    store.raise_known_heads(&ben, &heads(&[(7, 3), (8, 9), (9, 1)])).expect("raise");
    store.raise_known_heads(&cy, &heads(&[(7, 100)])).expect("raise");
    drop(store);
    let store = libra_engine::Store::open(dir.path().join("store")).expect("reopen");
    assert_eq!(store.known_heads(&ben).expect("read"), heads(&[(7, 5), (8, 9), (9, 1)]));
    assert_eq!(store.known_heads(&cy).expect("read"), heads(&[(7, 100)]));
    assert!(store.known_heads(&UserId(Bytes([3; 32]))).expect("read").is_empty());
}

/// The journal files in a store directory, by id.
fn journals(dir: &std::path::Path) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)
        .expect("read store dir")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".jnl")?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

/// `calls` appends of 50 entries of 900 bytes each to `k`'s log.
fn append_calls(store: &mut Store, k: &ed25519_dalek::SigningKey, calls: u64) {
    for i in 0..calls {
        let items = (0..50).map(|j| (99, vec![u8::try_from((i + j) % 251).unwrap_or(0); 900])).collect();
        store.append(k, items, 1_000 + i).expect("append");
    }
}

#[test]
fn a_clean_close_leaves_no_journal_to_replay() {
    let (dir, mut store) = temp_store();
    let path = dir.path().join("store");
    let k = key("alice");
    append_calls(&mut store, &k, 20);
    let before = journals(&path);
    let written = before.last().copied().expect("an active journal");
    store.flush().expect("flush");
    let after = journals(&path);
    // The journal that held the 1,000 entries is gone; only a fresh, empty one is left.
    assert_eq!(after.len(), 1, "journals after a flush: {after:?} (before: {before:?})");
    assert!(after[0] > written, "journals after a flush: {after:?} (before: {before:?})");
    drop(store);

    let store = Store::open(&path).expect("reopen");
    let author = k.verifying_key().to_bytes();
    assert_eq!(store.head(&author).map(|h| h.seq), Some(1_000));
    assert_eq!(store.read_log(&author, 1, 1_000).expect("read").len(), 1_000);
    assert!(store.verify().expect("verify").is_empty());
    // A close with nothing written since seals nothing more.
    store.flush().expect("flush");
    assert_eq!(journals(&path), after);
}

#[test]
fn a_journal_replayed_after_a_kill_goes_at_the_next_clean_close() {
    let (dir, mut store) = temp_store();
    let path = dir.path().join("store");
    let k = key("alice");
    append_calls(&mut store, &k, 10);
    // Dropped without a flush, as a kill leaves it: the next open replays the journal.
    drop(store);
    let replayed = journals(&path);
    let store = Store::open(&path).expect("reopen");
    // Nothing written since the open: a clean close must still seal and drop the replayed
    // journal, or every later open replays it again.
    store.flush().expect("flush");
    let after = journals(&path);
    assert_eq!(after.len(), 1, "journals after a flush: {after:?} (replayed: {replayed:?})");
    assert!(after[0] > *replayed.last().expect("a journal"), "journals: {after:?} (replayed: {replayed:?})");
    drop(store);
    let store = Store::open(&path).expect("reopen");
    let author = k.verifying_key().to_bytes();
    assert_eq!(store.read_log(&author, 1, 500).expect("read").len(), 500);
    assert!(store.verify().expect("verify").is_empty());
}
