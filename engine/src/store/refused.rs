//! Trust statements in entries refused for coming after their device's revocation point
//! (spec/devices.md, section 6.1). Which of a revoked device's later entries a node holds
//! depends on whether they reached it before the revocation; the certificates, revocations and
//! keys they carry must not, or two peers would disagree about a user's devices for good. So
//! a refused entry whose signature holds still counts in the trust view, and is kept here for
//! a rebuild — not in the log, which it does not extend.

use super::{Store, StoreError, keys};
use crate::log::{Entry, verify_many};
use crate::projection::{Projection, TrustView};

/// In the views keyspace; the prefix cannot begin a view name.
pub(super) const PREFIX: &[u8] = b"\xffrefused-trust\0";
/// Statements kept at most. A device without its user's key can only repeat valid ones
/// (kept once each) or publish keys and names (one kept per device), so only a thief holding
/// the user key itself could reach this.
const MAX_KEPT: usize = 4096;
/// Refused entries of one log examined per ingest (the first after the point, in seq order).
pub(super) const EXAMINED_PER_LOG: usize = 256;

/// Where a statement is kept: per kind and author for those where only the newest counts (a
/// name, an agreement key), else per kind, author and payload (the same certificate twice in
/// one log is kept once; in two logs twice, since the view records who carried it).
fn key_of(e: &Entry) -> Vec<u8> {
    let h = e.header();
    let newest_only = matches!(h.kind, crate::payload::KIND_PROFILE | crate::payload::KIND_AGREEMENT);
    let hash = blake3::hash(e.payload.as_deref().unwrap_or_default());
    let tail: &[u8] = if newest_only { &[] } else { hash.as_bytes() };
    [PREFIX, &h.kind.to_be_bytes()[..], &h.author.0[..], tail].concat()
}

impl Store {
    /// Folds the trust statements of `refused` (entries after their author's revocation point)
    /// into the trust view and keeps those that changed it, in one write.
    pub(super) fn keep_refused_statements(&mut self, refused: &[Entry]) -> Result<(), StoreError> {
        // Only kinds the view folds are worth a signature check (a revoked device's messages
        // are not); those are checked in one batch.
        let candidates: Vec<&Entry> = refused.iter().filter(|e| TrustView::folds(e.header().kind)).collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let bad = verify_many(&candidates, self.threads);
        let mut trust = self.trust.clone();
        let mut kept = Vec::new();
        for (i, e) in candidates.into_iter().enumerate() {
            if !bad.contains(&i) && trust.apply(e) {
                kept.push(e);
            }
        }
        if kept.is_empty() {
            return Ok(());
        }
        let mut room = MAX_KEPT.saturating_sub(self.views.prefix(PREFIX).count());
        let mut batch = self.db.batch();
        for e in kept {
            let k = key_of(e);
            let replaces = self.views.get(&k)?.is_some();
            if !replaces && room == 0 {
                tracing::warn!("too many trust statements of revoked devices: not keeping more");
                continue;
            }
            room -= usize::from(!replaces);
            let payload = e.payload.as_deref().unwrap_or_default();
            batch.insert(&self.views, k, keys::entry_value(&e.signed_bytes, payload));
        }
        batch.insert(&self.views, keys::view_state_key(TrustView::NAME), crate::codec::encode(&trust));
        self.sync.guard(batch.commit())?;
        self.trust = trust;
        self.sync.peers_changed();
        self.sync_now()
    }

    /// The statements kept by [`Store::keep_refused_statements`].
    pub fn refused_statements(&self) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for item in self.views.prefix(PREFIX) {
            out.push(self.decode_record(&item.value()?)?);
        }
        Ok(out)
    }
}
