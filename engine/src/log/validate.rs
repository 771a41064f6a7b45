//! Validation rules as pure functions, applied in the order spec/log.md gives: cheap structural
//! checks first, the signature last.

use ed25519_dalek::{Signature, VerifyingKey};

use super::ValidationError;
use super::entry::{ENTRY_CONTEXT, Entry, EntryId, Header, MAX_PAYLOAD};

/// Where a log stands: what the next entry must link to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPoint {
    pub seq: u64,
    pub id: EntryId,
    pub timestamp: u64,
}

impl ChainPoint {
    pub fn of(entry: &Entry) -> Self {
        ChainPoint { seq: entry.header().seq, id: entry.id, timestamp: entry.header().timestamp }
    }
}

/// Rules 2–5: size limit, seq, prev, timestamp — everything that needs only the header and the
/// previous chain point.
pub fn check_link(prev: Option<&ChainPoint>, h: &Header) -> Result<(), ValidationError> {
    if h.payload_size > MAX_PAYLOAD {
        return Err(ValidationError::Oversize { size: u64::from(h.payload_size), limit: MAX_PAYLOAD });
    }
    let expected = prev.map_or(1, |p| p.seq.saturating_add(1));
    if h.seq != expected {
        return Err(ValidationError::WrongSeq { expected, found: h.seq });
    }
    if h.prev != prev.map(|p| p.id) {
        return Err(ValidationError::PrevMismatch);
    }
    if let Some(p) = prev
        && h.timestamp <= p.timestamp
    {
        return Err(ValidationError::TimestampRegression { previous: p.timestamp, found: h.timestamp });
    }
    Ok(())
}

/// Rules 6–7: the payload, when present, has the size and hash the header commits to.
pub fn check_payload(h: &Header, payload: Option<&[u8]>) -> Result<(), ValidationError> {
    let Some(p) = payload else { return Ok(()) };
    let found = p.len() as u64;
    if found > u64::from(MAX_PAYLOAD) {
        return Err(ValidationError::Oversize { size: found, limit: MAX_PAYLOAD });
    }
    if found != u64::from(h.payload_size) {
        return Err(ValidationError::PayloadSizeMismatch { expected: h.payload_size, found });
    }
    if blake3::hash(p).as_bytes() != &h.payload_hash.0 {
        return Err(ValidationError::PayloadHashMismatch);
    }
    Ok(())
}

/// The signed message: the context prefix and the header's canonical bytes, which sit inside the
/// signed header bytes between the outer array marker and the signature (`c4 40` + 64 bytes).
fn signing_input(entry: &Entry) -> Vec<u8> {
    let b = &entry.signed_bytes;
    let header = b.get(1..b.len().saturating_sub(66)).unwrap_or_default();
    let mut out = Vec::with_capacity(ENTRY_CONTEXT.len() + header.len());
    out.extend_from_slice(ENTRY_CONTEXT);
    out.extend_from_slice(header);
    out
}

/// Rule 8: `verify_strict` of the author's signature.
pub fn verify_signature(entry: &Entry) -> Result<(), ValidationError> {
    let key = VerifyingKey::from_bytes(&entry.header().author.0).map_err(|_| ValidationError::BadSignature)?;
    let sig = Signature::from_bytes(&entry.signed.signature.0);
    key.verify_strict(&signing_input(entry), &sig).map_err(|_| ValidationError::BadSignature)
}

/// All rules for one entry following `prev`.
pub fn validate_next(prev: Option<&ChainPoint>, entry: &Entry) -> Result<ChainPoint, ValidationError> {
    check_link(prev, entry.header())?;
    check_payload(entry.header(), entry.payload.as_deref())?;
    verify_signature(entry)?;
    Ok(ChainPoint::of(entry))
}

/// Encodings (sign bit cleared) of the y coordinates of the small-order points, canonical and
/// not (libsodium's list). A signature whose R is one of them is refused before batching:
/// verify_strict refuses small-order R, and the batch equation alone would not.
const SMALL_ORDER_Y: [[u8; 32]; 7] = {
    let mut t = [[0u8; 32]; 7];
    t[1][0] = 1;
    t[2] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ];
    t[3] = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ];
    let mut i = 4;
    while i < 7 {
        let mut k = 1;
        while k < 31 {
            t[i][k] = 0xff;
            k += 1;
        }
        t[i][31] = 0x7f;
        t[i][0] = 0xec + (i as u8 - 4); // p - 1, p, p + 1
        i += 1;
    }
    t
};

/// Whether R (the first half of a signature) is a small-order point or not canonically encoded
/// (y ≥ p). Byte comparisons only: no point decompression.
pub fn suspicious_r(signature: &[u8; 64]) -> bool {
    let mut y = [0u8; 32];
    y.copy_from_slice(&signature[..32]);
    y[31] &= 0x7f;
    let non_canonical = y[31] == 0x7f && y[1..31].iter().all(|&b| b == 0xff) && y[0] >= 0xed;
    non_canonical || SMALL_ORDER_Y.contains(&y)
}

/// Signatures per batch-verification call; larger batches gain little and delay the first error.
const BATCH: usize = 256;
/// Fewest per call when a batch is cut finer to share it evenly between threads (a batch
/// verification's set-up is repaid by then).
const MIN_BATCH: usize = 32;
/// Fewest per call once a batch has enough for every thread to get this many.
const WIDE_BATCH: usize = 128;

/// Verifies many signatures (of any logs), spreading batches over `threads` threads. Returns the
/// indices of the entries whose signature fails, in ascending order.
pub fn verify_many(entries: &[&Entry], threads: usize) -> Vec<usize> {
    let verify_chunk = |offset: usize, chunk: &[&Entry]| -> Vec<usize> {
        let inputs: Vec<Vec<u8>> = chunk.iter().map(|e| signing_input(e)).collect();
        let msgs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let sigs: Vec<Signature> = chunk.iter().map(|e| Signature::from_bytes(&e.signed.signature.0)).collect();
        // A chunk is mostly one log or a few: each author's key is decompressed and checked
        // once (a decompression costs a third of a verification), not once per entry.
        let mut known: Vec<([u8; 32], Option<VerifyingKey>)> = Vec::new();
        let mut key_of = |author: &[u8; 32]| -> Option<VerifyingKey> {
            if let Some((_, k)) = known.iter().find(|(a, _)| a == author) {
                return *k;
            }
            // verify_strict refuses weak (small-order) keys; the batch equation alone does not.
            let k = VerifyingKey::from_bytes(author).ok().filter(|k| !k.is_weak());
            known.push((*author, k));
            k
        };
        let keys: Option<Vec<VerifyingKey>> = chunk.iter().map(|e| key_of(&e.header().author.0)).collect();
        let batch_ok = keys.is_some_and(|k| {
            !chunk.iter().any(|e| suspicious_r(&e.signed.signature.0))
                && ed25519_dalek::verify_batch(&msgs, &sigs, &k).is_ok()
        });
        if batch_ok {
            return Vec::new();
        }
        // Find the culprits one by one; this path only runs when something is wrong.
        (0..chunk.len()).filter(|&i| verify_signature(chunk[i]).is_err()).map(|i| offset + i).collect()
    };
    // No finer than WIDE_BATCH while each thread still gets a chunk: per signature a batch of
    // 64 cost 11.5 µs here, 128 10.8 µs, 256 9.9 µs; finer chunks only even out the ends.
    let min = (entries.len() / threads.max(1)).clamp(MIN_BATCH, WIDE_BATCH);
    failing(entries, threads, min, verify_chunk)
}

/// The failing indices that `verify(offset, chunk)` finds over `entries`, in chunks claimed by
/// whichever thread is free (so all finish together). A chunk whose verifier panicked (no
/// input should make one) fails closed as a whole.
fn failing(
    entries: &[&Entry],
    threads: usize,
    min: usize,
    verify: impl Fn(usize, &[&Entry]) -> Vec<usize> + Sync,
) -> Vec<usize> {
    let threads = threads.clamp(1, 16);
    let chunk = crate::par::chunk_size(entries.len(), threads, min, BATCH);
    crate::par::map_chunks(entries, chunk, threads, verify)
        .into_iter()
        .enumerate()
        .flat_map(|(i, bad)| bad.unwrap_or_else(|| (i * chunk..((i + 1) * chunk).min(entries.len())).collect()))
        .collect()
}

/// Verifies each signature with `verify_strict`, spread over `threads` threads: the audit path,
/// immune to any difference between batch and single verification. Returns the failing indices.
pub fn verify_many_strict(entries: &[&Entry], threads: usize) -> Vec<usize> {
    failing(entries, threads, 1, |off, part| {
        (0..part.len()).filter(|&i| verify_signature(part[i]).is_err()).map(|i| off + i).collect()
    })
}

/// Validates a run of entries of one log that follow `prev`, using batch signature verification.
/// Returns the chain points of the longest valid prefix, and the first failure after it.
pub fn validate_batch(
    prev: Option<ChainPoint>,
    entries: &[&Entry],
    threads: usize,
) -> (Vec<ChainPoint>, Option<(usize, ValidationError)>) {
    validate_run(prev, entries, threads, false)
}

/// As [`validate_batch`], with `strict` choosing `verify_strict` per entry over batch verification.
pub fn validate_run(
    prev: Option<ChainPoint>,
    entries: &[&Entry],
    threads: usize,
    strict: bool,
) -> (Vec<ChainPoint>, Option<(usize, ValidationError)>) {
    let mut points = Vec::with_capacity(entries.len());
    let mut failure = None;
    let mut at = prev;
    for (i, e) in entries.iter().enumerate() {
        let step = check_link(at.as_ref(), e.header()).and_then(|()| check_payload(e.header(), e.payload.as_deref()));
        match step {
            Ok(()) => {
                let p = ChainPoint::of(e);
                points.push(p);
                at = Some(p);
            }
            Err(err) => {
                failure = Some((i, err));
                break;
            }
        }
    }
    let checked = &entries[..points.len()];
    let bad = if strict { verify_many_strict(checked, threads) } else { verify_many(checked, threads) };
    if let Some(&bad) = bad.first() {
        points.truncate(bad);
        failure = Some((bad, ValidationError::BadSignature));
    }
    (points, failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::sign_entry;
    use curve25519_dalek::scalar::Scalar;
    use ed25519_dalek::SigningKey;
    use sha2::{Digest, Sha512};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    /// A valid chain of `n` entries, timestamps 1000, 2000, …
    fn chain(n: u64) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|e| (e.header().seq, e.id));
            out.push(sign_entry(&key(), prev, 1_000 * (i + 1), 99, format!("m{i}").into_bytes()));
        }
        out
    }

    /// `e` with one bit of its signature flipped (the signed bytes re-encoded to match).
    fn forged(e: &Entry) -> Entry {
        let mut signed = e.signed.clone();
        signed.signature.0[40] ^= 1;
        Entry::from_parts(signed.encode(), e.payload.clone()).expect("decodes")
    }

    fn point(seq: u64, id: EntryId, timestamp: u64) -> ChainPoint {
        ChainPoint { seq, id, timestamp }
    }

    #[test]
    fn links_follow_seq_prev_and_time() {
        let c = chain(2);
        let (first, second) = (c[0].header(), c[1].header());
        assert_eq!(check_link(None, first), Ok(()));
        let at = ChainPoint::of(&c[0]);
        assert_eq!(at, point(1, c[0].id, 1_000));
        assert_eq!(check_link(Some(&at), second), Ok(()));
        assert_eq!(check_link(None, second), Err(ValidationError::WrongSeq { expected: 1, found: 2 }));
        assert_eq!(
            check_link(Some(&point(5, c[0].id, 0)), second),
            Err(ValidationError::WrongSeq { expected: 6, found: 2 })
        );
        assert_eq!(check_link(Some(&point(1, c[1].id, 1_000)), second), Err(ValidationError::PrevMismatch));
        let same_time = point(1, c[0].id, 2_000);
        assert_eq!(
            check_link(Some(&same_time), second),
            Err(ValidationError::TimestampRegression { previous: 2_000, found: 2_000 })
        );
        assert_eq!(check_link(Some(&point(1, c[0].id, 1_999)), second), Ok(()));
        let mut big = first.clone();
        big.payload_size = MAX_PAYLOAD;
        assert_eq!(check_link(None, &big), Ok(()));
        big.payload_size = MAX_PAYLOAD + 1;
        assert_eq!(
            check_link(None, &big),
            Err(ValidationError::Oversize { size: u64::from(MAX_PAYLOAD) + 1, limit: MAX_PAYLOAD })
        );
    }

    #[test]
    fn a_payload_has_the_size_and_hash_its_header_commits_to() {
        let e = &chain(1)[0];
        let h = e.header();
        assert_eq!(check_payload(h, None), Ok(()));
        assert_eq!(check_payload(h, Some(b"m0")), Ok(()));
        assert_eq!(check_payload(h, Some(b"m1")), Err(ValidationError::PayloadHashMismatch));
        assert_eq!(check_payload(h, Some(b"m00")), Err(ValidationError::PayloadSizeMismatch { expected: 2, found: 3 }));
        let huge = vec![0; MAX_PAYLOAD as usize + 1];
        assert_eq!(
            check_payload(h, Some(&huge)),
            Err(ValidationError::Oversize { size: u64::from(MAX_PAYLOAD) + 1, limit: MAX_PAYLOAD })
        );
        let full = sign_entry(&key(), None, 1, 99, vec![3; MAX_PAYLOAD as usize]);
        assert_eq!(validate_next(None, &full), Ok(ChainPoint::of(&full)));
    }

    #[test]
    fn signatures_are_verified_strictly() {
        let c = chain(2);
        assert_eq!(verify_signature(&c[0]), Ok(()));
        assert_eq!(verify_signature(&forged(&c[0])), Err(ValidationError::BadSignature));
        assert_eq!(validate_next(None, &forged(&c[0])), Err(ValidationError::BadSignature));
        assert_eq!(validate_next(Some(&ChainPoint::of(&c[0])), &c[1]), Ok(ChainPoint::of(&c[1])));
        // An author key that is no curve point.
        let mut signed = c[0].signed.clone();
        signed.header.author.0 = [0xff; 32];
        signed.header.author.0[31] = 0x7f;
        let bad_key = Entry::from_parts(signed.encode(), None).expect("decodes");
        assert_eq!(verify_signature(&bad_key), Err(ValidationError::BadSignature));
    }

    #[test]
    fn small_order_and_non_canonical_r_are_suspicious() {
        let mut sig = [0u8; 64];
        for y in SMALL_ORDER_Y {
            sig[..32].copy_from_slice(&y);
            assert!(suspicious_r(&sig), "{y:02x?}");
            sig[31] |= 0x80;
            assert!(suspicious_r(&sig), "{y:02x?} with the sign bit");
        }
        // The table holds y = p - 1 (order 2), and the encodings of 0 and 1 that are ≥ p, written
        // out here rather than read back from the table.
        for low in [0xec, 0xed, 0xee] {
            let mut y = [0xff; 32];
            y[31] = 0x7f;
            y[0] = low;
            assert!(SMALL_ORDER_Y.contains(&y), "{low:02x}");
        }
        // y = p + 2 … 2^255 - 1: not canonical.
        for low in [0xef, 0xf0, 0xff] {
            let mut y = [0xff; 32];
            y[31] = 0x7f;
            y[0] = low;
            sig[..32].copy_from_slice(&y);
            assert!(suspicious_r(&sig), "{low:02x}");
        }
        let mut y = [0xff; 32];
        y[31] = 0x7f;
        y[0] = 0xeb;
        sig[..32].copy_from_slice(&y);
        assert!(!suspicious_r(&sig), "p - 2 is an ordinary y");
        y[5] = 0xfe;
        y[0] = 0xef;
        sig[..32].copy_from_slice(&y);
        assert!(!suspicious_r(&sig), "below p");
        for e in chain(3) {
            assert!(!suspicious_r(&e.signed.signature.0));
        }
    }

    #[test]
    fn many_signatures_find_exactly_the_bad_ones_across_batches_and_threads() {
        let mut c = chain(600);
        let bad = [5usize, 300, 599];
        for &i in &bad {
            c[i] = forged(&c[i]);
        }
        // A forged R of small order, in the batch that is otherwise good.
        let mut signed = c[100].signed.clone();
        signed.signature.0[..32].copy_from_slice(&SMALL_ORDER_Y[1]);
        c[100] = Entry::from_parts(signed.encode(), c[100].payload.clone()).expect("decodes");
        let refs: Vec<&Entry> = c.iter().collect();
        for threads in [1, 2, 3] {
            assert_eq!(verify_many(&refs, threads), vec![5, 100, 300, 599], "{threads} threads");
            assert_eq!(verify_many_strict(&refs, threads), vec![5, 100, 300, 599], "{threads} threads, strict");
        }
        let good = chain(300);
        let refs: Vec<&Entry> = good.iter().collect();
        assert!(verify_many(&refs, 2).is_empty());
        assert!(verify_many_strict(&refs, 2).is_empty());
    }

    /// An entry by author key `a` with signature `r ‖ s` over its real signing input, where
    /// `s` is made by `sign` from the challenge k = SHA-512(R ‖ A ‖ M).
    fn crafted(a: [u8; 32], r: [u8; 32], sign: impl Fn(Scalar) -> Scalar) -> Entry {
        let mut signed = chain(1)[0].signed.clone();
        signed.header.author.0 = a;
        let m = signed.header.signing_input();
        let k = Scalar::from_bytes_mod_order_wide(
            &Sha512::new().chain_update(r).chain_update(a).chain_update(&m).finalize().into(),
        );
        signed.signature.0[..32].copy_from_slice(&r);
        signed.signature.0[32..].copy_from_slice(&sign(k).to_bytes());
        Entry::from_parts(signed.encode(), chain(1)[0].payload.clone()).expect("decodes")
    }

    /// Two first entries whose signatures the batch equation accepts and `verify_strict`
    /// refuses: one by the identity (a weak key), one with R the identity (small order).
    fn batch_only() -> [Entry; 2] {
        let b = curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
        let identity = curve25519_dalek::EdwardsPoint::default().compress().to_bytes();
        let s = Scalar::from(12_345u64);
        let weak_key = crafted(identity, (s * b).compress().to_bytes(), |_| s);
        let a = Scalar::from(7u64);
        let small_r = crafted((a * b).compress().to_bytes(), identity, |k| k * a);
        [weak_key, small_r]
    }

    /// Two signatures the batch equation accepts and `verify_strict` refuses: one by the
    /// identity (a weak key), one with R the identity (small order). Batch verification alone
    /// would take both; the screening sends them to `verify_strict`.
    #[test]
    fn signatures_that_only_the_batch_equation_accepts_are_refused() {
        let [weak_key, small_r] = batch_only();
        for e in [&weak_key, &small_r] {
            let m = signing_input(e);
            let key = VerifyingKey::from_bytes(&e.header().author.0).expect("a point");
            let sig = Signature::from_bytes(&e.signed.signature.0);
            assert!(ed25519_dalek::verify_batch(&[&m[..]], &[sig], &[key]).is_ok(), "the batch equation holds");
            assert_eq!(verify_signature(e), Err(ValidationError::BadSignature));
        }
        let mut c = chain(20);
        c[4] = weak_key;
        c[11] = small_r;
        let refs: Vec<&Entry> = c.iter().collect();
        assert_eq!(verify_many(&refs, 1), vec![4, 11]);
        assert_eq!(verify_many(&refs[..5], 1), vec![4]);
        assert_eq!(verify_many(&refs[5..12], 1), vec![6]);
    }

    /// Each author's key is decompressed once per batch: entries of several logs interleaved
    /// verify together, a forgery among them is found, and a weak key is refused every time it
    /// appears, not only the first.
    #[test]
    fn interleaved_logs_share_their_keys_within_a_batch() {
        let other = SigningKey::from_bytes(&[10; 32]);
        let mut theirs: Vec<Entry> = Vec::new();
        for i in 0..30u64 {
            let prev = theirs.last().map(|e| (e.header().seq, e.id));
            theirs.push(sign_entry(&other, prev, 1_000 * (i + 1), 99, format!("t{i}").into_bytes()));
        }
        let mine = chain(30);
        let mut mixed: Vec<Entry> = mine.iter().zip(&theirs).flat_map(|(a, b)| [a.clone(), b.clone()]).collect();
        assert!(verify_many(&mixed.iter().collect::<Vec<_>>(), 1).is_empty());
        mixed[21] = forged(&mixed[21]);
        let [weak_key, _] = batch_only();
        mixed.insert(7, weak_key.clone());
        mixed.push(weak_key);
        let refs: Vec<&Entry> = mixed.iter().collect();
        assert_eq!(verify_many(&refs, 1), vec![7, 22, 61]);
    }

    /// The screening holds through the store's ingest, which verifies in batches: among 40
    /// good entries, both crafted first entries are refused as bad signatures, and nothing of
    /// their logs is stored.
    #[test]
    fn the_store_refuses_what_only_the_batch_equation_accepts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = crate::store::Store::open(dir.path().join("s")).expect("open");
        let crafted = batch_only();
        let authors: Vec<[u8; 32]> = crafted.iter().map(|e| e.header().author.0).collect();
        let entries: Vec<Entry> = chain(40).into_iter().chain(crafted).collect();
        let r = store.ingest(entries, 0).expect("ingest");
        assert_eq!(r.accepted, 40);
        let refused: Vec<([u8; 32], ValidationError)> =
            r.rejected.iter().map(|j| (j.author, j.error.clone())).collect();
        let mut want: Vec<([u8; 32], ValidationError)> =
            authors.iter().map(|a| (*a, ValidationError::BadSignature)).collect();
        want.sort_by_key(|(a, _)| *a);
        let mut refused = refused;
        refused.sort_by_key(|(a, _)| *a);
        assert_eq!(refused, want);
        assert!(authors.iter().all(|a| store.head(a).is_none()));
    }

    #[test]
    fn a_run_keeps_the_longest_valid_prefix_and_names_the_first_failure() {
        let c = chain(10);
        let all: Vec<&Entry> = c.iter().collect();
        for strict in [false, true] {
            let (points, failure) = validate_run(None, &all, 2, strict);
            assert_eq!(points, c.iter().map(ChainPoint::of).collect::<Vec<_>>());
            assert_eq!(failure, None);
            // From a point: the rest of the chain.
            let (points, failure) = validate_run(Some(ChainPoint::of(&c[3])), &all[4..], 2, strict);
            assert_eq!((points.len(), failure), (6, None));
            // A link failure at 6 and a bad signature at 3: the earlier one wins.
            let f3 = forged(&c[3]);
            let mut run = all.clone();
            run[3] = &f3;
            run[6] = &c[7];
            let (points, failure) = validate_run(None, &run, 2, strict);
            assert_eq!((points.len(), failure), (3, Some((3, ValidationError::BadSignature))));
            // A link failure alone.
            let mut run = all.clone();
            run[6] = &c[7];
            let (points, failure) = validate_run(None, &run, 2, strict);
            assert_eq!(points.len(), 6);
            assert_eq!(failure, Some((6, ValidationError::WrongSeq { expected: 7, found: 8 })));
        }
        assert_eq!(validate_batch(None, &all, 1), validate_run(None, &all, 1, true));
    }
}
