//! Group commit and failure state. A store used on its own fsyncs every write. An owner that
//! groups writes (the engine's writer) turns `grouped` on, lets several writes commit their
//! batches, then calls [`Syncer::persist`] once, outside its lock, so readers never wait
//! behind an fsync. Until that fsync, entries this store signed are not offered to peers.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use fjall::PersistMode;

use super::{Store, StoreError};

#[derive(Debug, Default)]
pub(crate) struct SyncState {
    /// Writes are synced by the owner, not one by one.
    pub(crate) grouped: bool,
    /// Entries we signed that no fsync covers yet: `(generation, author, first seq)`.
    unsynced_own: Vec<(u64, [u8; 32], u64)>,
    /// Bumped each time a `Syncer` is taken: what was written before it is covered by it.
    generation: u64,
    /// Every generation below this one is durable. Raised by [`Syncer::persist`] on whatever
    /// thread fsyncs, without the store: the writer goes on with the next group meanwhile.
    durable: Arc<AtomicU64>,
    /// Logs whose head moved since the last `take_changed`.
    changed: BTreeSet<[u8; 32]>,
    /// The allow-list or invites changed since the last `take_peers_changed`.
    peers_changed: AtomicBool,
    /// Bumped with every change of who may connect or what is exchanged with whom (allow-list,
    /// invites, contacts, grants, trust view): caches of interest sets are valid for one value.
    interest_generation: AtomicU64,
    /// A write or fsync failed: fjall refuses every later write until the store is reopened.
    failed: Arc<AtomicBool>,
    /// What the first failure said.
    failure: Arc<std::sync::Mutex<Option<String>>>,
    /// Serialises fsyncs of one store, so that after one fails no other can report success
    /// for pages the kernel may have dropped (it reports a writeback error only once).
    persist_lock: Arc<std::sync::Mutex<()>>,
    /// An fsync failed (not only a write): what was written may sit in the page cache only.
    fsync_failed: Arc<AtomicBool>,
}

impl SyncState {
    pub(crate) fn guard<T>(&self, r: Result<T, fjall::Error>) -> Result<T, StoreError> {
        r.map_err(|e| {
            self.failed.store(true, Ordering::SeqCst);
            if let Ok(mut f) = self.failure.lock() {
                f.get_or_insert_with(|| e.to_string());
            }
            StoreError::Io(e)
        })
    }
    pub(crate) fn note_own(&mut self, author: [u8; 32], first_seq: u64) {
        let durable = self.durable.load(Ordering::SeqCst);
        self.unsynced_own.retain(|(g, _, _)| *g >= durable);
        self.unsynced_own.push((self.generation, author, first_seq));
    }
    /// Own entries no fsync covers yet: `(author, first seq)`.
    fn unsynced(&self) -> impl Iterator<Item = (&[u8; 32], u64)> {
        let durable = self.durable.load(Ordering::SeqCst);
        self.unsynced_own.iter().filter(move |(g, _, _)| *g >= durable).map(|(_, a, s)| (a, *s))
    }
    fn first_unsynced(&self, author: &[u8; 32]) -> Option<u64> {
        self.unsynced().filter(|(a, _)| *a == author).map(|(_, s)| s).min()
    }
    pub(crate) fn note_written(&mut self, authors: impl Iterator<Item = [u8; 32]>) {
        self.changed.extend(authors);
    }
    /// A store that syncs each write on its own: nothing it signed is waiting for an fsync.
    pub(crate) fn synced_alone(&mut self) {
        self.unsynced_own.retain(|(g, _, _)| *g == u64::MAX);
    }
    pub(crate) fn peers_changed(&self) {
        self.interest_generation.fetch_add(1, Ordering::SeqCst);
        self.peers_changed.store(true, Ordering::SeqCst);
    }
}

/// A handle that fsyncs the store's journal without borrowing the store.
#[derive(Clone)]
pub struct Syncer {
    db: fjall::Database,
    failed: Arc<AtomicBool>,
    fsync_failed: Arc<AtomicBool>,
    persist_lock: Arc<std::sync::Mutex<()>>,
    durable: Arc<AtomicU64>,
    /// Everything written up to this generation is covered.
    pub generation: u64,
}

impl Syncer {
    /// Makes every write committed so far durable. Once any fsync of this store failed, none
    /// succeeds again until the store is reopened.
    pub fn persist(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.persist_lock.lock().map_err(|_| StoreError::Corrupt("fsync lock poisoned".into()))?;
        if self.failed.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt("an earlier write or fsync of this store failed".into()));
        }
        self.db.persist(PersistMode::SyncAll).map_err(|e| {
            self.failed.store(true, Ordering::SeqCst);
            self.fsync_failed.store(true, Ordering::SeqCst);
            StoreError::Io(e)
        })?;
        // What this store signed before this generation may now leave.
        self.durable.fetch_max(self.generation.saturating_add(1), Ordering::SeqCst);
        Ok(())
    }
}

impl Store {
    /// Turns group commit on or off. With it on, writes are visible at once but durable only
    /// after [`Syncer::persist`].
    pub fn set_grouped(&mut self, grouped: bool) {
        self.sync.grouped = grouped;
    }

    /// A handle to fsync what was written so far, outside any lock on the store.
    pub fn syncer(&mut self) -> Syncer {
        let generation = self.sync.generation;
        self.sync.generation += 1;
        Syncer {
            db: self.db.clone(),
            failed: self.sync.failed.clone(),
            fsync_failed: self.sync.fsync_failed.clone(),
            persist_lock: self.sync.persist_lock.clone(),
            durable: self.sync.durable.clone(),
            generation,
        }
    }

    /// The own entries no fsync has covered, if an fsync failed: after reopening, they must
    /// stay unsendable (the page cache may hold what the disk lost) until the next start.
    pub fn unsynced_after_fsync_failure(&self) -> Vec<([u8; 32], u64)> {
        if !self.sync.fsync_failed.load(Ordering::SeqCst) {
            return Vec::new();
        }
        self.sync.unsynced().map(|(a, s)| (*a, s)).collect()
    }

    /// Keeps these own positions unsendable for the life of this open store.
    pub fn hold_unsendable(&mut self, positions: &[([u8; 32], u64)]) {
        for (a, s) in positions {
            self.sync.unsynced_own.push((u64::MAX, *a, *s));
        }
    }

    /// Fsyncs now unless writes are grouped (the owner's fsync then covers this write).
    pub(crate) fn sync_now(&self) -> Result<(), StoreError> {
        if self.sync.grouped {
            return Ok(());
        }
        self.sync.guard(self.db.persist(PersistMode::SyncAll))
    }

    /// Whether a write or fsync failed; fjall then refuses writes until the store is reopened.
    pub fn failed(&self) -> bool {
        self.sync.failed.load(Ordering::SeqCst)
    }

    /// Marks the store failed, as a write that hit a full disk does (the engine's tests).
    #[cfg(test)]
    pub(crate) fn fail_for_test(&self, why: &str) {
        self.sync.failed.store(true, Ordering::SeqCst);
        if let Ok(mut f) = self.sync.failure.lock() {
            f.get_or_insert_with(|| why.to_owned());
        }
    }

    /// What the first failed write or fsync said.
    pub fn failure(&self) -> Option<String> {
        self.sync.failure.lock().ok().and_then(|f| f.clone())
    }

    /// Logs whose heads moved since the last call, with their heads now.
    pub fn take_changed(&mut self) -> Vec<([u8; 32], u64)> {
        let changed = std::mem::take(&mut self.sync.changed);
        changed.into_iter().filter_map(|a| Some((a, self.head(&a)?.seq))).collect()
    }

    /// Changes with every write that can change interest sets (see `SyncState`).
    pub fn interest_generation(&self) -> u64 {
        self.sync.interest_generation.load(Ordering::SeqCst)
    }

    /// Whether the allow-list or the invites changed since the last call.
    pub fn take_peers_changed(&self) -> bool {
        self.sync.peers_changed.swap(false, Ordering::SeqCst)
    }

    /// The highest seq of `author`'s log that may be sent to peers: the head, except for our
    /// own logs written since the last fsync.
    pub fn sendable_seq(&self, author: &[u8; 32]) -> Option<u64> {
        let head = self.head(author)?.seq;
        match self.sync.first_unsynced(author) {
            Some(first) => first.checked_sub(1).filter(|s| *s > 0),
            None => Some(head),
        }
    }

    /// The reconciliation set of the `offered` logs as peers may see them (own writes not yet
    /// durable left out). `covers_held`: `offered` includes every log held, so the maintained
    /// set is shared as it is (the usual case; no copy, O(1)).
    pub fn sendable_head_set(
        &self,
        offered: &BTreeSet<[u8; 32]>,
        covers_held: bool,
    ) -> Result<Arc<crate::sync::HeadSet>, StoreError> {
        let own: BTreeSet<[u8; 32]> =
            self.sync.unsynced().map(|(a, _)| *a).filter(|a| covers_held || offered.contains(a)).collect();
        if covers_held && own.is_empty() {
            return Ok(self.head_set.clone());
        }
        let mut set = if covers_held {
            (*self.head_set).clone()
        } else {
            let item = |(a, h): (&[u8; 32], &super::Head)| crate::sync::HeadItem { author: *a, seq: h.seq, id: h.id };
            if offered.len() < self.head_cache.len() {
                crate::sync::HeadSet::from_items(
                    offered.iter().filter_map(|a| self.head_cache.get_key_value(a)).map(item),
                )
            } else {
                crate::sync::HeadSet::from_items(self.head_cache.iter().filter(|(a, _)| offered.contains(*a)).map(item))
            }
        };
        for author in own {
            let Some(first) = self.sync.first_unsynced(&author) else { continue };
            match first.checked_sub(1).filter(|s| *s > 0) {
                None => set.remove(&author),
                Some(seq) => {
                    let e = self
                        .get_at(&author, seq)?
                        .ok_or_else(|| StoreError::Corrupt(format!("log has a gap at seq {seq}")))?;
                    set.set(crate::sync::HeadItem { author, seq, id: e.id });
                }
            }
        }
        set.settle();
        Ok(Arc::new(set))
    }
}
