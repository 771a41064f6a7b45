//! What this node last sent each contact by bundle: per log, the seq up to which it went.
//! Local (never in a log, never sent), kept so that the next bundle for that contact carries
//! only what came since (spec/bundle.md, section 2).

use std::collections::BTreeMap;

use super::{Store, StoreError};
use crate::codec::{self, Bytes};
use crate::identity::UserId;

/// The `meta` keyspace prefix (followed by the contact's user key).
const PREFIX: &[u8] = b"bundle-heads:";

fn key(user: &UserId) -> Vec<u8> {
    [PREFIX, user.as_bytes()].concat()
}

impl Store {
    /// Per log, the last seq sent to `user` by bundle (empty: nothing yet).
    pub fn sent_heads(&self, user: &UserId) -> Result<BTreeMap<[u8; 32], u64>, StoreError> {
        match self.meta.get(key(user))? {
            Some(v) => {
                let rows: Vec<(Bytes<32>, u64)> =
                    codec::decode(&v).map_err(|e| StoreError::Corrupt(format!("bundle heads: {e}")))?;
                Ok(rows.into_iter().map(|(a, s)| (a.0, s)).collect())
            }
            None => Ok(BTreeMap::new()),
        }
    }

    /// Raises what was sent to `user` to `heads` (never lowers it), durably.
    pub fn note_sent_heads(&self, user: &UserId, heads: &BTreeMap<[u8; 32], u64>) -> Result<(), StoreError> {
        let mut all = self.sent_heads(user)?;
        for (a, s) in heads {
            let e = all.entry(*a).or_default();
            *e = (*e).max(*s);
        }
        let rows: Vec<(Bytes<32>, u64)> = all.into_iter().map(|(a, s)| (Bytes(a), s)).collect();
        self.sync.guard(self.meta.insert(key(user), codec::encode(&rows)))?;
        self.sync_now()
    }
}
