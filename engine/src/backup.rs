//! The backup file (spec/devices.md, "Backup"), sans-IO: a short plain header naming the user
//! and a random salt, then the contents encrypted in 64 KiB XChaCha20-Poly1305 segments (the
//! blob construction of spec/blobs.md) under a key only the recovery phrase gives.
//!
//! Contents: a u32 BE length and canonical MessagePack [`Contents`] (the agreement secrets that
//! open the history), the kept content keys (a u64 BE count, then per key the entry id and the
//! key, 32 bytes each), then a bundle of every log held (spec/bundle.md).

use serde::{Deserialize, Serialize};

use crate::codec::{self, Bytes};
use crate::identity::UserId;

/// `"libra-backup\0"` and the format version.
pub const MAGIC: &[u8; 14] = b"libra-backup\0\x01";
/// Magic, salt, user id, plaintext length.
pub const HEADER_LEN: usize = 14 + 32 + 32 + 8;
/// The key derivation context.
pub const KEY_CONTEXT: &str = "libra backup v1";
/// Largest [`Contents`] record.
pub const MAX_CONTENTS: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    #[error("not a Libra backup (or a version this one cannot read)")]
    NotABackup,
    #[error("this backup belongs to another identity ({0})")]
    OtherUser(String),
    #[error("the backup is damaged: {0}")]
    Damaged(String),
}

/// The plain header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub salt: [u8; 32],
    pub user: UserId,
    /// Bytes of plaintext (contents record and bundle) encrypted after the header.
    pub plain_len: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..14].copy_from_slice(MAGIC);
        out[14..46].copy_from_slice(&self.salt);
        out[46..78].copy_from_slice(self.user.as_bytes());
        out[78..].copy_from_slice(&self.plain_len.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Header, BackupError> {
        if bytes.len() < HEADER_LEN || &bytes[..14] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let arr = |r: std::ops::Range<usize>| -> [u8; 32] { bytes[r].try_into().unwrap_or([0; 32]) };
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[78..86]);
        Ok(Header { salt: arr(14..46), user: UserId(Bytes(arr(46..78))), plain_len: u64::from_be_bytes(len) })
    }

    /// The encryption key, from the user secret the phrase gives.
    pub fn key(&self, user_secret: &[u8; 32]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key(KEY_CONTEXT);
        h.update(user_secret);
        h.update(&self.salt);
        *h.finalize().as_bytes()
    }
}

/// What a backup holds besides the logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contents {
    pub version: u8,
    pub created_ms: u64,
    /// The backed-up device's agreement secrets, current first: they open its history.
    pub agreements: Vec<Bytes<32>>,
}

impl Contents {
    /// The record as it starts the plaintext: length, then the encoding.
    pub fn framed(&self) -> Vec<u8> {
        let body = codec::encode(self);
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    /// Parses the record at the start of `plain`; returns it and the bytes it took.
    pub fn parse(plain: &[u8]) -> Result<(Contents, usize), BackupError> {
        let damaged = |m: &str| BackupError::Damaged(m.to_owned());
        let len = plain.get(..4).ok_or_else(|| damaged("no contents record"))?;
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if n > MAX_CONTENTS {
            return Err(damaged("contents record too long"));
        }
        let body = plain.get(4..4 + n).ok_or_else(|| damaged("contents record cut off"))?;
        let c: Contents = codec::decode(body).map_err(|e| BackupError::Damaged(e.to_string()))?;
        if c.version != 1 || c.agreements.len() > crate::link::MAX_HISTORY {
            return Err(damaged("unknown contents"));
        }
        Ok((c, 4 + n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_refuse_other_files() {
        let h = Header { salt: [3; 32], user: UserId(Bytes([4; 32])), plain_len: 12345 };
        assert_eq!(Header::decode(&h.encode()), Ok(h));
        assert_eq!(Header::decode(b"libra-bundle"), Err(BackupError::NotABackup));
        assert_ne!(h.key(&[1; 32]), Header { salt: [5; 32], ..h }.key(&[1; 32]), "the salt changes the key");
        let c = Contents { version: 1, created_ms: 9, agreements: vec![Bytes([1; 32])] };
        let mut framed = c.framed();
        framed.extend_from_slice(b"bundle");
        assert_eq!(Contents::parse(&framed), Ok((c, framed.len() - 6)));
        assert!(Contents::parse(&[0, 0, 0, 9, 1]).is_err());
    }
}
