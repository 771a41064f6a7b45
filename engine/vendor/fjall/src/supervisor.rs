// Copyright (c) 2024-present, fjall-rs
// This source code is licensed under both the Apache 2.0 and MIT License
// (found in the LICENSE-* files in the repository)

use lsm_tree::SequenceNumberCounter;

use crate::{
    db::Keyspaces,
    flush::manager::FlushManager,
    journal::{manager::JournalManager, Journal},
    snapshot_tracker::SnapshotTracker,
    write_buffer_manager::WriteBufferManager,
};
use std::sync::{Arc, Mutex, RwLock};

pub struct SupervisorInner {
    pub db_config: crate::Config,

    /// Dictionary of all keyspaces
    #[doc(hidden)]
    pub keyspaces: Arc<RwLock<Keyspaces>>,

    pub(crate) write_buffer_size: WriteBufferManager,
    pub(crate) flush_manager: FlushManager,

    pub seqno: SequenceNumberCounter,

    pub snapshot_tracker: SnapshotTracker,

    pub(crate) journal: Arc<Journal>,

    /// Tracks journal size and garbage collects sealed journals when possible
    pub(crate) journal_manager: Arc<RwLock<JournalManager>>,

    pub(crate) backpressure_lock: Mutex<()>,

    /// LIBRA-PATCH: every memtable this database rotated out, held until only this list holds
    /// it. lsm-tree drops old versions (and with them, flushed memtables) under a keyspace's
    /// version lock, which every write to that keyspace needs; freeing a 16 MiB skiplist there
    /// stalled writes for tens of milliseconds. Held here, the last reference is dropped by
    /// [`Supervisor::reap_memtables`] with no lock held.
    pub(crate) retired_memtables: Mutex<Vec<Arc<lsm_tree::Memtable>>>,
}

#[derive(Clone)]
pub struct Supervisor(Arc<SupervisorInner>);

impl std::ops::Deref for Supervisor {
    type Target = SupervisorInner;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Supervisor {
    pub fn new(inner: SupervisorInner) -> Self {
        Self(Arc::new(inner))
    }

    /// LIBRA-PATCH: keeps a rotated-out memtable alive until [`Supervisor::reap_memtables`].
    pub(crate) fn retire_memtable(&self, memtable: Arc<lsm_tree::Memtable>) {
        #[expect(clippy::expect_used)]
        self.retired_memtables.lock().expect("lock is poisoned").push(memtable);
    }

    /// LIBRA-PATCH: frees the retired memtables nothing else holds any more (no version, no
    /// snapshot, no flush), here, outside every lock. Call with no lock held.
    pub(crate) fn reap_memtables(&self) {
        let dead: Vec<_> = {
            #[expect(clippy::expect_used)]
            let mut retired = self.retired_memtables.lock().expect("lock is poisoned");
            let (dead, alive) = std::mem::take(&mut *retired)
                .into_iter()
                .partition(|m| Arc::strong_count(m) == 1);
            *retired = alive;
            dead
        };
        drop(dead);
    }

    pub fn build_seqno_map(
        &self,
        keyspaces: &Keyspaces,
    ) -> Vec<crate::journal::manager::EvictionWatermark> {
        use crate::AbstractTree;

        let mut seqnos = Vec::with_capacity(keyspaces.len());

        for keyspace in keyspaces.values() {
            if let Some(lsn) = keyspace.tree.get_highest_memtable_seqno() {
                seqnos.push(crate::journal::manager::EvictionWatermark {
                    lsn,
                    keyspace: keyspace.clone(),
                });
            }
        }

        seqnos
    }
}
