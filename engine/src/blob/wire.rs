//! The `libra/blob/1` frames (spec/blobs.md, section 5). On one bidirectional stream the
//! fetcher sends requests and the server answers each in order:
//!
//! - request: `u32` big-endian length, then canonical MessagePack `[root bin32, [[start, end]…]]`
//!   with chunk ranges (1 KiB blake3 chunks, end exclusive) aligned to chunk groups;
//! - response: a status byte, a `u32` big-endian length, then for status 0 the bao encoding of
//!   the ranges (parents and chunk groups in pre-order) — exactly as long as the request
//!   implies, verified against the root as it is decoded.

use std::ops::Range;

use bao_tree::iter::{BaoChunk, ResponseIterRef};
use bao_tree::{BaoTree, ChunkNum, ChunkRanges, TreeNode};

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

/// One part of a verified response, in the order the body holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A parent's two child hashes (what the outboard keeps).
    Parent { node: TreeNode, pair: (blake3::Hash, blake3::Hash) },
    /// A chunk group: its byte offset in the blob and where its bytes lie in the body.
    Leaf { offset: u64, at: Range<usize> },
}

/// A response body verified against the root. The data is read where it lies in the body,
/// not copied out (a download verifies and writes every byte of a file once each).
#[derive(Debug)]
pub struct Verified<'a> {
    body: &'a [u8],
    parts: Vec<Part>,
}

impl<'a> Verified<'a> {
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The chunk groups: byte offset in the blob and their bytes.
    pub fn leaves(&self) -> impl Iterator<Item = (u64, &'a [u8])> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Leaf { offset, at } => Some((*offset, &self.body[at.clone()])),
            Part::Parent { .. } => None,
        })
    }
}

/// Verifies a response body to `ranges` of the blob with `root` and `size`: every parent and
/// chunk group against the root, in the pre-order bao-tree encodes them (the same walk as its
/// `DecodeResponseIter`, which the tests hold this to). Any mismatch, a short body or trailing
/// bytes is an error: nothing from an unverifiable response is used.
pub fn decode_response<'a>(
    root: &[u8; 32],
    size: u64,
    ranges: &[(u64, u64)],
    body: &'a [u8],
) -> Result<Verified<'a>, BlobError> {
    let expected = max_response_len(size, ranges);
    if body.len() as u64 != expected {
        return Err(BlobError::Verify(format!("{} bytes where {expected} were due", body.len())));
    }
    let set = truncate(&chunk_ranges_of(ranges), size);
    let tree = BaoTree::new(size, BLOCK);
    let mut stack: Vec<blake3::Hash> = vec![blake3::Hash::from_bytes(*root)];
    let mut parts = Vec::new();
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<Range<usize>, BlobError> {
        let r =
            at..at.checked_add(n).filter(|&e| e <= body.len()).ok_or_else(|| BlobError::Verify("short body".into()))?;
        at = r.end;
        Ok(r)
    };
    for chunk in ResponseIterRef::new(tree, &set) {
        let Some(expected) = stack.pop() else { break };
        match chunk {
            BaoChunk::Parent { is_root, left, right, node, .. } => {
                let r = take(64)?;
                let l = blake3::Hash::from_slice(&body[r.start..r.start + 32])
                    .map_err(|e| BlobError::Verify(e.to_string()))?;
                let rr = blake3::Hash::from_slice(&body[r.start + 32..r.end])
                    .map_err(|e| BlobError::Verify(e.to_string()))?;
                if parent_cv(&l, &rr, is_root) != expected {
                    return Err(BlobError::Verify(format!("parent {node:?} does not match")));
                }
                if right {
                    stack.push(rr);
                }
                if left {
                    stack.push(l);
                }
                parts.push(Part::Parent { node, pair: (l, rr) });
            }
            BaoChunk::Leaf { size, is_root, start_chunk, .. } => {
                let r = take(size)?;
                if subtree_hash(start_chunk.0, &body[r.clone()], is_root) != expected {
                    return Err(BlobError::Verify(format!("chunk group at chunk {} does not match", start_chunk.0)));
                }
                parts.push(Part::Leaf { offset: start_chunk.to_bytes(), at: r });
            }
        }
    }
    if at != body.len() {
        return Err(BlobError::Verify("trailing bytes".into()));
    }
    Ok(Verified { body, parts })
}

/// The chaining value of a subtree of data starting at `start_chunk` (the root's is the hash).
fn subtree_hash(start_chunk: u64, data: &[u8], is_root: bool) -> blake3::Hash {
    use blake3::hazmat::HasherExt;
    if is_root {
        return blake3::hash(data);
    }
    let mut h = blake3::Hasher::new();
    h.set_input_offset(start_chunk * 1024);
    h.update(data);
    blake3::Hash::from(h.finalize_non_root())
}

fn parent_cv(l: &blake3::Hash, r: &blake3::Hash, is_root: bool) -> blake3::Hash {
    use blake3::hazmat::{Mode, merge_subtrees_non_root, merge_subtrees_root};
    if is_root {
        merge_subtrees_root(l.as_bytes(), r.as_bytes(), Mode::Hash)
    } else {
        blake3::Hash::from(merge_subtrees_non_root(l.as_bytes(), r.as_bytes(), Mode::Hash))
    }
}

/// `set` as the encoder and decoder see it for a blob of `size` bytes: a range that reaches
/// the last chunk (or past it, before a range beyond) is open-ended. bao-tree does this with
/// a function it keeps private; this keeps the same boundaries.
fn truncate(set: &ChunkRanges, size: u64) -> ChunkRanges {
    let lc = ChunkNum(ChunkNum::chunks(size).0.saturating_sub(1));
    let bs = set.boundaries();
    let n = match bs.binary_search(&lc) {
        // The last chunk starts a range: keep it, open-ended.
        Ok(i) if i % 2 == 0 => i + 1,
        // A range ends just before the last chunk: nothing behind it, as is; else open it.
        Ok(i) => {
            if bs.len() == i + 1 {
                i + 1
            } else {
                i
            }
        }
        // Between ranges: as is if nothing is behind; else the next range, open-ended.
        Err(i) if i % 2 == 0 => {
            if bs.len() == i {
                i
            } else {
                i + 1
            }
        }
        // Inside a range: drop its end (and all behind it).
        Err(i) => i,
    };
    let mut out = ChunkRanges::empty();
    for pair in bs[..n].chunks(2) {
        match pair {
            [s, e] => out.union_with(&ChunkRanges::from(*s..*e)),
            [s] => out.union_with(&ChunkRanges::from(*s..)),
            _ => {}
        }
    }
    out
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
        let v = decode_response(&root, data.len() as u64, &ranges, &body).expect("verifies");
        let leaves: usize = v.leaves().map(|(_, d)| d.len()).sum();
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

    /// bao-tree's decoder, as `decode_response` used it before reading in place: what it
    /// yields for a body, or `None` where it refuses it.
    fn reference(root: &[u8; 32], size: u64, ranges: &[(u64, u64)], body: &[u8]) -> Option<Vec<Part>> {
        use bao_tree::io::BaoContentItem;
        if body.len() as u64 != max_response_len(size, ranges) {
            return None;
        }
        let mut reader = body;
        let set = chunk_ranges_of(ranges);
        let items: Vec<_> = bao_tree::io::sync::DecodeResponseIter::new(
            blake3::Hash::from_bytes(*root),
            BaoTree::new(size, BLOCK),
            &mut reader,
            &set,
        )
        .collect::<Result<_, _>>()
        .ok()?;
        if !reader.is_empty() {
            return None;
        }
        // Leaves as places in the body: found by their bytes, in order.
        let mut at = 0usize;
        Some(
            items
                .into_iter()
                .map(|i| match i {
                    BaoContentItem::Parent(p) => {
                        at += 64;
                        Part::Parent { node: p.node, pair: p.pair }
                    }
                    BaoContentItem::Leaf(l) => {
                        at += l.data.len();
                        assert_eq!(&body[at - l.data.len()..at], &l.data[..]);
                        Part::Leaf { offset: l.offset, at: at - l.data.len()..at }
                    }
                })
                .collect(),
        )
    }

    /// Reading in place decides as bao-tree's decoder does, for sizes around the tree's
    /// edges, ranges inside, across and past the end, and every kind of damage.
    #[test]
    fn reading_in_place_agrees_with_bao_tree() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n.max(1)
        };
        let (mut agreed, mut verified) = (0, 0);
        for n in [0usize, 1, 1023, 1024, 1025, 16 * 1024, 16 * 1024 + 1, 40_000, 100_000, 300_001] {
            let (data, ob) = blob(n);
            let root = *ob.root.as_bytes();
            let chunks = ChunkNum::chunks(n as u64).0.max(1);
            for _ in 0..40 {
                // Any ranges: aligned or not, some reaching past the end or beyond it.
                let mut ranges = Vec::new();
                let mut s = next(chunks + 2);
                for _ in 0..1 + next(3) {
                    let e = s + 1 + next(chunks + 3);
                    ranges.push((s, e));
                    s = e + 1 + next(chunks + 2);
                }
                let mut body = Vec::new();
                let set = chunk_ranges_of(&ranges);
                if bao_tree::io::sync::encode_ranges_validated(&data[..], &ob, &set, &mut body).is_err() {
                    continue;
                }
                let mut bodies = vec![body.clone()];
                if !body.is_empty() {
                    let mut flipped = body.clone();
                    let at = next(body.len() as u64) as usize;
                    flipped[at] ^= 1 << next(8);
                    bodies.push(flipped);
                    bodies.push(body[..body.len() - 1].to_vec());
                }
                let mut long = body.clone();
                long.push(7);
                bodies.push(long);
                for b in bodies {
                    let ours = decode_response(&root, n as u64, &ranges, &b).ok().map(|v| v.parts().to_vec());
                    assert_eq!(ours, reference(&root, n as u64, &ranges, &b), "size {n}, ranges {ranges:?}");
                    agreed += 1;
                    verified += usize::from(ours.is_some());
                }
            }
        }
        // Both outcomes were reached often (the comparison is not of two refusals).
        assert!(verified > 150 && agreed - verified > 600, "{verified} of {agreed} verified");
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
