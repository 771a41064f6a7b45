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
