//! Appends and ingest against a real store on disk: what is taken, what is refused and why,
//! and what the report counts (spec/log.md §§5–7, ingest).

use ed25519_dalek::{Signer, SigningKey};

use super::*;
use crate::codec::Bytes;
use crate::identity::{DeviceId, UserId};
use crate::log::{EntryId, Header, SignedHeader};

const KIND: u16 = 100;

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

fn author(k: &SigningKey) -> [u8; 32] {
    k.verifying_key().to_bytes()
}

/// A log of `n` entries by `k`, timestamps 10, 20, …
fn chain(k: &SigningKey, n: u64, tag: u8) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for seq in 1..=n {
        let prev = out.last().map(|e: &Entry| (e.header().seq, e.id));
        out.push(sign_entry(k, prev, seq * 10, KIND, vec![tag, seq as u8]));
    }
    out
}

/// `e` with a header changed by `f`, signed again by `k`.
fn resigned(k: &SigningKey, e: &Entry, f: impl FnOnce(&mut Header)) -> Entry {
    let mut header = e.header().clone();
    f(&mut header);
    let signature = Bytes(k.sign(&header.signing_input()).to_bytes());
    let bytes = SignedHeader { header, signature }.encode();
    Entry::from_parts(bytes, e.payload.clone()).expect("decodes")
}

/// `e` with one bit of its signature flipped.
fn badly_signed(e: &Entry) -> Entry {
    let mut bytes = e.signed_bytes.clone();
    *bytes.last_mut().expect("signature") ^= 1;
    Entry::from_parts(bytes, e.payload.clone()).expect("decodes")
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path().join("s")).expect("open");
    (dir, s)
}

/// Puts `k`'s device under `user` in the store's trust view (the certificate's signature is
/// not what these tests are about), revoked after `revoked_after` if given.
fn owned_by(s: &mut Store, user: UserId, k: &SigningKey, revoked_after: Option<u64>) {
    s.trust.vouch_unsigned(user, DeviceId(Bytes(author(k)))).revoked_after = revoked_after;
}

fn rejection(k: &SigningKey, seq: u64, error: ValidationError) -> Rejection {
    Rejection { author: author(k), seq, error }
}

#[test]
fn appends_chain_and_nothing_past_the_payload_limit_is_signed() {
    let (_d, mut s) = store();
    let k = key(1);
    let out = s.append(&k, vec![(KIND, vec![1]), (KIND, vec![2]), (KIND, vec![3])], 5).expect("append");
    assert_eq!(out.iter().map(|e| e.header().seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(out[0].header().prev, None);
    assert_eq!(out[2].header().prev, Some(out[1].id));
    assert!(out.windows(2).all(|w| w[0].header().timestamp < w[1].header().timestamp));
    assert_eq!(s.head(&author(&k)).map(|h| (h.seq, h.id)), Some((3, out[2].id)));
    assert_eq!(s.get_at(&author(&k), 2).expect("read"), Some(out[1].clone()));

    let limit = MAX_PAYLOAD as usize;
    let err = s.append(&k, vec![(KIND, vec![0; 1]), (KIND, vec![0; limit + 1])], 5).expect_err("oversize");
    assert!(matches!(err, StoreError::Invalid(ValidationError::Oversize { size, .. }) if size == limit as u64 + 1));
    assert_eq!(s.head(&author(&k)).map(|h| h.seq), Some(3), "nothing of the refused batch is stored");
    let at_limit = s.append(&k, vec![(KIND, vec![0; limit])], 5).expect("at the limit");
    assert_eq!(at_limit[0].header().seq, 4);
    assert!(s.append(&k, Vec::new(), 5).expect("nothing").is_empty());
    assert_eq!(s.entry_count(), 4);
}

#[test]
fn entries_signed_before_the_write_are_stored_only_if_their_log_and_clock_did_not_move() {
    let (_d, mut s) = store();
    let k = key(1);
    s.append(&k, vec![(KIND, vec![1])], 5).expect("append");
    // Signed while nothing moves: stored as signed, after the head it was signed for.
    let signed = s.sign_append(&k, vec![(KIND, vec![2]), (KIND, vec![3])], 5).expect("sign");
    assert_eq!(s.head(&author(&k)).map(|h| h.seq), Some(1), "signing stores nothing");
    let out = s.append_signed(signed).expect("store").expect("fresh");
    assert_eq!(out.iter().map(|e| e.header().seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(s.head(&author(&k)).map(|h| (h.seq, h.id)), Some((3, out[1].id)));

    // Another append came between: the early signing would fork the log; nothing of it is kept.
    let stale = s.sign_append(&k, vec![(KIND, vec![4])], 5).expect("sign");
    let between = s.append(&k, vec![(KIND, vec![5])], 5).expect("append");
    assert!(!s.is_fresh(&stale));
    assert!(s.append_signed(stale).expect("no error").is_none());
    assert_eq!(s.head(&author(&k)).map(|h| (h.seq, h.id)), Some((4, between[0].id)));
    assert_eq!(s.read_log(&author(&k), 1, 10).expect("read").len(), 4);

    // A timestamp seen meanwhile (an ingest moves the clock) also sends it back to be signed again.
    let stale = s.sign_append(&k, vec![(KIND, vec![6])], 5).expect("sign");
    let now = crate::clock::wall_ms();
    let other = sign_entry(&key(2), None, crate::clock::from_ms(now), KIND, vec![9]);
    assert_eq!(s.ingest(vec![other], now).expect("ingest").accepted, 1);
    assert_ne!(s.clock, stale.clock_before, "the ingest moved the clock");
    assert!(s.append_signed(stale).expect("no error").is_none());
    assert_eq!(s.head(&author(&k)).map(|h| h.seq), Some(4));
    let again = s.append(&k, vec![(KIND, vec![6])], now).expect("append");
    assert!(again[0].header().timestamp > crate::clock::from_ms(now), "stamped after what was seen");
}

#[test]
fn ingest_takes_logs_in_any_order_and_counts_what_it_already_holds() {
    let (_d, mut s) = store();
    let (a, b) = (key(1), key(2));
    let mut all: Vec<Entry> = chain(&a, 4, 1).into_iter().chain(chain(&b, 3, 2)).collect();
    all.reverse();
    let mut twice = all.clone();
    twice.push(all[0].clone());
    let r = s.ingest(twice, 1000).expect("ingest");
    assert_eq!(r, IngestReport { accepted: 7, ..IngestReport::default() }, "a copy within a batch is one entry");
    assert_eq!(s.head(&author(&a)).map(|h| h.seq), Some(4));
    assert_eq!(s.head(&author(&b)).map(|h| h.seq), Some(3));
    // New log numbers are handed out one by one, and survive a reopen.
    let (la, lb) = (s.head(&author(&a)).expect("a").lognum, s.head(&author(&b)).expect("b").lognum);
    assert_eq!(la.abs_diff(lb), 1);

    let r = s.ingest(all.clone(), 1000).expect("again");
    assert_eq!(r, IngestReport { duplicates: 7, ..IngestReport::default() });
    // Some held, some new.
    let more = chain(&a, 6, 1);
    let r = s.ingest(more[2..].to_vec(), 1000).expect("more");
    assert_eq!((r.accepted, r.duplicates), (2, 2));
    let path = s.path().to_path_buf();
    drop(s);
    let s = Store::open(&path).expect("reopen");
    assert_eq!(s.head(&author(&a)).map(|h| (h.lognum, h.seq)), Some((la, 6)));
    assert_eq!(s.head(&author(&b)).map(|h| h.lognum), Some(lb));
    assert_eq!(s.entry_count(), 9);
}

#[test]
fn each_head_move_takes_the_next_place_in_the_order_of_moves() {
    let (_d, mut s) = store();
    let (a, b) = (key(1), key(2));
    s.ingest(chain(&a, 1, 1), 0).expect("a");
    s.ingest(chain(&b, 1, 2), 0).expect("b");
    let (ma, mb) = (s.head(&author(&a)).expect("a").moved, s.head(&author(&b)).expect("b").moved);
    assert!(mb > ma);
    s.ingest(chain(&a, 2, 1), 0).expect("a again");
    assert!(s.head(&author(&a)).expect("a").moved > mb);
}

#[test]
fn a_different_entry_at_a_held_position_is_a_fork_that_freezes_the_log() {
    let (_d, mut s) = store();
    let k = key(1);
    let held = chain(&k, 3, 1);
    s.ingest(held.clone(), 0).expect("ingest");
    let other = chain(&k, 4, 9);
    let r = s.ingest(other[1..].to_vec(), 0).expect("fork");
    assert_eq!(r.rejected, vec![rejection(&k, 2, ValidationError::Fork)]);
    assert_eq!((r.accepted, r.skipped, r.forks.clone()), (0, 2, vec![author(&k)]));
    assert!(s.is_forked(&author(&k)));
    let proofs = s.forks().expect("forks");
    assert_eq!(proofs.len(), 1);
    assert_eq!(proofs[0].1.first.0, held[1].signed_bytes);
    assert_eq!(proofs[0].1.second.0, other[1].signed_bytes);

    // Frozen: nothing more is taken, from anyone, nor appended.
    let r = s.ingest(other[3..].to_vec(), 0).expect("after");
    assert_eq!(r.rejected, vec![rejection(&k, 0, ValidationError::Forked)]);
    assert_eq!(r.skipped, 0);
    let r = s.ingest(chain(&k, 6, 1)[3..].to_vec(), 0).expect("after");
    assert_eq!((r.accepted, r.skipped), (0, 2));
    assert!(matches!(s.append(&k, vec![(KIND, vec![])], 0), Err(StoreError::Invalid(ValidationError::Forked))));
    // A forgery at a held position is a bad signature, not a fork.
    let (_d2, mut t) = store();
    t.ingest(held.clone(), 0).expect("ingest");
    let r = t.ingest(vec![badly_signed(&other[1]), other[2].clone(), other[3].clone()], 0).expect("forged");
    assert_eq!(r.rejected, vec![rejection(&k, 2, ValidationError::BadSignature)]);
    assert_eq!(r.skipped, 2);
    assert!(!t.is_forked(&author(&k)));
}

#[test]
fn two_entries_for_one_new_position_are_weighed_in_a_second_round_and_never_a_third() {
    let (_d, mut s) = store();
    let k = key(1);
    let (x, y) = (chain(&k, 2, 1), chain(&k, 2, 2));
    let r = s.ingest(vec![x[0].clone(), y[0].clone()], 0).expect("ingest");
    assert_eq!((r.accepted, r.forks.clone()), (1, vec![author(&k)]));
    assert_eq!(r.rejected, vec![rejection(&k, 1, ValidationError::Fork)]);

    // More than two entries for one position: the rest are dropped unread.
    let (_d2, mut s) = store();
    let many: Vec<Entry> = (1..=5).map(|t| chain(&k, 1, t).remove(0)).collect();
    let r = s.ingest(many, 0).expect("ingest");
    assert_eq!((r.accepted, r.skipped, r.forks.len()), (1, 3, 1));

    // A first entry that fails its signature: the second round stores its rival and what
    // follows, and leaves a second rival of a later position unjudged rather than recurse.
    let (_d3, mut s) = store();
    let z = chain(&k, 2, 3);
    let batch = vec![badly_signed(&x[0]), y[0].clone(), y[1].clone(), resigned(&k, &z[1], |h| h.prev = Some(y[0].id))];
    let r = s.ingest(batch, 0).expect("ingest");
    assert_eq!(r.accepted, 2);
    assert_eq!(r.rejected, vec![rejection(&k, 1, ValidationError::BadSignature)]);
    assert_eq!(r.skipped, 1);
    assert!(r.forks.is_empty() && !s.is_forked(&author(&k)));
    assert_eq!(s.head(&author(&k)).map(|h| h.seq), Some(2));
}

#[test]
fn a_structural_failure_ends_its_log_and_skips_the_rest() {
    let k = key(1);
    let c = chain(&k, 5, 1);
    let seq0 = resigned(&k, &c[0], |h| {
        h.seq = 0;
    });
    let bad_prev = resigned(&k, &c[2], |h| h.prev = Some(EntryId(Bytes([7; 32]))));
    let early = resigned(&k, &c[2], |h| h.timestamp = 20);
    let mut no_payload = c[2].clone();
    no_payload.payload = None;
    let mut other_payload = c[2].clone();
    other_payload.payload = Some(vec![1, 4]);
    for (third, error) in [
        (bad_prev, ValidationError::PrevMismatch),
        (early, ValidationError::TimestampRegression { previous: 20, found: 20 }),
        (no_payload, ValidationError::Malformed("entry without payload".into())),
        (other_payload, ValidationError::PayloadHashMismatch),
    ] {
        let (_d, mut s) = store();
        let batch = vec![c[0].clone(), c[1].clone(), third, c[3].clone(), c[4].clone()];
        let r = s.ingest(batch, 0).expect("ingest");
        assert_eq!(r.rejected, vec![rejection(&k, 3, error)]);
        assert_eq!((r.accepted, r.skipped), (2, 2));
        assert_eq!(s.head(&author(&k)).map(|h| h.seq), Some(2));
    }
    let (_d, mut s) = store();
    let r = s.ingest(vec![seq0, c[0].clone()], 0).expect("ingest");
    assert_eq!(r.rejected, vec![rejection(&k, 0, ValidationError::WrongSeq { expected: 1, found: 0 })]);
    assert_eq!((r.accepted, r.skipped), (0, 1));
    s.ingest(c[..2].to_vec(), 0).expect("ingest");
    let r = s.ingest(vec![resigned(&k, &c[2], |h| h.seq = 0)], 0).expect("seq 0");
    assert_eq!(r.rejected, vec![rejection(&k, 0, ValidationError::WrongSeq { expected: 3, found: 0 })]);
    let r = s.ingest(vec![c[3].clone()], 0).expect("gap");
    assert_eq!(r.rejected, vec![rejection(&k, 4, ValidationError::WrongSeq { expected: 3, found: 4 })]);
}

#[test]
fn a_bad_signature_refuses_its_entry_and_skips_the_rest_of_that_log_only() {
    let (_d, mut s) = store();
    let (a, b) = (key(1), key(2));
    let mut ca = chain(&a, 5, 1);
    ca[1] = badly_signed(&ca[1]);
    // A broken link after the bad signature is not reported; its entry and those after it are
    // counted as skipped.
    ca[3] = resigned(&a, &ca[3], |h| h.prev = None);
    let cb = chain(&b, 2, 2);
    let r = s.ingest(ca.into_iter().chain(cb).collect(), 0).expect("ingest");
    assert_eq!(r.rejected, vec![rejection(&a, 2, ValidationError::BadSignature)]);
    assert_eq!((r.accepted, r.skipped), (3, 3));
    assert_eq!(s.head(&author(&a)).map(|h| h.seq), Some(1));
    assert_eq!(s.head(&author(&b)).map(|h| h.seq), Some(2));
    let summary = r.summary(0);
    assert_eq!(summary.accepted, 3);
    assert_eq!(summary.misbehaviour.as_deref(), Some("seq 2: signature does not verify"));
}

#[test]
fn entries_verified_before_the_lock_are_not_verified_again() {
    let (_d, mut s) = store();
    let k = key(1);
    let c = chain(&k, 2, 1);
    let forged = badly_signed(&c[1]);
    // The caller vouches for what it lists (it ran verify_many on them): only the others are
    // checked here.
    let vouched: BTreeSet<EntryId> = [c[0].id].into();
    let r = s.ingest_preverified(vec![c[0].clone(), forged.clone()], 0, &vouched).expect("ingest");
    assert_eq!(r.rejected, vec![rejection(&k, 2, ValidationError::BadSignature)]);
    assert_eq!(r.accepted, 1);
    let (_d2, mut t) = store();
    let all: BTreeSet<EntryId> = [c[0].id, forged.id].into();
    let r = t.ingest_preverified(vec![c[0].clone(), forged], 0, &all).expect("ingest");
    assert_eq!(r.accepted, 2, "what the caller verified is taken as verified");
}

#[test]
fn a_revoked_device_signs_nothing_valid_after_its_revocation_point() {
    let (_d, mut s) = store();
    let k = key(1);
    owned_by(&mut s, UserId(Bytes([0xaa; 32])), &k, Some(2));
    let r = s.ingest(chain(&k, 5, 1), 0).expect("ingest");
    assert_eq!(r.rejected, vec![rejection(&k, 3, ValidationError::Revoked { last_seq: 2 })]);
    assert_eq!((r.accepted, r.skipped), (2, 2));
    assert_eq!(r.summary(0).misbehaviour, None, "an honest peer may hold them");
}

/// Ann's sealed texts to Ben (secret 0x22), and a store that reads as Ben.
fn sealed_to_ben(n: u8) -> (Vec<Entry>, x25519_dalek::StaticSecret) {
    use crate::messaging::{Body, ChatId, SealRandom, aad, seal};
    let ben = x25519_dalek::StaticSecret::from([0x22; 32]);
    let to = [x25519_dalek::PublicKey::from(&ben).to_bytes()];
    let k = key(1);
    let mut out: Vec<Entry> = Vec::new();
    for i in 1..=n {
        let body = Body::Text { chat: ChatId(Bytes([0xc0; 16])), text: format!("m{i}"), reply_to: None };
        let sealed = seal(&body.encode(), &aad(&author(&k)), &to, &SealRandom::fresh()).expect("seal");
        let prev = out.last().map(|e: &Entry| (e.header().seq, e.id));
        out.push(sign_entry(&k, prev, u64::from(i) * 10, crate::payload::KIND_SEALED, sealed.encode()));
    }
    (out, ben)
}

fn reading(secrets: Vec<x25519_dalek::StaticSecret>) -> (tempfile::TempDir, Store) {
    let (d, mut s) = store();
    let reader = crate::messaging::Reader::new(secrets, UserId(Bytes([0xbb; 32])), DeviceId(Bytes([0xbd; 32])));
    s.set_reader(reader).expect("reader");
    (d, s)
}

#[test]
fn content_keys_looked_for_before_the_write_are_taken_only_for_the_same_secrets() {
    use crate::messaging::SealError;
    let (entries, ben) = sealed_to_ben(3);
    let (_d, mut plain) = reading(vec![ben.clone()]);
    plain.ingest(entries.clone(), 0).expect("ingest");
    let want = plain.chat_rows().expect("rows");
    assert!(want.len() > 3, "three messages shown");

    // Looked for beforehand with the reader's secrets: the same rows, and the keys kept.
    let (_d2, mut s) = reading(vec![ben.clone()]);
    let secrets = s.reader_secrets().expect("a reader");
    let refs: Vec<&Entry> = entries.iter().collect();
    let keys = crate::messaging::view::content_keys(&refs, &secrets, 2);
    assert_eq!(keys.len(), 3);
    s.note_opened(secrets.iter().map(|(_, p)| *p).collect(), keys.clone());
    s.ingest(entries.clone(), 0).expect("ingest");
    assert_eq!(s.chat_rows().expect("rows"), want);
    for e in &entries {
        assert_eq!(s.kept_key(&e.id).expect("read").map(Ok), keys.get(&e.id).cloned());
    }

    // Believed without a second agreement: "not for us" under the same secrets shows nothing.
    let (_d3, mut s) = reading(vec![ben.clone()]);
    let used: Vec<[u8; 32]> = s.reader_secrets().expect("reader").iter().map(|(_, p)| *p).collect();
    let none = entries.iter().map(|e| (e.id, Err(SealError::NotForUs))).collect();
    s.note_opened(used, none);
    s.ingest(entries[..1].to_vec(), 0).expect("ingest");
    assert!(s.chat_rows().expect("rows").is_empty());
    // Spent by that ingest: the next one agrees keys itself.
    s.ingest(entries[1..].to_vec(), 0).expect("ingest");
    assert!(!s.chat_rows().expect("rows").is_empty());

    // Looked for with other secrets (a rotation came between): looked for again.
    let (_d4, mut s) = reading(vec![ben]);
    let stale = entries.iter().map(|e| (e.id, Err(SealError::NotForUs))).collect();
    s.note_opened(vec![[9; 32]], stale);
    s.ingest(entries, 0).expect("ingest");
    assert_eq!(s.chat_rows().expect("rows"), want);
}

#[test]
fn what_this_device_sealed_is_projected_from_its_plaintext_without_opening() {
    use crate::messaging::{Body, ChatId, SealRandom, aad, seal};
    // Sealed to someone else only: the reader could not open it, so the rows can only come
    // from the plaintext noted before the append.
    let (_d, mut s) = reading(vec![x25519_dalek::StaticSecret::from([0x22; 32])]);
    let k = key(1);
    let mut reader = s.reader.take().expect("reader");
    reader.device = DeviceId(Bytes(author(&k)));
    s.set_reader(reader).expect("reader");
    let body = Body::Text { chat: ChatId(Bytes([0xc0; 16])), text: "noted".into(), reply_to: None };
    let someone = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([0x33; 32])).to_bytes();
    let rnd = SealRandom::fresh();
    let sealed = seal(&body.encode(), &aad(&author(&k)), &[someone], &rnd).expect("seal").encode();
    let (_d2, mut unnoted) = reading(vec![x25519_dalek::StaticSecret::from([0x22; 32])]);
    unnoted.append(&k, vec![(crate::payload::KIND_SEALED, sealed.clone())], 0).expect("append");
    assert!(unnoted.chat_rows().expect("rows").is_empty(), "not for this reader");
    s.note_plaintext(&sealed, body.encode(), rnd.content_key);
    let e = s.append(&k, vec![(crate::payload::KIND_SEALED, sealed)], 0).expect("append");
    let kinds: Vec<u8> = s.chat_rows().expect("rows").keys().map(|k| k[0]).collect();
    assert_eq!(kinds, b"ms", "the message and its chat");
    assert_eq!(s.kept_key(&e[0].id).expect("read"), Some(rnd.content_key));
}

#[test]
fn a_bad_first_entry_of_the_next_log_is_that_logs_alone() {
    // Logs are judged in author order: the bad signature opens the second log's run, right
    // where the first log's ends.
    let (mut first, mut second) = (key(1), key(2));
    if author(&first) > author(&second) {
        std::mem::swap(&mut first, &mut second);
    }
    let mut cs = chain(&second, 2, 2);
    cs[0] = badly_signed(&cs[0]);
    let (_d, mut s) = store();
    let r = s.ingest(chain(&first, 2, 1).into_iter().chain(cs).collect(), 0).expect("ingest");
    assert_eq!(r.rejected, vec![rejection(&second, 1, ValidationError::BadSignature)]);
    assert_eq!((r.accepted, r.skipped), (2, 1));
    assert_eq!(s.head(&author(&first)).map(|h| h.seq), Some(2));
    assert_eq!(s.head(&author(&second)), None);
}

#[test]
fn what_this_store_signed_alone_may_leave_at_once_and_grouped_only_after_the_fsync() {
    let (_d, mut s) = store();
    let k = key(1);
    s.append(&k, vec![(KIND, vec![1])], 0).expect("append");
    assert_eq!(s.sendable_seq(&author(&k)), Some(1), "synced on its own");
    s.set_grouped(true);
    s.append(&k, vec![(KIND, vec![2])], 0).expect("append");
    assert_eq!(s.sendable_seq(&author(&k)), Some(1), "waits for the group's fsync");
}

#[test]
fn only_writes_that_change_who_may_connect_say_so() {
    use crate::messaging::{Body, ContactCard, SealRandom, aad, seal};
    let ben = x25519_dalek::StaticSecret::from([0x22; 32]);
    let (_d, mut s) = reading(vec![ben.clone()]);
    let k = key(1);
    // Ben's own device (so its contact notes count), certified as his in the trust view.
    owned_by(&mut s, UserId(Bytes([0xbb; 32])), &k, None);
    s.take_peers_changed();
    let (plain, _) = sealed_to_ben(1);
    let generation = s.interest_generation();
    s.ingest(plain, 0).expect("ingest");
    assert!(!s.take_peers_changed(), "a message changes nobody's access");
    assert_eq!(s.interest_generation(), generation);

    let to = [x25519_dalek::PublicKey::from(&ben).to_bytes()];
    let note = Body::Contact(ContactCard { name: "cy".into(), certs: vec![] }).encode();
    let sealed = seal(&note, &aad(&author(&k)), &to, &SealRandom::fresh()).expect("seal");
    let head = s.head(&author(&k)).expect("head");
    let e = sign_entry(&k, Some((head.seq, head.id)), 1000, crate::payload::KIND_SEALED, sealed.encode());
    s.ingest(vec![e], 0).expect("ingest");
    assert!(s.take_peers_changed(), "a contact noted by one of our devices");
    assert!(s.interest_generation() > generation);
}

#[test]
fn a_revoked_devices_refused_entries_are_examined_for_statements_up_to_the_bound() {
    use crate::payload::{AgreementKey, KIND_AGREEMENT, Payload};
    let (_d, mut s) = store();
    let k = key(1);
    owned_by(&mut s, UserId(Bytes([0xaa; 32])), &k, Some(1));
    // Seq 1 stands; seqs 2 to 258 are refused. The examined ones are the first
    // EXAMINED_PER_LOG of those: seq 257 is the last, and its new agreement key counts;
    // seq 258's does not.
    let mut log: Vec<Entry> = Vec::new();
    for seq in 1..=258u64 {
        let (kind, payload) = match seq {
            257 | 258 => {
                (KIND_AGREEMENT, Payload::Agreement(AgreementKey { agreement: Bytes([seq as u8; 32]) }).encode())
            }
            _ => (KIND, vec![seq as u8]),
        };
        let prev = log.last().map(|e: &Entry| (e.header().seq, e.id));
        log.push(sign_entry(&k, prev, seq * 10, kind, payload));
    }
    assert_eq!(crate::store::refused::EXAMINED_PER_LOG, 256);
    let r = s.ingest(log, 0).expect("ingest");
    assert_eq!(r.rejected, vec![rejection(&k, 2, ValidationError::Revoked { last_seq: 1 })]);
    let device = DeviceId(Bytes(author(&k)));
    assert_eq!(s.trust().agreements.get(&device), Some(&(257, Bytes([1; 32]))));
    assert_eq!(s.refused_statements().expect("kept").len(), 1);
}

#[test]
fn an_entry_stamped_over_a_day_ahead_is_held_until_the_clock_catches_up() {
    let (_d, mut s) = store();
    let k = key(1);
    let now = 1_767_225_600_000;
    let day = crate::clock::MAX_AHEAD_MS;
    let stamp = |ms: u64| crate::clock::from_ms(ms);
    let first = sign_entry(&k, None, stamp(now), KIND, vec![1]);
    // A day ahead to the millisecond is still taken; one more is not.
    let edge = sign_entry(&k, Some((1, first.id)), stamp(now + day) + 0xffff, KIND, vec![2]);
    let over = sign_entry(&k, Some((2, edge.id)), stamp(now + day + 1), KIND, vec![3]);
    let after = sign_entry(&k, Some((3, over.id)), stamp(now + day + 2), KIND, vec![4]);
    let all = vec![first.clone(), edge.clone(), over.clone(), after.clone()];

    let r = s.ingest(all.clone(), now).expect("ingest");
    assert_eq!(r.accepted, 2);
    assert_eq!(r.rejected, vec![rejection(&k, 3, ValidationError::Ahead { ahead_ms: day + 1 })]);
    assert_eq!(r.skipped, 1, "what follows a held entry waits with it");
    assert_eq!(r.held, vec![over.clone(), after.clone()], "handed back to be offered again");
    // Due once a day past its stamp no longer exceeds the limit: a millisecond from now.
    assert_eq!(r.summary(now).held_for_ms, 1);
    assert_eq!(r.summary(now).held, r.held);
    assert!(!crate::sync::misbehaviour(&r.rejected[0].error), "an honest peer relays a fast clock's entries");
    assert_eq!(s.head(&author(&k)).map(|h| h.seq), Some(2));
    // Taking a far stamp never drags this node's own clock along (at most MAX_DRIFT_MS).
    assert!(s.clock.last() <= crate::clock::from_ms(now + crate::clock::MAX_DRIFT_MS));

    // Two milliseconds later the same entries are all taken, and nothing was lost meanwhile.
    let r = s.ingest(all, now + 2).expect("ingest later");
    assert_eq!((r.accepted, r.duplicates, r.rejected.len()), (2, 2, 0));
    assert_eq!(s.head(&author(&k)).map(|h| h.seq), Some(4));
    // A forgery stamped ahead is refused as one, not excused as a fast clock.
    let (_f, mut u) = store();
    let forged = badly_signed(&sign_entry(&k, None, stamp(now + 2 * day), KIND, vec![9]));
    let r = u.ingest(vec![forged], now).expect("ingest a forgery");
    assert_eq!(r.rejected, vec![rejection(&k, 1, ValidationError::BadSignature)]);
    assert!(r.held.is_empty());
    // With no clock to judge by (a repair, an audit) nothing is held.
    let (_e, mut t) = store();
    let r = t.ingest(vec![first, edge, over, after], 0).expect("ingest without a clock");
    assert_eq!(r.accepted, 4);
}
