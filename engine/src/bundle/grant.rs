//! A bundle's grant section (spec/bundle.md, section 1.1): the exporter's grant tags
//! (spec/sync.md, section 4.3), signed by its device key. In a session the handshake proves
//! who sends a Grant; a file is carried by anyone, so the statement carries its own signature.
//! With it, a mutual contact who imports the bundle may forward the exporter's logs to the
//! people it chose, by bundle or by network, as after a session.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::{BundleError, SectionHeader};
use crate::codec::{self, Bytes};
use crate::sync::{GRANT_TAG, MAX_GRANTS};

/// Domain separation of the signature.
pub const GRANT_CONTEXT: &[u8] = b"libra bundle grant v1";

/// What a grant section says, once its signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantStatement {
    /// The device that signed (its user is the issuer).
    pub device: [u8; 32],
    /// When it was written (wall-clock ms of the exporter; informative).
    pub ts: u64,
    /// Strictly increasing, at most `MAX_GRANTS`.
    pub tags: Vec<[u8; GRANT_TAG]>,
}

type Signed = (Bytes<32>, u64, Vec<Bytes<GRANT_TAG>>);

fn signing_input(signed: &Signed) -> Vec<u8> {
    [GRANT_CONTEXT, &codec::encode(signed)].concat()
}

/// The section body: canonical MessagePack `[device, ts, tags, signature]`.
pub fn grant_body(key: &SigningKey, ts: u64, tags: &[[u8; GRANT_TAG]]) -> Vec<u8> {
    let signed: Signed = (Bytes(key.verifying_key().to_bytes()), ts, tags.iter().map(|t| Bytes(*t)).collect());
    let sig = key.sign(&signing_input(&signed));
    codec::encode(&(signed.0, signed.1, signed.2, Bytes(sig.to_bytes())))
}

/// Reads a grant section whose checksum matched: well formed, `count` tags, sorted, within the
/// limit, and signed by the device it names.
pub fn decode_grant(h: &SectionHeader, body: &[u8], index: usize) -> Result<GrantStatement, BundleError> {
    let bad = |reason: &str| BundleError::Body { index, reason: format!("grant: {reason}") };
    let (device, ts, tags, sig): (Bytes<32>, u64, Vec<Bytes<GRANT_TAG>>, Bytes<64>) =
        codec::decode(body).map_err(|e| bad(&e.to_string()))?;
    if tags.len() > MAX_GRANTS {
        return Err(BundleError::TooLarge { index, what: "its grant count" });
    }
    if tags.len() != h.count as usize {
        return Err(bad("the count differs from the tags"));
    }
    if !tags.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(bad("tags are not strictly increasing"));
    }
    let key = VerifyingKey::from_bytes(&device.0).map_err(|_| bad("not a device key"))?;
    let signed: Signed = (device, ts, tags);
    key.verify_strict(&signing_input(&signed), &Signature::from_bytes(&sig.0))
        .map_err(|_| bad("the signature does not verify"))?;
    Ok(GrantStatement { device: device.0, ts, tags: signed.2.into_iter().map(|t| t.0).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::KIND_GRANT;

    fn header(count: u32, body: &[u8]) -> SectionHeader {
        SectionHeader { kind: KIND_GRANT, count, length: body.len() as u32 }
    }

    #[test]
    fn a_grant_reads_back_only_as_signed() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let tags = [[1u8; GRANT_TAG], [2; GRANT_TAG]];
        let body = grant_body(&key, 1234, &tags);
        let g = decode_grant(&header(2, &body), &body, 0).expect("reads");
        assert_eq!((g.device, g.ts, g.tags.as_slice()), (key.verifying_key().to_bytes(), 1234, &tags[..]));
        assert!(decode_grant(&header(1, &body), &body, 0).is_err(), "count differs");
        // Any other tag, time or device than the signed ones fails.
        let mut forged = body.clone();
        let at = forged.windows(GRANT_TAG).position(|w| w == [2; GRANT_TAG]).expect("tag");
        forged[at] = 3;
        assert!(decode_grant(&header(2, &forged), &forged, 0).is_err());
        let other = grant_body(&SigningKey::from_bytes(&[8; 32]), 1234, &tags);
        let (_, ts, t, sig): (Bytes<32>, u64, Vec<Bytes<GRANT_TAG>>, Bytes<64>) = codec::decode(&other).expect("body");
        let swapped = codec::encode(&(Bytes(key.verifying_key().to_bytes()), ts, t, sig));
        assert!(decode_grant(&header(2, &swapped), &swapped, 0).is_err(), "another device's signature");
        let unsorted = grant_body(&key, 1, &[[2; GRANT_TAG], [1; GRANT_TAG]]);
        assert!(decode_grant(&header(2, &unsorted), &unsorted, 0).is_err());
        assert!(decode_grant(&header(0, b"\x90"), b"\x90", 0).is_err());
    }
}
