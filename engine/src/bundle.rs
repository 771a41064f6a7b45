//! Bundle files, sans-IO (spec/bundle.md): log entries carried on a USB stick. A bundle is the
//! magic, then sections of entries each with its own length, count and checksum, then a table
//! of contents; a damaged or missing section costs only its own entries, and a truncated file
//! keeps every complete section before the cut. Blob sections (after the entries) carry files:
//! a range of a blob, bao-encoded exactly as `libra/blob/1` answers it, so a reader verifies
//! each against the blob's root (spec/blobs.md).

mod grant;

pub use grant::{GRANT_CONTEXT, GrantStatement, decode_grant, grant_body};

use crate::codec::{self, Bytes};
use crate::log::{Entry, MAX_PAYLOAD};

/// The first bytes of every bundle (format version 1).
pub const MAGIC: &[u8; 8] = b"LIBRABN1";
/// Section kinds.
pub const KIND_TOC: u8 = 0;
pub const KIND_ENTRIES: u8 = 1;
pub const KIND_BLOB: u8 = 2;
/// The exporter's grants, signed by its device (at most one per bundle, after the blobs).
pub const KIND_GRANT: u8 = 3;
/// `root(32) ‖ blob size u64 BE ‖ first chunk u64 BE ‖ end chunk u64 BE` before a blob
/// section's bao bytes.
pub const BLOB_HEAD: usize = 56;
/// Chunks (1 KiB) a writer puts in one blob section: 8 MiB of blob.
pub const BLOB_SECTION_CHUNKS: u64 = 8192;
/// `kind ‖ count u32 BE ‖ length u32 BE`.
pub const SECTION_HEADER: usize = 9;
pub const CHECKSUM: usize = 32;
/// Largest section body a reader accepts (so memory stays bounded whatever the file says).
pub const MAX_SECTION: u32 = 16 << 20;
/// Most entries in one section.
pub const MAX_COUNT: u32 = 100_000;
/// Largest encoded entry: a header and the largest payload, with room to spare.
pub const MAX_ENTRY: u32 = MAX_PAYLOAD + 4096;
/// Writers close a section at this many entries or bytes.
pub const SECTION_ENTRIES: usize = 5_000;
pub const SECTION_BYTES: usize = 8 << 20;

/// Why bytes are not (part of) a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("not a Libra bundle (or a version this program does not read)")]
    Magic,
    #[error("section {index}: unknown kind {kind}")]
    Kind { index: usize, kind: u8 },
    #[error("section {index}: {what} exceeds the limit")]
    TooLarge { index: usize, what: &'static str },
    #[error("section {index}: checksum mismatch (damaged)")]
    Checksum { index: usize },
    #[error("section {index}: {reason}")]
    Body { index: usize, reason: String },
    #[error("the table of contents does not match the sections read: {0}")]
    Toc(String),
}

/// A section's header as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionHeader {
    pub kind: u8,
    pub count: u32,
    pub length: u32,
}

impl SectionHeader {
    pub fn encode(&self) -> [u8; SECTION_HEADER] {
        let mut out = [0u8; SECTION_HEADER];
        out[0] = self.kind;
        out[1..5].copy_from_slice(&self.count.to_be_bytes());
        out[5..9].copy_from_slice(&self.length.to_be_bytes());
        out
    }

    /// Checks the limits before anything is allocated for the body.
    pub fn decode(b: &[u8; SECTION_HEADER], index: usize) -> Result<SectionHeader, BundleError> {
        let h = SectionHeader {
            kind: b[0],
            count: u32::from_be_bytes([b[1], b[2], b[3], b[4]]),
            length: u32::from_be_bytes([b[5], b[6], b[7], b[8]]),
        };
        if ![KIND_TOC, KIND_ENTRIES, KIND_BLOB, KIND_GRANT].contains(&h.kind) {
            return Err(BundleError::Kind { index, kind: h.kind });
        }
        if h.length > MAX_SECTION {
            return Err(BundleError::TooLarge { index, what: "its length" });
        }
        if h.count > MAX_COUNT {
            return Err(BundleError::TooLarge { index, what: "its entry count" });
        }
        Ok(h)
    }
}

/// blake3 of a section's header and body: its checksum.
pub fn checksum(header: &[u8; SECTION_HEADER], body: &[u8]) -> [u8; CHECKSUM] {
    let mut h = blake3::Hasher::new();
    h.update(header);
    h.update(body);
    *h.finalize().as_bytes()
}

/// One whole section: header, body, checksum.
pub fn section(kind: u8, count: u32, body: &[u8]) -> Vec<u8> {
    let header = SectionHeader { kind, count, length: u32::try_from(body.len()).unwrap_or(u32::MAX) }.encode();
    let mut out = Vec::with_capacity(SECTION_HEADER + body.len() + CHECKSUM);
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out.extend_from_slice(&checksum(&header, body));
    out
}

/// An entries section's body: each entry as `u32 BE length ‖ Entry::encode()`.
pub fn entries_body(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let b = e.encode();
        out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&b);
    }
    out
}

/// The entries of a section whose checksum matched. An entry that does not decode ends the
/// section's entries there (reported); those before it are kept.
pub fn decode_entries(h: &SectionHeader, body: &[u8], index: usize) -> (Vec<Entry>, Option<BundleError>) {
    let mut out = Vec::new();
    let mut rest = body;
    for i in 0..h.count {
        let fail = |reason: String| Some(BundleError::Body { index, reason });
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return (out, fail(format!("entry {i} of {}: cut short", h.count)));
        };
        let len = u32::from_be_bytes(*len);
        if len > MAX_ENTRY || len as usize > tail.len() {
            return (out, fail(format!("entry {i} of {}: length {len} is not possible", h.count)));
        }
        let (bytes, tail) = tail.split_at(len as usize);
        match Entry::decode(bytes) {
            Ok(e) => out.push(e),
            Err(e) => return (out, fail(format!("entry {i} of {}: {e}", h.count))),
        }
        rest = tail;
    }
    if !rest.is_empty() {
        return (out, Some(BundleError::Body { index, reason: format!("{} bytes after the last entry", rest.len()) }));
    }
    (out, None)
}

/// A range of a blob as a blob section carries it (the bao bytes not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPiece<'a> {
    pub root: [u8; 32],
    /// Size of the whole blob.
    pub size: u64,
    /// Chunks `[start, end)`.
    pub range: (u64, u64),
    pub bao: &'a [u8],
}

/// A blob section's body.
pub fn blob_body(root: &[u8; 32], size: u64, range: (u64, u64), bao: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOB_HEAD + bao.len());
    out.extend_from_slice(root);
    for n in [size, range.0, range.1] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(bao);
    out
}

/// Splits a blob section's body (whose checksum matched); the range must lie in the blob and
/// match the section's count. The bao bytes are verified by the caller against the root.
pub fn decode_blob<'a>(h: &SectionHeader, body: &'a [u8], index: usize) -> Result<BlobPiece<'a>, BundleError> {
    let bad = |reason: &str| BundleError::Body { index, reason: reason.into() };
    let (head, bao) = body.split_at_checked(BLOB_HEAD).ok_or_else(|| bad("a blob section shorter than its header"))?;
    let num = |at: usize| u64::from_be_bytes(head[at..at + 8].try_into().unwrap_or([0; 8]));
    let root: [u8; 32] = head[..32].try_into().map_err(|_| bad("no root"))?;
    let (size, start, end) = (num(32), num(40), num(48));
    let chunks = size.div_ceil(1024).max(1);
    if start >= end || end > chunks || end - start != u64::from(h.count) {
        return Err(bad("a blob range that does not fit the blob or the section's count"));
    }
    Ok(BlobPiece { root, size, range: (start, end), bao })
}

/// The table of contents: `[kind, count, checksum]` of every section before it, in order.
pub type Toc = Vec<(u8, u32, Bytes<CHECKSUM>)>;

pub fn toc_body(toc: &Toc) -> Vec<u8> {
    codec::encode(toc)
}

pub fn decode_toc(body: &[u8]) -> Result<Toc, BundleError> {
    codec::decode(body).map_err(|e| BundleError::Toc(e.to_string()))
}

/// A whole bundle in memory (vectors, fuzzing, small files): its entries, or the first problem.
/// Import reads files section by section instead and goes on after a damaged section.
pub fn parse(file: &[u8]) -> Result<Vec<Entry>, BundleError> {
    parse_all(file).map(|(entries, _)| entries)
}

/// [`parse`], with the grant statements the bundle carries (each signature verified).
pub fn parse_all(file: &[u8]) -> Result<(Vec<Entry>, Vec<GrantStatement>), BundleError> {
    let rest = file.strip_prefix(&MAGIC[..]).ok_or(BundleError::Magic)?;
    let mut grants = Vec::new();
    let (mut at, mut out, mut seen, mut index) = (0usize, Vec::new(), Toc::new(), 0usize);
    let cut = |index| BundleError::Body { index, reason: "cut short".into() };
    loop {
        let head: &[u8; SECTION_HEADER] =
            rest.get(at..at + SECTION_HEADER).and_then(|x| x.try_into().ok()).ok_or_else(|| cut(index))?;
        let h = SectionHeader::decode(head, index)?;
        let start = at + SECTION_HEADER;
        let end = start + h.length as usize;
        let body = rest.get(start..end).ok_or_else(|| cut(index))?;
        let sum: [u8; CHECKSUM] =
            rest.get(end..end + CHECKSUM).and_then(|x| x.try_into().ok()).ok_or_else(|| cut(index))?;
        if checksum(head, body) != sum {
            return Err(BundleError::Checksum { index });
        }
        if h.kind == KIND_TOC {
            if decode_toc(body)? != seen {
                return Err(BundleError::Toc("sections are missing, added or reordered".into()));
            }
            if end + CHECKSUM != rest.len() {
                return Err(BundleError::Toc("bytes after the table of contents".into()));
            }
            return Ok((out, grants));
        }
        if h.kind == KIND_GRANT {
            grants.push(decode_grant(&h, body, index)?);
        } else if h.kind == KIND_BLOB {
            let piece = decode_blob(&h, body, index)?;
            crate::blob::decode_response(&piece.root, piece.size, &[piece.range], piece.bao)
                .map_err(|e| BundleError::Body { index, reason: e.to_string() })?;
        } else {
            let (entries, err) = decode_entries(&h, body, index);
            if let Some(e) = err {
                return Err(e);
            }
            out.extend(entries);
        }
        seen.push((h.kind, h.count, Bytes(sum)));
        at = end + CHECKSUM;
        index += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked_before_any_allocation() {
        let h = SectionHeader { kind: KIND_ENTRIES, count: 3, length: 100 };
        assert_eq!(SectionHeader::decode(&h.encode(), 0), Ok(h));
        let big = SectionHeader { length: MAX_SECTION + 1, ..h }.encode();
        assert!(matches!(SectionHeader::decode(&big, 2), Err(BundleError::TooLarge { index: 2, .. })));
        let many = SectionHeader { count: MAX_COUNT + 1, ..h }.encode();
        assert!(SectionHeader::decode(&many, 0).is_err());
        let blob = SectionHeader { kind: KIND_BLOB, count: 16, length: 100 };
        assert!(decode_blob(&blob, &[0; 10], 3).is_err(), "shorter than its header");
        let body = blob_body(&[1; 32], 20_000, (0, 16), b"x");
        let piece = decode_blob(&blob, &body, 3).expect("splits");
        assert_eq!((piece.size, piece.range, piece.bao), (20_000, (0, 16), &b"x"[..]));
        assert!(decode_blob(&blob, &blob_body(&[1; 32], 1000, (0, 16), b""), 3).is_err(), "past the blob's end");
        assert!(decode_blob(&SectionHeader { count: 15, ..blob }, &body, 3).is_err(), "count differs");
        let odd = SectionHeader { kind: 7, ..h }.encode();
        assert_eq!(SectionHeader::decode(&odd, 1), Err(BundleError::Kind { index: 1, kind: 7 }));
        let s = section(KIND_ENTRIES, 0, b"");
        assert_eq!(s.len(), SECTION_HEADER + CHECKSUM);
        let (entries, err) = decode_entries(&SectionHeader { kind: 1, count: 1, length: 3 }, &[0, 0, 0], 0);
        assert!(entries.is_empty() && err.is_some());
    }
}
