//! Canonical MessagePack: one valid byte form per value.
//!
//! Values are encoded with rmp-serde in its compact form (structs as arrays, smallest integer
//! and length forms). Decoding accepts a byte string only if re-encoding the decoded value gives
//! back exactly the same bytes, which rejects every other form (wider integers, maps for arrays,
//! str for bin, trailing bytes) without a hand-written parser.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Why bytes were not accepted as the canonical encoding of a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("non-canonical encoding")]
    NonCanonical,
}

/// Encodes a value in its canonical form.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    encode_into(value, &mut out);
    out
}

/// Appends the canonical form of a value to `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail, and every type we encode has a MessagePack form.
    if let Err(e) = rmp_serde::encode::write(out, value) {
        unreachable!("encoding into memory failed: {e}");
    }
}

/// Decodes a value and checks that `bytes` is exactly its canonical form.
pub fn decode<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, CodecError> {
    let mut reader = bytes;
    let value = {
        let mut de = rmp_serde::Deserializer::new(&mut reader);
        T::deserialize(&mut de).map_err(|e| CodecError::Malformed(e.to_string()))?
    };
    if !reader.is_empty() {
        return Err(CodecError::TrailingBytes(reader.len()));
    }
    let mut again = Vec::with_capacity(bytes.len());
    encode_into(&value, &mut again);
    if again != bytes {
        return Err(CodecError::NonCanonical);
    }
    Ok(value)
}

/// Encodes `[tag, body]`, the shape of every tagged message (sync messages, message bodies).
pub fn encode_tagged<T: Serialize + ?Sized>(tag: u8, body: &T) -> Vec<u8> {
    encode(&(tag, body))
}

/// The tag of a `[tag, body]` encoding, read before choosing how to decode the body.
pub fn peek_tag(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [0x92, t, ..] if *t < 0x80 => Some(*t),
        _ => None,
    }
}

/// Decodes the body of a canonical `[tag, body]` encoding.
pub fn decode_tagged<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, CodecError> {
    let (_, body): (u8, T) = decode(bytes)?;
    Ok(body)
}

/// A fixed-size byte string, encoded as MessagePack `bin` of exactly `N` bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes<const N: usize>(pub [u8; N]);

impl<const N: usize> std::fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl<const N: usize> Serialize for Bytes<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for V<N> {
            type Value = Bytes<N>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a byte string of length {N}")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes<N>, E> {
                <[u8; N]>::try_from(v).map(Bytes).map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(V::<N>)
    }
}

/// A variable-length byte string encoded as MessagePack `bin`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Blob(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({})", hex::encode(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pair(u64, Bytes<4>);

    fn check(bytes: &str, expect: Result<Pair, CodecError>) {
        let bytes = hex::decode(bytes).expect("hex");
        assert_eq!(decode::<Pair>(&bytes), expect);
    }

    #[test]
    fn canonical_forms() {
        check("9201c40401020304", Ok(Pair(1, Bytes([1, 2, 3, 4]))));
        // u8 form for a value that fits a positive fixint.
        check("92cc01c40401020304", Err(CodecError::NonCanonical));
        check("9201c4040102030400", Err(CodecError::TrailingBytes(1)));
        assert!(matches!(decode::<Pair>(&hex::decode("9201c403010203").expect("hex")), Err(CodecError::Malformed(_))));
        // str instead of bin.
        assert!(decode::<Pair>(&hex::decode("9201a401020304").expect("hex")).is_err());
        assert!(decode::<Pair>(&[]).is_err());
    }

    #[test]
    fn a_tag_is_read_only_from_its_canonical_fixint_form() {
        assert_eq!(peek_tag(&encode_tagged(5, &1u8)), Some(5));
        assert_eq!(peek_tag(&encode_tagged(0x7f, &1u8)), Some(0x7f));
        // A tag of 0x80 or more is a u8 form (cc 80): no tag of ours, not read as one.
        assert_eq!(peek_tag(&encode_tagged(0x80, &1u8)), None);
        assert_eq!(peek_tag(&[0x92, 0xcc, 0x05, 0x01]), None);
        // 0x80 there is an empty map, not a tag.
        assert_eq!(peek_tag(&[0x92, 0x80, 0x01]), None);
        assert_eq!(peek_tag(&[0x93, 0x05, 0x01, 0x01]), None);
        assert_eq!(peek_tag(&[0x92]), None);
    }

    #[test]
    fn byte_strings_show_as_hex_and_a_wrong_length_is_named() {
        assert_eq!(format!("{:?}", Bytes([1, 0xab])), "01ab");
        assert_eq!(format!("{:?}", Blob(vec![1, 0xab])), "Blob(01ab)");
        // A 3-byte bin where 4 are expected.
        let err = decode::<Pair>(&hex::decode("9201c403010203").expect("hex"));
        assert!(matches!(&err, Err(CodecError::Malformed(m)) if m.contains("a byte string of length 4")), "{err:?}");
    }

    #[test]
    fn round_trip() {
        let p = Pair(u64::MAX, Bytes([9; 4]));
        assert_eq!(decode::<Pair>(&encode(&p)), Ok(p));
    }
}
