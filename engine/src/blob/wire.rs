//! The `libra/blob/1` frames (spec/blobs.md, section 5). On one bidirectional stream the
//! fetcher sends requests and the server answers each in order:
//!
//! - request: `u32` big-endian length, then canonical MessagePack `[root bin32, [[start, end]…]]`
//!   with chunk ranges (1 KiB blake3 chunks, end exclusive) aligned to chunk groups;
//! - response: a status byte, a `u32` big-endian length, then for status 0 the bao encoding of
//!   the ranges (parents and chunk groups in pre-order) — exactly as long as the request
//!   implies, verified against the root as it is decoded.

use bao_tree::io::BaoContentItem;
use bao_tree::iter::BaoChunk;
use bao_tree::{BaoTree, ChunkNum};

use super::ranges::chunk_ranges_of;
use super::{BLOCK, BlobError};
use crate::codec::{self, Bytes};

/// Largest request frame body.
pub const MAX_REQUEST_FRAME: usize = 1024;
/// Most chunks (1 KiB each) one request may ask for: 1 MiB of blob.
pub const MAX_REQUEST_CHUNKS: u64 = 1024;
/// Most ranges in one request.
pub const MAX_RANGES: usize = 16;
/// Longest response body: 1 MiB of data and its parents.
pub const MAX_RESPONSE: u64 = (1 << 20) + (64 << 10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub root: [u8; 32],
    /// Chunk ranges `[start, end)`, sorted, disjoint, non-empty.
    pub ranges: Vec<(u64, u64)>,
}

/// What a response says before its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Ok = 0,
    /// The server has no such blob.
    Unknown = 1,
    /// The server has the blob but not all the ranges asked for.
    Missing = 2,
    /// The request breaks a limit.
    Refused = 3,
}

impl Status {
    pub fn from_byte(b: u8) -> Option<Status> {
        [Status::Ok, Status::Unknown, Status::Missing, Status::Refused].into_iter().find(|s| *s as u8 == b)
    }
}

impl Request {
    /// The frame body (without its length prefix).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(&(Bytes(self.root), &self.ranges))
    }

    /// Decodes and checks a frame body: canonical, within the limits, ranges well formed.
    pub fn decode(body: &[u8]) -> Result<Request, BlobError> {
        if body.len() > MAX_REQUEST_FRAME {
            return Err(BlobError::Request("frame too long".into()));
        }
        let (root, ranges): (Bytes<32>, Vec<(u64, u64)>) =
            codec::decode(body).map_err(|e| BlobError::Request(e.to_string()))?;
        let r = Request { root: root.0, ranges };
        r.check_shape()?;
        Ok(r)
    }

    fn check_shape(&self) -> Result<(), BlobError> {
        if self.ranges.is_empty() || self.ranges.len() > MAX_RANGES {
            return Err(BlobError::Request(format!("1–{MAX_RANGES} ranges")));
        }
        let mut last_end = 0;
        let mut total = 0u64;
        for (i, &(s, e)) in self.ranges.iter().enumerate() {
            if s >= e || (i > 0 && s <= last_end) {
                return Err(BlobError::Request("ranges must be sorted, disjoint and non-empty".into()));
            }
            total = total.saturating_add(e - s);
            last_end = e;
        }
        if total > MAX_REQUEST_CHUNKS {
            return Err(BlobError::Request(format!("more than {MAX_REQUEST_CHUNKS} chunks")));
        }
        Ok(())
    }

    /// The chunks this request asks for.
    pub fn chunks(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }
}

/// Checks a request against a blob of `size` bytes: every range inside the blob and starting
/// on a chunk group (so the response holds exactly the groups asked for).
pub fn check_request(req: &Request, size: u64) -> Result<(), BlobError> {
    let chunks = ChunkNum::chunks(size).0.max(1);
    let group = 1u64 << BLOCK.chunk_log();
    for &(s, e) in &req.ranges {
        if e > chunks || s % group != 0 || (e % group != 0 && e != chunks) {
            return Err(BlobError::Request("a range outside the blob or not on chunk groups".into()));
        }
    }
    Ok(())
}

/// The exact length of the response to `ranges` of a blob of `size` bytes.
pub fn max_response_len(size: u64, ranges: &[(u64, u64)]) -> u64 {
    let tree = BaoTree::new(size, BLOCK);
    let set = chunk_ranges_of(ranges);
    tree.ranges_pre_order_chunks_iter_ref(&set, 0)
        .map(|c| match c {
            BaoChunk::Parent { .. } => 64,
            BaoChunk::Leaf { size, .. } => size as u64,
        })
        .sum()
}

/// Decodes a response body to `ranges` of the blob with `root` and `size`, verifying every
/// parent and chunk group against the root. Any mismatch, a short body or trailing bytes is an
/// error: nothing from an unverifiable response is used.
pub fn decode_response(
    root: &[u8; 32],
    size: u64,
    ranges: &[(u64, u64)],
    body: &[u8],
) -> Result<Vec<BaoContentItem>, BlobError> {
    let expected = max_response_len(size, ranges);
    if body.len() as u64 != expected {
        return Err(BlobError::Verify(format!("{} bytes where {expected} were due", body.len())));
    }
    let set = chunk_ranges_of(ranges);
    let tree = BaoTree::new(size, BLOCK);
    let mut reader = body;
    let items: Result<Vec<_>, _> =
        bao_tree::io::sync::DecodeResponseIter::new(blake3::Hash::from_bytes(*root), tree, &mut reader, &set).collect();
    let items = items.map_err(|e| BlobError::Verify(e.to_string()))?;
    if !reader.is_empty() {
        return Err(BlobError::Verify("trailing bytes".into()));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bao_tree::io::outboard::PreOrderMemOutboard;

    fn blob(n: usize) -> (Vec<u8>, PreOrderMemOutboard) {
        let data: Vec<u8> = (0..n).map(|i| (i * 7 % 256) as u8).collect();
        let ob = PreOrderMemOutboard::create(&data, BLOCK);
        (data, ob)
    }

    fn encode(data: &[u8], ob: &PreOrderMemOutboard, ranges: &[(u64, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        bao_tree::io::sync::encode_ranges_validated(data, ob, &chunk_ranges_of(ranges), &mut out).expect("encode");
        out
    }

    #[test]
    fn a_response_verifies_and_a_flipped_bit_does_not() {
        let (data, ob) = blob(100_000);
        let root = *ob.root.as_bytes();
        let ranges = [(16, 64)];
        let body = encode(&data, &ob, &ranges);
        assert_eq!(body.len() as u64, max_response_len(data.len() as u64, &ranges));
        let items = decode_response(&root, data.len() as u64, &ranges, &body).expect("verifies");
        let leaves: usize = items
            .iter()
            .map(|i| match i {
                BaoContentItem::Leaf(l) => l.data.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(leaves, 48 * 1024);
        for at in [0, 70, body.len() - 1] {
            let mut bad = body.clone();
            bad[at] ^= 1;
            assert!(decode_response(&root, data.len() as u64, &ranges, &bad).is_err(), "flip at {at}");
        }
        assert!(decode_response(&root, data.len() as u64, &ranges, &body[..body.len() - 1]).is_err());
        let mut long = body.clone();
        long.push(0);
        assert!(decode_response(&root, data.len() as u64, &ranges, &long).is_err());
    }

    #[test]
    fn the_last_partial_group_and_tiny_blobs() {
        for n in [0usize, 1, 1024, 1025, 16 * 1024 + 3] {
            let (data, ob) = blob(n);
            let end = ChunkNum::chunks(n as u64).0.max(1);
            let ranges = [(0, end)];
            let req = Request { root: *ob.root.as_bytes(), ranges: ranges.to_vec() };
            check_request(&req, n as u64).expect("inside");
            let body = encode(&data, &ob, &ranges);
            decode_response(ob.root.as_bytes(), n as u64, &ranges, &body).expect("verifies");
        }
    }

    #[test]
    fn requests_round_trip_and_bad_ones_are_refused() {
        let r = Request { root: [1; 32], ranges: vec![(0, 16), (32, 48)] };
        assert_eq!(Request::decode(&r.encode()).expect("decodes"), r);
        for ranges in [vec![], vec![(5, 5)], vec![(16, 32), (0, 16)], vec![(0, 2048)], vec![(0, 16), (16, 32)]] {
            let bad = Request { root: [1; 32], ranges };
            assert!(Request::decode(&bad.encode()).is_err(), "{bad:?}");
        }
        let unaligned = Request { root: [1; 32], ranges: vec![(3, 16)] };
        assert!(check_request(&unaligned, 1 << 20).is_err());
        let outside = Request { root: [1; 32], ranges: vec![(0, 32)] };
        assert!(check_request(&outside, 10_000).is_err());
        assert_eq!(Status::from_byte(2), Some(Status::Missing));
        assert_eq!(Status::from_byte(9), None);
    }
}
