//! Files as blobs (spec/blobs.md), sans-IO: how a file is encrypted into a blob
//! (`crypt`), the `libra/blob/1` request and response frames and their verification against
//! the blob's blake3 root (`wire`), and which ranges to ask for next (`ranges`).
//!
//! A file travels as a reference inside an end-to-end sealed message ([`FileRef`]: name, size,
//! media type, the root hash of its encrypted blob and the key that opens it). The blob itself
//! is ciphertext, so whoever serves or carries it learns nothing but its size.

mod crypt;
mod ranges;
mod wire;

pub use crypt::{blob_size, decrypt_stream, encrypt_stream, open_segment, seal_segment, segments};
pub use ranges::{Pieces, chunk_ranges_of, pairs_of, verified_bytes};
pub use wire::{
    MAX_REQUEST_CHUNKS, MAX_REQUEST_FRAME, MAX_RESPONSE, Part, Request, Status, Verified, check_request,
    decode_response, max_response_len,
};

use serde::{Deserialize, Serialize};

use crate::codec::Bytes;

/// Plaintext bytes per encrypted segment.
pub const SEGMENT: usize = 64 * 1024;
/// The authentication tag each segment adds.
pub const TAG: usize = 16;
/// bao-tree chunk groups of 16 chunks (16 KiB): the unit that is verified as it lands and the
/// granularity of the outboard (64 bytes of hashes per 16 KiB, 0.4 %).
pub const BLOCK: bao_tree::BlockSize = bao_tree::BlockSize::from_chunk_log(4);
/// Largest file Libra sends (plaintext).
pub const MAX_FILE: u64 = 64 << 30;
/// Longest file name and media type, in bytes.
pub const MAX_FILE_NAME: usize = 255;
pub const MAX_MEDIA_TYPE: usize = 127;

/// A file as its message carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub name: String,
    /// Plaintext size in bytes.
    pub size: u64,
    pub media_type: String,
    /// blake3 root of the encrypted blob.
    pub root: Bytes<32>,
    /// The per-file key (XChaCha20-Poly1305) that opens the blob.
    pub key: Bytes<32>,
}

impl FileRef {
    /// Size of the encrypted blob.
    pub fn blob_size(&self) -> u64 {
        blob_size(self.size)
    }

    pub fn root_hex(&self) -> String {
        hex::encode(self.root.0)
    }

    /// Refuses what no honest sender writes: sizes and lengths past the limits, a name that
    /// is a path.
    pub fn check(&self) -> Result<(), BlobError> {
        if self.size > MAX_FILE {
            return Err(BlobError::TooLarge(self.size));
        }
        if self.media_type.len() > MAX_MEDIA_TYPE {
            return Err(BlobError::BadName);
        }
        check_name(&self.name)
    }
}

/// A file name as a message may carry it: 1–[`MAX_FILE_NAME`] bytes, not a path.
pub fn check_name(name: &str) -> Result<(), BlobError> {
    if name.is_empty() || name.len() > MAX_FILE_NAME || name.contains(['/', '\\', '\0']) || name == "." || name == ".."
    {
        return Err(BlobError::BadName);
    }
    Ok(())
}

/// A file name safe to create in a folder on any system: characters Windows gives a meaning
/// (drive letters, streams, wildcards, device names) or that no system allows become `_`,
/// trailing dots and spaces go. The name a message carries is someone else's choice.
pub fn safe_file_name(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_control() || r#"<>:"/\|?*"#.contains(c) { '_' } else { c }).collect();
    while out.ends_with(['.', ' ']) {
        out.pop();
    }
    let stem = out.split('.').next().unwrap_or("").trim().to_ascii_uppercase();
    let reserved = ["CON", "PRN", "AUX", "NUL"].contains(&stem.as_str())
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// The media type of a file name, from its extension (what receivers use to decide how to show
/// it; never trusted for anything else).
pub fn media_type_of(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" | "md" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "zip" => "application/zip",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("a segment of the file does not decrypt (wrong key or damaged blob)")]
    Decrypt,
    #[error("file of {0} bytes is larger than the limit ({MAX_FILE} bytes)")]
    TooLarge(u64),
    #[error("a file name must be 1–{MAX_FILE_NAME} bytes and not a path")]
    BadName,
    #[error("malformed request: {0}")]
    Request(String),
    #[error("the response does not verify against the root hash: {0}")]
    Verify(String),
    #[error("the response is {0} bytes, more than the request allows")]
    ResponseTooLong(u64),
    #[error("the file changed while it was read (expected {expected} bytes, read {read})")]
    Changed { expected: u64, read: u64 },
    #[error("the file is being written already (a download or an import); try again when it ends")]
    Busy,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::safe_file_name;

    #[test]
    fn names_from_messages_become_safe_to_save_anywhere() {
        assert_eq!(safe_file_name("holiday.jpg"), "holiday.jpg");
        assert_eq!(safe_file_name("C:version.dll"), "C_version.dll");
        assert_eq!(safe_file_name("a:b<c>|?*\"d"), "a_b_c_____d");
        assert_eq!(safe_file_name("NUL.txt"), "_NUL.txt");
        assert_eq!(safe_file_name("com1"), "_com1");
        assert_eq!(safe_file_name("notes. . "), "notes");
        assert_eq!(safe_file_name("..."), "_");
        assert_eq!(safe_file_name("湖.png"), "湖.png");
    }
}
