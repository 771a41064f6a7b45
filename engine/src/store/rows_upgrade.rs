//! A one-time upgrade of the local rows of a store written before the chats rows lost their
//! `t` rows and this device's own delivery acks, and before acknowledgement points replaced
//! the per-message pending marks (spec/messaging.md, sections 9.3 and 10.4).

use std::collections::BTreeMap;

use super::{Store, StoreError};

/// Present once the store's rows are in this form (written by every store that sets a reader).
pub(super) const DONE: &[u8] = b"chats-rows\0v3";
/// Removals per batch, so an upgrade of a million messages does not hold them all in memory.
const PER_BATCH: usize = 50_000;

impl Store {
    /// Removes the rows the current rows function no longer yields, so a rebuild still equals
    /// what is stored, and turns pending marks into points. Resumable: the mark is written last.
    pub(super) fn upgrade_rows(&mut self) -> Result<(), StoreError> {
        let Some(device) = self.reader.as_ref().map(|r| r.device) else { return Ok(()) };
        if self.views.get(DONE)?.is_some() {
            return Ok(());
        }
        self.remove_chats_rows(b"t", |k| k.len() == 33)?;
        self.remove_chats_rows(b"a", |k| k.len() == 74 && k[73] == 0 && k.get(33..65) == Some(&device.as_bytes()[..]))?;
        let mut batch = self.db.batch();
        let mut staged = BTreeMap::new();
        self.points_from_marks(&mut batch, &mut staged)?;
        batch.insert(&self.views, DONE, Vec::new());
        batch.commit()?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        self.ack_points.apply(staged);
        Ok(())
    }

    /// Removes the chats rows under `prefix` that `drop` picks, [`PER_BATCH`] at a time.
    fn remove_chats_rows(&self, prefix: &[u8], drop: impl Fn(&[u8]) -> bool) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        let mut n = 0;
        for item in self.chats.prefix(prefix) {
            let k = item.key()?;
            if drop(&k) {
                batch.remove(&self.chats, k.to_vec());
                n += 1;
            }
            if n == PER_BATCH {
                std::mem::replace(&mut batch, self.db.batch()).commit()?;
                n = 0;
            }
        }
        Ok(batch.commit()?)
    }
}
