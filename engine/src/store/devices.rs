//! Local device bookkeeping: which revocations of our own devices this device has already
//! rotated its agreement key for (spec/devices.md, "Rotation"). Never sent.

use std::collections::BTreeSet;

use super::{Store, StoreError, keys};
use crate::identity::DeviceId;

const ROTATED_KEY: &[u8] = b"rotated-for";

impl Store {
    /// Own devices whose revocation this device has rotated its key for.
    pub fn rotated_for(&self) -> Result<BTreeSet<DeviceId>, StoreError> {
        let Some(v) = self.meta.get(ROTATED_KEY)? else { return Ok(BTreeSet::new()) };
        crate::codec::decode(&v).map_err(|e| StoreError::Corrupt(format!("rotated-for: {e}")))
    }

    pub fn set_rotated_for(&self, devices: &BTreeSet<DeviceId>) -> Result<(), StoreError> {
        self.sync.guard(self.meta.insert(ROTATED_KEY, crate::codec::encode(devices)))?;
        self.sync_now()
    }
}

/// One kept content key: the entry id and its key.
pub type KeptKey = ([u8; 32], [u8; 32]);

impl Store {
    /// Every content key kept (spec/devices.md, "Retention"), in entry-id order.
    pub fn kept_keys(&self) -> Result<Vec<KeptKey>, StoreError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.kept_keys_after(after.as_ref(), 4096)?;
            let Some(last) = page.last() else { return Ok(out) };
            after = Some(last.0);
            out.extend(page);
        }
    }

    /// Up to `limit` kept content keys of entries after `after` in id order (all from the
    /// first with `None`): a page, so a handover never holds them all. Keys live in two places
    /// (spec/devices.md, 7.1): in the `ids` rows of the entries they were kept with as stored,
    /// and in `views` (learned later); a page merges both.
    pub fn kept_keys_after(&self, after: Option<&[u8; 32]>, limit: usize) -> Result<Vec<KeptKey>, StoreError> {
        let mut out = self.kept_in_views_after(after, limit)?;
        out.extend(self.kept_in_ids_after(after, limit)?);
        out.sort_unstable_by_key(|p| p.0);
        out.dedup_by_key(|p| p.0);
        out.truncate(limit);
        Ok(out)
    }

    fn kept_in_views_after(&self, after: Option<&[u8; 32]>, limit: usize) -> Result<Vec<KeptKey>, StoreError> {
        let start = match after {
            // The next possible key after `after`: the id followed by a zero byte.
            Some(id) => [&keys::content_key_key(id)[..], &[0]].concat(),
            None => keys::CONTENT_KEY_PREFIX.to_vec(),
        };
        let end = keys::content_key_key(&[0xff; 32]);
        let mut out = Vec::with_capacity(limit.min(4096));
        for item in self.views.range(start..=end).take(limit) {
            let (k, v) = item.into_inner()?;
            let id = keys::to_array32(&k[keys::CONTENT_KEY_PREFIX.len()..])?;
            out.push((id, keys::to_array32(&v)?));
        }
        Ok(out)
    }

    /// The keys kept in `ids` rows after `after`: the `limit` first in id order, and any that
    /// share the last one's 16-byte prefix (rows are in prefix order, not full-id order).
    fn kept_in_ids_after(&self, after: Option<&[u8; 32]>, limit: usize) -> Result<Vec<KeptKey>, StoreError> {
        let start = after.map_or_else(Vec::new, |id| id[..keys::ID_PREFIX].to_vec());
        let mut out: Vec<KeptKey> = Vec::with_capacity(limit.min(4096));
        for item in self.ids.range(start..) {
            let (k, v) = item.into_inner()?;
            let Some((rest, key)) = keys::parse_id_value(&v)? else { continue };
            let id = keys::full_id(&k, &rest)?;
            if after.is_some_and(|a| id <= *a) {
                continue;
            }
            if out.len() >= limit && out.last().is_some_and(|l| l.0[..keys::ID_PREFIX] != id[..keys::ID_PREFIX]) {
                break;
            }
            out.push((id, key));
        }
        out.sort_unstable_by_key(|p| p.0);
        Ok(out)
    }

    /// Keeps content keys handed over by another device of ours (linking, a backup), so the
    /// entries they open are readable when their logs arrive. Visible at once; durable at the
    /// next [`Store::persist_now`] (one fsync for a whole handover, not one per batch).
    pub fn keep_content_keys(&self, pairs: &[KeptKey]) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        for (id, key) in pairs {
            batch.insert(&self.views, keys::content_key_key(id), key.to_vec());
        }
        self.sync.guard(batch.commit())
    }

    /// Makes everything committed so far durable (outside the engine's group commit).
    pub fn persist_now(&self) -> Result<(), StoreError> {
        self.sync_now()
    }
}
