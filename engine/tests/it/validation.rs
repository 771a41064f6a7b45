//! One test per validation rule, each with the error it must produce.

use libra_engine::codec::Bytes;
use libra_engine::log::{
    ChainPoint, Entry, EntryId, MAX_PAYLOAD, SignedHeader, ValidationError, sign_entry, validate_batch, validate_next,
};

use crate::util::{chain, key};

fn point(e: &Entry) -> ChainPoint {
    ChainPoint::of(e)
}

/// Re-signs `e` after `edit` changes its header, so only the edited rule can fail.
fn resigned(e: &Entry, edit: impl FnOnce(&mut libra_engine::Header)) -> Entry {
    let k = key("alice");
    let mut h = e.header().clone();
    edit(&mut h);
    let sig = ed25519_dalek::Signer::sign(&k, &h.signing_input());
    let signed = SignedHeader { header: h, signature: Bytes(sig.to_bytes()) };
    Entry::from_parts(signed.encode(), e.payload.clone()).expect("decodes")
}

#[test]
fn valid_chain_is_accepted() {
    let c = chain(&key("alice"), 3);
    let p1 = validate_next(None, &c[0]).expect("seq 1");
    let p2 = validate_next(Some(&p1), &c[1]).expect("seq 2");
    assert_eq!(validate_next(Some(&p2), &c[2]).map(|p| p.seq), Ok(3));
}

#[test]
fn bad_signature() {
    let c = chain(&key("alice"), 1);
    let mut b = c[0].signed_bytes.clone();
    let n = b.len();
    b[n - 5] ^= 0x10;
    let e = Entry::from_parts(b, c[0].payload.clone()).expect("decodes");
    assert_eq!(validate_next(None, &e), Err(ValidationError::BadSignature));
}

#[test]
fn signature_by_another_key() {
    let c = chain(&key("alice"), 1);
    let forged = sign_entry(&key("mallory"), None, 5, 99, b"x".to_vec());
    let mut signed = c[0].signed.clone();
    signed.signature = forged.signed.signature;
    let e = Entry::from_parts(signed.encode(), c[0].payload.clone()).expect("decodes");
    assert_eq!(validate_next(None, &e), Err(ValidationError::BadSignature));
}

#[test]
fn wrong_seq() {
    let c = chain(&key("alice"), 3);
    assert_eq!(validate_next(Some(&point(&c[0])), &c[2]), Err(ValidationError::WrongSeq { expected: 2, found: 3 }));
    assert_eq!(validate_next(None, &c[1]), Err(ValidationError::WrongSeq { expected: 1, found: 2 }));
    let zero = resigned(&c[0], |h| h.seq = 0);
    assert_eq!(validate_next(None, &zero), Err(ValidationError::WrongSeq { expected: 1, found: 0 }));
}

#[test]
fn prev_mismatch() {
    let c = chain(&key("alice"), 2);
    let bad = resigned(&c[1], |h| h.prev = Some(EntryId(Bytes([7; 32]))));
    assert_eq!(validate_next(Some(&point(&c[0])), &bad), Err(ValidationError::PrevMismatch));
    let first_with_prev = resigned(&c[0], |h| h.prev = Some(EntryId(Bytes([7; 32]))));
    assert_eq!(validate_next(None, &first_with_prev), Err(ValidationError::PrevMismatch));
    let second_without = resigned(&c[1], |h| h.prev = None);
    assert_eq!(validate_next(Some(&point(&c[0])), &second_without), Err(ValidationError::PrevMismatch));
}

#[test]
fn timestamp_going_backwards() {
    let c = chain(&key("alice"), 2);
    let p = point(&c[0]);
    for ts in [p.timestamp, p.timestamp - 1, 0] {
        let bad = resigned(&c[1], |h| h.timestamp = ts);
        assert_eq!(
            validate_next(Some(&p), &bad),
            Err(ValidationError::TimestampRegression { previous: p.timestamp, found: ts })
        );
    }
}

#[test]
fn oversize() {
    let k = key("alice");
    let big = sign_entry(&k, None, 1, 99, vec![0; MAX_PAYLOAD as usize + 1]);
    assert_eq!(
        validate_next(None, &big),
        Err(ValidationError::Oversize { size: u64::from(MAX_PAYLOAD) + 1, limit: MAX_PAYLOAD })
    );
    let max = sign_entry(&k, None, 1, 99, vec![0; MAX_PAYLOAD as usize]);
    assert!(validate_next(None, &max).is_ok());
}

#[test]
fn payload_hash_and_size_mismatch() {
    let c = chain(&key("alice"), 1);
    let mut e = c[0].clone();
    e.payload.as_mut().expect("payload")[0] ^= 1;
    assert_eq!(validate_next(None, &e), Err(ValidationError::PayloadHashMismatch));
    e.payload.as_mut().expect("payload").push(0);
    assert!(matches!(validate_next(None, &e), Err(ValidationError::PayloadSizeMismatch { .. })));
    // Header-only validation passes without the payload.
    e.payload = None;
    assert!(validate_next(None, &e).is_ok());
}

#[test]
fn unknown_version_and_non_canonical_bytes() {
    let c = chain(&key("alice"), 1);
    let mut b = c[0].signed_bytes.clone();
    b[2] = 7;
    assert_eq!(SignedHeader::decode(&b), Err(ValidationError::UnknownVersion(7)));
    let mut v2 = c[0].signed.clone();
    v2.header.version = 2;
    assert_eq!(SignedHeader::decode(&v2.encode()), Err(ValidationError::UnknownVersion(2)));
    let mut b = c[0].signed_bytes.clone();
    b.splice(37..38, [0xcf, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(SignedHeader::decode(&b), Err(ValidationError::NonCanonical));
    let mut b = c[0].signed_bytes.clone();
    b.push(0);
    assert_eq!(SignedHeader::decode(&b), Err(ValidationError::TrailingBytes(1)));
    assert!(matches!(SignedHeader::decode(&[]), Err(ValidationError::Malformed(_))));
    assert!(matches!(SignedHeader::decode(&[0xff; 300]), Err(ValidationError::Malformed(_))));
}

#[test]
fn batch_finds_the_first_bad_signature() {
    let c = chain(&key("alice"), 600);
    let mut tampered = c.clone();
    let n = tampered[400].signed_bytes.len();
    tampered[400].signed_bytes[n - 1] ^= 1;
    let tampered: Vec<Entry> =
        tampered.into_iter().map(|e| Entry::from_parts(e.signed_bytes, e.payload).expect("decodes")).collect();
    let refs: Vec<&Entry> = tampered.iter().collect();
    let (points, failure) = validate_batch(None, &refs, 2);
    assert_eq!(points.len(), 400);
    assert_eq!(failure, Some((400, ValidationError::BadSignature)));
    let refs: Vec<&Entry> = c.iter().collect();
    let (points, failure) = validate_batch(None, &refs, 2);
    assert_eq!((points.len(), failure), (600, None));
}

#[test]
fn small_order_r_table_is_right() {
    // Every entry of the table that decodes as a point must be a weak (small-order) key.
    let enc = |hex_str: &str| -> [u8; 32] { hex::decode(hex_str).expect("hex").try_into().expect("32") };
    for y in [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ] {
        let b = enc(y);
        let key = ed25519_dalek::VerifyingKey::from_bytes(&b).expect("decodes");
        assert!(key.is_weak(), "{y} is not small order");
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&b);
        assert!(libra_engine::log::suspicious_r(&sig));
        sig[31] |= 0x80;
        assert!(libra_engine::log::suspicious_r(&sig));
    }
    let honest = sign_entry(&key("alice"), None, 1, 1, b"x".to_vec());
    assert!(!libra_engine::log::suspicious_r(&honest.signed.signature.0));
}

#[test]
fn seq_zero_from_a_peer_is_refused_not_fatal() {
    let k = key("alice");
    let c = chain(&k, 2);
    let (_dir, mut store) = crate::util::temp_store();
    store.ingest(c.clone(), 0).expect("ingest");
    let zero = resigned(&c[0], |h| h.seq = 0);
    let r = store.ingest(vec![zero], 0).expect("ingest does not fail");
    assert_eq!(r.rejected[0].error, ValidationError::WrongSeq { expected: 3, found: 0 });
}

/// How an author key decodes (spec/log.md, rule 8): a second encoding of a point (`y ≥ p`, or
/// `x = 0` with the sign bit) is accepted as a key of its own, distinct bytes for the same
/// point; those of small order sign nothing.
#[test]
fn non_canonical_author_keys_decode_and_weak_ones_sign_nothing() {
    use ed25519_dalek::VerifyingKey;
    // p = 2^255 − 19 in little-endian bytes is ed ff … ff 7f; p + k adds k to the first byte.
    let non_canonical = |k: u8| {
        let mut b = [0xff; 32];
        b[0] = 0xed + k;
        b[31] = 0x7f;
        b
    };
    let canonical = |k: u8| {
        let mut b = [0u8; 32];
        b[0] = k;
        b
    };
    let mut minus_zero = [0u8; 32];
    minus_zero[0] = 1;
    minus_zero[31] = 0x80; // y = 1 (x = 0) with the sign bit set
    let c = chain(&key("alice"), 1);
    for weak in [non_canonical(1), non_canonical(0), minus_zero] {
        let vk = VerifyingKey::from_bytes(&weak).expect("decodes as a point");
        assert!(vk.is_weak(), "{weak:02x?}");
        let mut signed = c[0].signed.clone();
        signed.header.author = Bytes(weak);
        let e = Entry::from_parts(signed.encode(), c[0].payload.clone()).expect("decodes");
        assert_eq!(validate_next(None, &e), Err(ValidationError::BadSignature));
    }
    // y ∈ [2, 18]: some of these are points, not of small order, with a second encoding.
    let mut seen = 0;
    for k in 2u8..=18 {
        let (Ok(a), Ok(b)) = (VerifyingKey::from_bytes(&non_canonical(k)), VerifyingKey::from_bytes(&canonical(k)))
        else {
            continue;
        };
        assert!(!a.is_weak());
        assert_eq!(a.to_edwards(), b.to_edwards(), "y = p + {k} is the point y = {k}");
        assert_ne!(a.to_bytes(), b.to_bytes(), "and a key of its own");
        seen += 1;
    }
    assert!(seen > 0, "no y in [2, 18] is on the curve");
}
