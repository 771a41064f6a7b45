//! The on-disk store: logs, their heads, the id index, fork proofs and persisted views, in fjall.
//!
//! **Invariant:** only validated entries are written, and every write — entries, index, heads,
//! view state and view positions — goes through one atomic write batch followed by a journal
//! fsync (`PersistMode::SyncAll`). An append or ingest that returned `Ok` is durable.

mod ack_points;
pub mod blobs;
mod chats;
mod contact_state;
mod devices;
pub use devices::KeptKey;
mod durability;
mod error;
mod files;
mod invites;
mod keys;
mod known_heads;
mod moves;
mod open;
mod peers;
mod read;
mod read_marks;
mod refused;
mod repair;
mod rows_upgrade;
mod verify;
mod waiting;
mod write;

pub use chats::{ChatKind, ChatSummary, Delivery, MessageView, NewMessage};
pub use contact_state::ContactState;
pub use durability::Syncer;
pub use error::StoreError;
pub use files::{DEFAULT_AUTO_DOWNLOAD, FileEntry};
pub use invites::{InviteRecord, MAX_INVITE_USES, invite_id};
pub use peers::{AddressSource, MAX_ADDRESSES, PeerAddress, PeerRecord};
pub use repair::RepairReport;
pub use verify::Problem;
pub use write::{IngestReport, Rejection, Signed};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use fjall::{Database, Keyspace};
use serde::{Deserialize, Serialize};

use crate::clock::Hlc;
use crate::log::{ChainPoint, EntryId};
use crate::projection::TrustView;
use crate::sync::HeadSet;
pub use moves::ChangePoint;

/// The format string written at creation; a store with another one is refused.
pub const STORE_FORMAT: &str = "libra-store-v1";

/// Where one log stands in this store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Local short number of the log, used by the id index.
    pub lognum: u32,
    pub seq: u64,
    pub id: EntryId,
    pub timestamp: u64,
    /// The store's count of head moves when this head was written: the logs in order of their
    /// last move, so sync points outlive a restart (spec/sync.md, section 8.9). 0 in heads
    /// written before it was kept (older than every point).
    #[serde(default)]
    pub moved: u64,
}

impl Head {
    pub fn point(&self) -> ChainPoint {
        ChainPoint { seq: self.seq, id: self.id, timestamp: self.timestamp }
    }
}

/// An open store. One process at a time may hold it (the directory is locked).
pub struct Store {
    path: PathBuf,
    db: Database,
    entries: Keyspace,
    ids: Keyspace,
    heads: Keyspace,
    lognums: Keyspace,
    forks: Keyspace,
    views: Keyspace,
    meta: Keyspace,
    peers: Keyspace,
    /// Rows of the chats projection (messaging::view), written only once a reader is set.
    chats: Keyspace,
    /// Invite tokens we handed out: token(16) → expiry (ms, BE).
    invites: Keyspace,
    /// Grants other identities gave us to forward their logs: issuer(32) ‖ tag(16) → empty.
    grants: Keyspace,
    reader: Option<crate::messaging::Reader>,
    /// Messages from other users stored since the last `take_new_messages`.
    new_messages: Vec<chats::NewMessage>,
    /// Per log, where this device may still owe acknowledgements (as stored).
    ack_points: ack_points::AckPoints,
    /// Whether notes of messages read before they arrived may be stored (rarely).
    early_notes: std::sync::atomic::AtomicBool,
    head_cache: BTreeMap<[u8; 32], Head>,
    /// Every held log's head, settled after each commit; sessions share it (copy on write).
    head_set: std::sync::Arc<HeadSet>,
    /// The order in which heads moved since this store was opened (sync points).
    moves: moves::Moves,
    forked: BTreeSet<[u8; 32]>,
    next_lognum: u32,
    clock: Hlc,
    trust: TrustView,
    threads: usize,
    /// Plaintexts of payloads this device sealed, by payload hash, for the next commit.
    known_plaintext: BTreeMap<[u8; 32], (Vec<u8>, [u8; 32])>,
    /// Content keys looked for before the next ingest, with the public keys of the secrets
    /// used: taken only while the reader holds exactly those.
    opened: (Vec<[u8; 32]>, crate::messaging::view::ContentKeys),
    /// Group commit, durability and failure state (see `durability`).
    pub(crate) sync: durability::SyncState,
}

impl Store {
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The trust view as of the last write.
    pub fn trust(&self) -> &TrustView {
        &self.trust
    }

    /// Every log's head, ordered by author.
    pub fn heads(&self) -> impl Iterator<Item = ([u8; 32], Head)> + '_ {
        self.head_cache.iter().map(|(a, h)| (*a, *h))
    }

    /// The reconciliation set of every held log, ready for a session (shared, not copied).
    pub fn head_set(&self) -> std::sync::Arc<HeadSet> {
        self.head_set.clone()
    }

    /// Where the order of head moves stands now (read with the head set, under one lock).
    pub fn change_point(&self) -> ChangePoint {
        self.moves.point()
    }

    /// The logs whose head moved after `point`, if it is a point of this store instance and
    /// they are at most `limit`.
    pub fn moved_since(&self, point: ChangePoint, limit: usize) -> Option<Vec<[u8; 32]>> {
        self.moves.since(point, limit)
    }

    /// How many logs are held (logs are never removed: a new log raises it).
    pub fn log_count(&self) -> usize {
        self.head_cache.len()
    }

    pub fn head(&self, author: &[u8; 32]) -> Option<Head> {
        self.head_cache.get(author).copied()
    }

    pub fn is_forked(&self, author: &[u8; 32]) -> bool {
        self.forked.contains(author)
    }

    /// Total number of entries held (the sum of head seqs).
    pub fn entry_count(&self) -> u64 {
        self.head_cache.values().map(|h| h.seq).sum()
    }

    /// Bytes the store occupies on disk: `(tables, journal)`. Tables hold the data; the journal
    /// is the write-ahead log, bounded by fjall's journaling limit and emptied as memtables flush.
    pub fn disk_space(&self) -> Result<(u64, u64), StoreError> {
        let tables = self.keyspaces().iter().map(|k| k.disk_space()).sum();
        Ok((tables, self.db.journal_disk_space()?))
    }

    fn keyspaces(&self) -> [&Keyspace; 9] {
        [
            &self.entries,
            &self.ids,
            &self.heads,
            &self.lognums,
            &self.forks,
            &self.views,
            &self.meta,
            &self.peers,
            &self.chats,
        ]
    }

    /// Writes every memtable to tables so the next open replays no journal. Call before a clean
    /// shutdown; skipping it loses nothing (the journal holds the data), it only slows the next
    /// open.
    pub fn flush(&self) -> Result<(), StoreError> {
        // Seal the journal before the memtables, so that once they are in tables the whole
        // sealed journal can go: fjall replays (decodes) every item of the journals it finds on
        // open, even the items already in tables, and only drops a journal past 64 MB. Sealing even a
        // small one keeps one close path, which every test that closes a store then exercises.
        self.db.seal_journal(1)?;
        // Seal every memtable so their flushes run together, then wait — with a bound: a flush
        // that cannot finish (the directory is gone, the disk is full) must not hang the
        // caller; the journal still holds the data.
        for ks in self.keyspaces() {
            ks.rotate_memtable()?;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.keyspaces().iter().any(|k| k.sealed_memtable_count() > 0) {
            if std::time::Instant::now() > deadline {
                return Err(StoreError::Corrupt("memtables did not flush within 10 s".into()));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Every sealed journal whose items are all in tables is deleted now.
        self.db.evict_flushed_journals()?;
        Ok(())
    }

    /// Flushes, then compacts every keyspace fully, reclaiming space from overwritten heads and
    /// view state.
    pub fn compact(&self) -> Result<(), StoreError> {
        self.flush()?;
        for ks in self.keyspaces() {
            ks.major_compact()?;
        }
        Ok(())
    }
}
