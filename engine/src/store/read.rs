//! Reading entries back: by log position, newest first, or by id.

use super::keys::{self, ID_PREFIX, to_array32};
use super::{Store, StoreError};
use crate::log::{Entry, EntryId};

impl Store {
    pub(super) fn decode_record(&self, value: &[u8]) -> Result<Entry, StoreError> {
        let (signed, payload) = keys::split_entry_value(value)?;
        Entry::from_parts(signed.to_vec(), Some(payload.to_vec()))
            .map_err(|e| StoreError::Corrupt(format!("stored entry does not decode: {e}")))
    }

    /// The entry at `seq` of `author`'s log.
    pub fn get_at(&self, author: &[u8; 32], seq: u64) -> Result<Option<Entry>, StoreError> {
        match self.entries.get(keys::entry_key(author, seq))? {
            Some(v) => self.decode_record(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Up to `limit` entries of a log from `from` (inclusive) upward.
    pub fn read_log(&self, author: &[u8; 32], from: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let start = keys::entry_key(author, from.max(1));
        let end = keys::entry_key(author, u64::MAX);
        let mut out = Vec::new();
        for item in self.entries.range(start..=end).take(limit) {
            out.push(self.decode_record(&item.value()?)?);
        }
        Ok(out)
    }

    /// The newest `n` entries of a log, newest first.
    pub fn newest(&self, author: &[u8; 32], n: usize) -> Result<Vec<Entry>, StoreError> {
        let start = keys::entry_key(author, 1);
        let end = keys::entry_key(author, u64::MAX);
        let mut out = Vec::with_capacity(n.min(1024));
        for item in self.entries.range(start..=end).rev().take(n) {
            out.push(self.decode_record(&item.value()?)?);
        }
        Ok(out)
    }

    /// The entry with this id, if stored.
    pub fn get(&self, id: &EntryId) -> Result<Option<Entry>, StoreError> {
        // The index holds a 16-byte id prefix; every candidate is confirmed by its full hash.
        for item in self.ids.prefix(&id.as_bytes()[..ID_PREFIX]) {
            let (lognum, seq) = keys::parse_id_key(&item.key()?)?;
            let Some(author) = self.lognums.get(lognum.to_be_bytes())? else {
                return Err(StoreError::Corrupt(format!("id index names unknown log number {lognum}")));
            };
            if let Some(e) = self.get_at(&to_array32(&author)?, seq)?
                && e.id == *id
            {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Every fork proof held, by author.
    pub fn forks(&self) -> Result<Vec<([u8; 32], crate::log::ForkProof)>, StoreError> {
        let mut out = Vec::new();
        for item in self.forks.iter() {
            let (k, v) = item.into_inner()?;
            let proof =
                crate::log::ForkProof::decode(&v).map_err(|e| StoreError::Corrupt(format!("fork proof: {e}")))?;
            out.push((to_array32(&k)?, proof));
        }
        Ok(out)
    }
}
