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

/// Signatures per batch-verification call; larger batches gain little and delay the first error.
const BATCH: usize = 256;

/// Verifies many signatures (of any logs), spreading batches over `threads` threads. Returns the
/// indices of the entries whose signature fails, in ascending order.
pub fn verify_many(entries: &[&Entry], threads: usize) -> Vec<usize> {
    let verify_chunk = |offset: usize, chunk: &[&Entry]| -> Vec<usize> {
        let inputs: Vec<Vec<u8>> = chunk.iter().map(|e| signing_input(e)).collect();
        let msgs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let sigs: Vec<Signature> = chunk.iter().map(|e| Signature::from_bytes(&e.signed.signature.0)).collect();
        let keys: Option<Vec<VerifyingKey>> =
            chunk.iter().map(|e| VerifyingKey::from_bytes(&e.header().author.0).ok()).collect();
        let batch_ok = keys.is_some_and(|k| {
            // verify_strict refuses weak (small-order) keys; the batch equation alone does not.
            !k.iter().any(VerifyingKey::is_weak) && ed25519_dalek::verify_batch(&msgs, &sigs, &k).is_ok()
        });
        if batch_ok {
            return Vec::new();
        }
        // Find the culprits one by one; this path only runs when something is wrong.
        (0..chunk.len()).filter(|&i| verify_signature(chunk[i]).is_err()).map(|i| offset + i).collect()
    };
    let chunks: Vec<(usize, &[&Entry])> = entries.chunks(BATCH).enumerate().map(|(i, c)| (i * BATCH, c)).collect();
    let threads = threads.clamp(1, 16).min(chunks.len().max(1));
    if threads == 1 {
        return chunks.iter().flat_map(|(off, c)| verify_chunk(*off, c)).collect();
    }
    let per_thread = chunks.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .chunks(per_thread)
            .map(|group| s.spawn(move || group.iter().flat_map(|(off, c)| verify_chunk(*off, c)).collect::<Vec<_>>()))
            .collect();
        // A verifier thread cannot panic on any input; if one did, fail closed on its whole range.
        let mut bad = Vec::new();
        for (h, group) in handles.into_iter().zip(chunks.chunks(per_thread)) {
            match h.join() {
                Ok(v) => bad.extend(v),
                Err(_) => bad.extend(group.iter().flat_map(|(off, c)| *off..*off + c.len())),
            }
        }
        bad
    })
}

/// Validates a run of entries of one log that follow `prev`, using batch signature verification.
/// Returns the chain points of the longest valid prefix, and the first failure after it.
pub fn validate_batch(
    prev: Option<ChainPoint>,
    entries: &[&Entry],
    threads: usize,
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
    if let Some(&bad) = verify_many(&entries[..points.len()], threads).first() {
        points.truncate(bad);
        failure = Some((bad, ValidationError::BadSignature));
    }
    (points, failure)
}
