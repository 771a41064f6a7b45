//! What each contact is known to hold: per log, the seq up to which it has it, learned from the
//! bundles made for it and from the sync sessions with its devices. Local (never in a log, never
//! sent), kept so that the next bundle for that contact carries only what came since
//! (spec/bundle.md, section 2).

use std::collections::BTreeMap;

use super::{Store, StoreError};
use crate::codec::{self, Bytes};
use crate::identity::UserId;

/// The `meta` keyspace prefix, followed by the contact's user key and the log's author.
const PREFIX: &[u8] = b"bundle-heads:";

fn user_prefix(user: &UserId) -> Vec<u8> {
    [PREFIX, user.as_bytes()].concat()
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("bundle heads: {e}"))
}

impl Store {
    /// Per log, the last seq `user` is known to hold (empty: nothing known).
    pub fn known_heads(&self, user: &UserId) -> Result<BTreeMap<[u8; 32], u64>, StoreError> {
        let prefix = user_prefix(user);
        let mut all = BTreeMap::new();
        for item in self.meta.prefix(&prefix) {
            let (k, v) = item.into_inner()?;
            match &k[prefix.len()..] {
                // Stores before per-log keys kept one array under the user's key.
                [] => {
                    let rows: Vec<(Bytes<32>, u64)> = codec::decode(&v).map_err(corrupt)?;
                    for (a, s) in rows {
                        raise(&mut all, a.0, s);
                    }
                }
                author => {
                    let a: [u8; 32] = author.try_into().map_err(|_| corrupt("key length"))?;
                    raise(&mut all, a, codec::decode(&v).map_err(corrupt)?);
                }
            }
        }
        Ok(all)
    }

    /// Raises what `user` is known to hold to `heads` (never lowers it), durably (inside a
    /// write group, with the group's fsync). Reads and writes only the logs in `heads` (a
    /// session's, at its end, in the write group: not every log the contact is known to hold).
    pub fn raise_known_heads(&self, user: &UserId, heads: &BTreeMap<[u8; 32], u64>) -> Result<(), StoreError> {
        if heads.is_empty() {
            return Ok(());
        }
        let prefix = user_prefix(user);
        // Stores before per-log keys kept one array under the user's key.
        let legacy: BTreeMap<[u8; 32], u64> = match self.meta.get(&prefix)? {
            Some(v) => {
                let rows: Vec<(Bytes<32>, u64)> = codec::decode(&v).map_err(corrupt)?;
                rows.into_iter().map(|(a, s)| (a.0, s)).collect()
            }
            None => BTreeMap::new(),
        };
        let mut batch = self.db.batch();
        for (a, s) in heads {
            let key = [prefix.as_slice(), a].concat();
            let held = match self.meta.get(&key)? {
                Some(v) => codec::decode::<u64>(&v).map_err(corrupt)?,
                None => 0,
            };
            if held.max(legacy.get(a).copied().unwrap_or(0)) < *s {
                batch.insert(&self.meta, key, codec::encode(s));
            }
        }
        self.sync.guard(batch.commit())?;
        self.sync_now()
    }
}

fn raise(all: &mut BTreeMap<[u8; 32], u64>, author: [u8; 32], seq: u64) {
    let e = all.entry(author).or_default();
    *e = (*e).max(seq);
}
