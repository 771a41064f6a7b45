//! `libra/blob/1` responses: a source sends these bytes; they must verify against the root or
//! be refused, never panic. The first two bytes pick the range asked for.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use libra_engine::blob::{Request, check_request, decode_response};

/// A 140,000-byte file's blob (as in testvectors/blobs.json) and its root.
fn blob() -> &'static (Vec<u8>, [u8; 32]) {
    static B: OnceLock<(Vec<u8>, [u8; 32])> = OnceLock::new();
    B.get_or_init(|| {
        let plain: Vec<u8> = (0..140_000).map(|i| (i % 251) as u8).collect();
        let mut b = Vec::new();
        libra_engine::blob::encrypt_stream(&[0x42; 32], plain.len() as u64, &plain[..], &mut b).expect("encrypt");
        let root = *blake3::hash(&b).as_bytes();
        (b, root)
    })
}

fuzz_target!(|data: &[u8]| {
    let (b, root) = blob();
    let size = b.len() as u64;
    let (Some(&s), Some(&e)) = (data.first(), data.get(1)) else { return };
    let (s, e) = (u64::from(s % 9) * 16, (u64::from(s % 9) * 16 + 1 + u64::from(e) % 64).min(size.div_ceil(1024)));
    let req = Request { root: *root, ranges: vec![(s, e)] };
    if s >= e || check_request(&req, size).is_err() {
        return;
    }
    let body = &data[2..];
    let ours = decode_response(root, size, &req.ranges, body);
    // bao-tree's own decoder agrees on what verifies and what it holds.
    let set = libra_engine::blob::chunk_ranges_of(&req.ranges);
    let tree = bao_tree::BaoTree::new(size, libra_engine::blob::BLOCK);
    let mut reader = body;
    let theirs: Result<Vec<_>, _> =
        bao_tree::io::sync::DecodeResponseIter::new(blake3::Hash::from_bytes(*root), tree, &mut reader, &set).collect();
    let whole = body.len() as u64 == libra_engine::blob::max_response_len(size, &req.ranges);
    assert_eq!(ours.is_ok(), whole && theirs.is_ok() && reader.is_empty());
    if let Ok(v) = ours {
        // Whatever verified is the blob's own bytes.
        for (offset, data) in v.leaves() {
            let at = offset as usize;
            assert_eq!(&b[at..at + data.len()], data);
        }
    }
});
