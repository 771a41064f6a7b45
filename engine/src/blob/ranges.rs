//! Chunk ranges as the store keeps them (`[start, end)` pairs) and the plan of a download:
//! which pieces of the missing ranges to ask whom for next.

use bao_tree::{ChunkNum, ChunkRanges};

use super::BLOCK;
use super::wire::MAX_REQUEST_CHUNKS;

/// The set of `pairs`.
pub fn chunk_ranges_of(pairs: &[(u64, u64)]) -> ChunkRanges {
    let mut set = ChunkRanges::empty();
    for &(s, e) in pairs {
        if s < e {
            set.union_with(&ChunkRanges::from(ChunkNum(s)..ChunkNum(e)));
        }
    }
    set
}

/// The pairs of a set (an open-ended range is cut at `u64::MAX`).
pub fn pairs_of(set: &ChunkRanges) -> Vec<(u64, u64)> {
    let b = set.boundaries();
    b.chunks(2).map(|p| (p[0].0, p.get(1).map_or(u64::MAX, |e| e.0))).collect()
}

/// Bytes of a blob of `size` bytes covered by `have`.
pub fn verified_bytes(have: &[(u64, u64)], size: u64) -> u64 {
    have.iter().map(|&(s, e)| (e.saturating_mul(1024)).min(size).saturating_sub(s.saturating_mul(1024))).sum()
}

/// The pieces of a download still to fetch: what is missing less what is being fetched.
/// Pieces are at most [`MAX_REQUEST_CHUNKS`] and start on chunk groups.
#[derive(Debug, Clone)]
pub struct Pieces {
    missing: ChunkRanges,
    taken: ChunkRanges,
    /// Chunks in the blob.
    end: u64,
}

impl Pieces {
    /// A download of a blob of `size` bytes of which `have` is verified.
    pub fn new(size: u64, have: &[(u64, u64)]) -> Pieces {
        let end = ChunkNum::chunks(size).0.max(1);
        let mut missing = ChunkRanges::from(ChunkNum(0)..ChunkNum(end));
        missing.difference_with(&chunk_ranges_of(have));
        Pieces { missing, taken: ChunkRanges::empty(), end }
    }

    pub fn done(&self) -> bool {
        self.missing.is_empty()
    }

    /// Nothing left that nobody is fetching.
    pub fn all_taken(&self) -> bool {
        self.missing.is_subset(&self.taken)
    }

    /// Takes the next piece nobody is fetching.
    pub fn take(&mut self) -> Option<(u64, u64)> {
        self.take_avoiding(&[])
    }

    /// Takes the next piece nobody is fetching outside `avoid` (what a source said it lacks).
    /// The piece with the blob's last chunk comes first: it is the one that proves the size the
    /// message claims.
    pub fn take_avoiding(&mut self, avoid: &[(u64, u64)]) -> Option<(u64, u64)> {
        let mut free = self.missing.clone();
        free.difference_with(&self.taken);
        free.difference_with(&chunk_ranges_of(avoid));
        let group = 1u64 << BLOCK.chunk_log();
        let last = self.end - 1;
        if free.contains(&ChunkNum(last)) {
            let s = (last / group * group).saturating_sub(MAX_REQUEST_CHUNKS - group);
            let s =
                pairs_of(&free).iter().find(|&&(a, b)| a <= last && last < b).map_or(s, |&(a, _)| s.max(a - a % group));
            self.taken.union_with(&ChunkRanges::from(ChunkNum(s)..ChunkNum(self.end)));
            return Some((s, self.end));
        }
        let (s, e) = *pairs_of(&free).first()?;
        // Missing ranges start and end on groups (they are what verified groups left), except
        // the blob's end.
        let s = s - s % group;
        let e = e.min(s + MAX_REQUEST_CHUNKS);
        self.taken.union_with(&ChunkRanges::from(ChunkNum(s)..ChunkNum(e)));
        Some((s, e))
    }

    /// Whether anything still missing lies outside `avoid` (taken by others or not): a source
    /// lacking only `avoid` could still help if a piece came back.
    pub fn could_use(&self, avoid: &[(u64, u64)]) -> bool {
        let mut left = self.missing.clone();
        left.difference_with(&chunk_ranges_of(avoid));
        !left.is_empty()
    }

    /// A piece arrived verified.
    pub fn landed(&mut self, piece: (u64, u64)) {
        let r = ChunkRanges::from(ChunkNum(piece.0)..ChunkNum(piece.1));
        self.missing.difference_with(&r);
        self.taken.difference_with(&r);
    }

    /// A piece failed: someone else may take it.
    pub fn release(&mut self, piece: (u64, u64)) {
        self.taken.difference_with(&ChunkRanges::from(ChunkNum(piece.0)..ChunkNum(piece.1)));
    }

    pub fn missing(&self) -> Vec<(u64, u64)> {
        pairs_of(&self.missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_blob_once() {
        let size = 5 * 1024 * 1024 + 100;
        let mut p = Pieces::new(size, &[(0, 16), (2048, 2064)]);
        let mut got = Vec::new();
        while let Some(piece) = p.take() {
            assert!(piece.1 - piece.0 <= MAX_REQUEST_CHUNKS);
            got.push(piece);
        }
        assert!(p.all_taken() && !p.done());
        let (first, rest) = got.split_first().expect("pieces");
        p.release(*first);
        assert_eq!(p.take(), Some(*first));
        p.release(*first);
        assert_ne!(p.take_avoiding(&[*first]), Some(*first));
        for piece in std::iter::once(first).chain(rest) {
            p.landed(*piece);
        }
        assert!(p.done());
        let chunks: u64 = got.iter().map(|(s, e)| e - s).sum();
        assert_eq!(chunks, ChunkNum::chunks(size).0 - 32);
    }

    #[test]
    fn pairs_and_bytes() {
        let set = chunk_ranges_of(&[(0, 4), (8, 10), (3, 5)]);
        assert_eq!(pairs_of(&set), vec![(0, 5), (8, 10)]);
        assert_eq!(verified_bytes(&[(0, 2)], 1500), 1500);
        assert_eq!(verified_bytes(&[(0, 1), (1, 2)], 3000), 2048);
    }
}
