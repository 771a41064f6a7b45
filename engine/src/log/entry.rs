//! The entry: a signed header and, kept apart, its payload (as in p2panda), so a chain can be
//! verified without payloads.

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use super::ValidationError;
use crate::codec::{self, Blob, Bytes};

/// The only header format this code writes and accepts.
pub const FORMAT_VERSION: u8 = 1;
/// Largest payload an entry may carry, in bytes; bigger content goes to blobs.
pub const MAX_PAYLOAD: u32 = 64 * 1024;
/// Domain-separation prefix of an entry signature.
pub const ENTRY_CONTEXT: &[u8] = b"libra-entry-v1\0";
/// Upper bound on a signed header's size checked before decoding; the widest valid one is 197 bytes.
pub const MAX_SIGNED_HEADER: usize = 256;

/// blake3 of an entry's signed header bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntryId(pub Bytes<32>);

impl EntryId {
    pub fn of(signed_header_bytes: &[u8]) -> Self {
        EntryId(Bytes(*blake3::hash(signed_header_bytes).as_bytes()))
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0.0
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.0)
    }
}

impl std::fmt::Debug for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EntryId({})", &self.to_hex()[..16])
    }
}

/// The signed fields of an entry, encoded as a MessagePack array in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub version: u8,
    /// The ed25519 key that signs this log; it is the log's id.
    pub author: Bytes<32>,
    /// 1-based, gapless.
    pub seq: u64,
    /// Id of the entry at `seq - 1`; absent exactly when `seq == 1`.
    pub prev: Option<EntryId>,
    /// Hybrid logical clock: milliseconds since the Unix epoch << 16 | counter. Strictly
    /// increasing within a log.
    pub timestamp: u64,
    pub kind: u16,
    pub payload_size: u32,
    pub payload_hash: Bytes<32>,
}

impl Header {
    /// The bytes the author signs: the context prefix, then the canonical header.
    pub fn signing_input(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY_CONTEXT.len() + 160);
        out.extend_from_slice(ENTRY_CONTEXT);
        codec::encode_into(self, &mut out);
        out
    }
}

/// A header with its signature: `[header, signature]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHeader {
    pub header: Header,
    pub signature: Bytes<64>,
}

impl SignedHeader {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes canonical signed-header bytes; the version is checked before the layout so that a
    /// future format is reported as such rather than as garbage.
    pub fn decode(bytes: &[u8]) -> Result<Self, ValidationError> {
        if bytes.len() > MAX_SIGNED_HEADER {
            return Err(ValidationError::Malformed(format!(
                "signed header of {} bytes exceeds {MAX_SIGNED_HEADER}",
                bytes.len()
            )));
        }
        // 0x92 = array(2), then array(n) for the header, then the version as a positive fixint.
        if let [0x92, h, v, ..] = bytes
            && h & 0xf0 == 0x90
            && *v != FORMAT_VERSION
            && *v < 0x80
        {
            return Err(ValidationError::UnknownVersion(*v));
        }
        let sh: SignedHeader = codec::decode(bytes)?;
        if sh.header.version != FORMAT_VERSION {
            return Err(ValidationError::UnknownVersion(sh.header.version));
        }
        Ok(sh)
    }
}

/// A complete entry as it travels: `[signed header, payload or nil]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub signed: SignedHeader,
    /// The canonical bytes of `signed`, kept so that ids and storage never re-encode.
    pub signed_bytes: Vec<u8>,
    pub id: EntryId,
    pub payload: Option<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct WireEntry(Blob, Option<Blob>);

impl Entry {
    pub fn from_parts(signed_bytes: Vec<u8>, payload: Option<Vec<u8>>) -> Result<Self, ValidationError> {
        let signed = SignedHeader::decode(&signed_bytes)?;
        Ok(Entry { id: EntryId::of(&signed_bytes), signed, signed_bytes, payload })
    }

    pub fn header(&self) -> &Header {
        &self.signed.header
    }

    /// The transport form: MessagePack `[bin signed_header, bin payload | nil]`.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(&WireEntry(Blob(self.signed_bytes.clone()), self.payload.clone().map(Blob)))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ValidationError> {
        let WireEntry(signed, payload) = codec::decode(bytes)?;
        Self::from_parts(signed.0, payload.map(|p| p.0))
    }
}

/// Builds and signs the entry that follows `prev` (None for the first entry of a log).
pub fn sign_entry(
    key: &SigningKey,
    prev: Option<(u64, EntryId)>,
    timestamp: u64,
    kind: u16,
    payload: Vec<u8>,
) -> Entry {
    let header = Header {
        version: FORMAT_VERSION,
        author: Bytes(key.verifying_key().to_bytes()),
        seq: prev.map_or(1, |(seq, _)| seq + 1),
        prev: prev.map(|(_, id)| id),
        timestamp,
        kind,
        payload_size: u32::try_from(payload.len()).unwrap_or(u32::MAX),
        payload_hash: Bytes(*blake3::hash(&payload).as_bytes()),
    };
    let signature = Bytes(key.sign(&header.signing_input()).to_bytes());
    let signed = SignedHeader { header, signature };
    let signed_bytes = signed.encode();
    Entry { id: EntryId::of(&signed_bytes), signed, signed_bytes, payload: Some(payload) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn limits_are_the_specified_ones() {
        // spec/log.md: payloads up to 64 KiB ride in entries; signed headers are bounded before decoding.
        assert_eq!(MAX_PAYLOAD, 65_536);
        assert_eq!(MAX_SIGNED_HEADER, 256);
        assert_eq!(ENTRY_CONTEXT, b"libra-entry-v1\0");
    }

    #[test]
    fn an_entry_signs_its_context_and_canonical_header_and_chains_by_seq() {
        let first = sign_entry(&key(), None, 1_000, 99, b"one".to_vec());
        let h = first.header();
        let input = h.signing_input();
        assert_eq!(&input[..ENTRY_CONTEXT.len()], ENTRY_CONTEXT);
        assert_eq!(&input[ENTRY_CONTEXT.len()..], &codec::encode(h)[..]);
        assert!(
            key()
                .verifying_key()
                .verify_strict(&input, &ed25519_dalek::Signature::from_bytes(&first.signed.signature.0))
                .is_ok()
        );
        assert_eq!((h.seq, h.prev), (1, None));
        let second = sign_entry(&key(), Some((h.seq, first.id)), 2_000, 99, b"two".to_vec());
        assert_eq!((second.header().seq, second.header().prev), (2, Some(first.id)));
        let later = sign_entry(&key(), Some((41, first.id)), 3_000, 99, vec![]);
        assert_eq!(later.header().seq, 42);
        // The id is the hash of the signed header's bytes, shown in hex.
        assert_eq!(first.id, EntryId::of(&first.signed_bytes));
        assert_eq!(first.id.as_bytes(), blake3::hash(&first.signed_bytes).as_bytes());
        assert_eq!(first.id.to_hex(), hex::encode(blake3::hash(&first.signed_bytes).as_bytes()));
        assert_eq!(format!("{:?}", first.id), format!("EntryId({})", &first.id.to_hex()[..16]));
    }

    #[test]
    fn an_entry_travels_as_its_signed_header_and_payload() {
        let e = sign_entry(&key(), None, 1_000, 99, b"payload".to_vec());
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes).expect("decode"), e);
        let header_only = Entry { payload: None, ..e.clone() };
        assert_eq!(Entry::decode(&header_only.encode()).expect("decode"), header_only);
        assert!(bytes.len() > e.signed_bytes.len() + 7, "{} bytes", bytes.len());
    }

    /// A signed header whose header array has `fields` elements and `version` as its first.
    fn with_version(version: &[u8], fields: u8) -> Vec<u8> {
        let e = sign_entry(&key(), None, 1_000, 99, b"x".to_vec());
        let mut b = e.signed_bytes.clone();
        assert_eq!(&b[..3], &[0x92, 0x98, FORMAT_VERSION]);
        b.splice(1..3, [&[0x90 | fields][..], version].concat());
        if fields == 9 {
            // One more field at the end of the header: a layout this version does not know.
            let sig_at = b.len() - 66;
            b.insert(sig_at, 0x00);
        }
        b
    }

    #[test]
    fn a_future_version_is_named_even_when_its_layout_is_new() {
        assert!(matches!(SignedHeader::decode(&with_version(&[2], 8)), Err(ValidationError::UnknownVersion(2))));
        assert!(matches!(SignedHeader::decode(&with_version(&[2], 9)), Err(ValidationError::UnknownVersion(2))));
        assert!(matches!(SignedHeader::decode(&with_version(&[0x7f], 9)), Err(ValidationError::UnknownVersion(0x7f))));
        // This version with a field too many is malformed, not a version of its own.
        assert!(matches!(
            SignedHeader::decode(&with_version(&[FORMAT_VERSION], 9)),
            Err(ValidationError::Malformed(_))
        ));
        // 0x80 is no version number (an empty map): malformed.
        assert!(matches!(SignedHeader::decode(&with_version(&[0x80], 8)), Err(ValidationError::Malformed(_))));
    }

    #[test]
    fn the_header_size_bound_is_checked_before_decoding() {
        let at = |n: usize| match SignedHeader::decode(&vec![0xc1; n]) {
            Err(ValidationError::Malformed(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(!at(MAX_SIGNED_HEADER).contains("exceeds"), "{}", at(MAX_SIGNED_HEADER));
        assert!(at(MAX_SIGNED_HEADER + 1).contains("exceeds"), "{}", at(MAX_SIGNED_HEADER + 1));
    }
}
