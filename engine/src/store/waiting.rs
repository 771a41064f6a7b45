//! Entries that arrived before the entries they follow (a later bundle imported before an
//! earlier one): kept, signature checked, until their log reaches them, then ingested like any
//! (spec/bundle.md, section 3). Bounded; local, never sent.

use std::collections::BTreeMap;

use super::{Store, StoreError};
use crate::log::Entry;

/// The `meta` keyspace prefix, followed by the author and the seq (u64 BE).
const PREFIX: &[u8] = b"waiting:";
/// Most entries kept waiting, and their bytes: beyond, an entry is refused as before.
pub const MAX_WAITING: usize = 100_000;
pub const MAX_WAITING_BYTES: u64 = 256 << 20;

/// Per log, the seqs of its waiting entries, in order.
pub type Waiting = BTreeMap<[u8; 32], Vec<u64>>;

fn key(author: &[u8; 32], seq: u64) -> Vec<u8> {
    [PREFIX, author, &seq.to_be_bytes()].concat()
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("waiting entry: {e}"))
}

impl Store {
    /// Per log, the seqs waiting, and the bytes they take.
    pub fn waiting(&self) -> Result<(Waiting, u64), StoreError> {
        let (mut out, mut bytes) = (BTreeMap::<[u8; 32], Vec<u64>>::new(), 0u64);
        for item in self.meta.prefix(PREFIX) {
            let (k, v) = item.into_inner()?;
            let rest = &k[PREFIX.len()..];
            let (a, s) = rest.split_at_checked(32).ok_or_else(|| corrupt("key length"))?;
            let a: [u8; 32] = a.try_into().map_err(corrupt)?;
            let s = u64::from_be_bytes(s.try_into().map_err(corrupt)?);
            out.entry(a).or_default().push(s);
            bytes += v.len() as u64;
        }
        Ok((out, bytes))
    }

    /// Keeps entries waiting (their signatures verified by the caller), durably; returns how
    /// many were kept: none beyond the bounds.
    pub fn keep_waiting(&self, entries: &[Entry]) -> Result<usize, StoreError> {
        let (held, mut bytes) = self.waiting()?;
        let count: usize = held.values().map(Vec::len).sum();
        let mut batch = self.db.batch();
        let mut kept = 0;
        for e in entries {
            let v = e.encode();
            if count + kept >= MAX_WAITING || bytes + v.len() as u64 > MAX_WAITING_BYTES {
                break;
            }
            bytes += v.len() as u64;
            kept += 1;
            batch.insert(&self.meta, key(&e.header().author.0, e.header().seq), v);
        }
        if kept > 0 {
            self.sync.guard(batch.commit())?;
            self.sync_now()?;
        }
        Ok(kept)
    }

    /// The waiting entries of `author` from `from` on, in seq order, at most `limit`.
    pub fn waiting_entries(&self, author: &[u8; 32], from: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for item in self.meta.range(key(author, from)..=key(author, u64::MAX)).take(limit) {
            let (_, v) = item.into_inner()?;
            out.push(Entry::decode(&v).map_err(corrupt)?);
        }
        Ok(out)
    }

    /// Forgets the waiting entries of `author` with these seqs (taken, or refused when taken).
    pub fn drop_waiting(&self, author: &[u8; 32], seqs: &[u64]) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for s in seqs {
            batch.remove(&self.meta, key(author, *s));
        }
        self.sync.guard(batch.commit())?;
        self.sync_now()
    }
}
