//! Opening a store: lock, format check, cache load, and view catch-up.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions};

use super::keys::{self, to_array32};
use super::{Head, STORE_FORMAT, Store, StoreError};
use crate::clock::{self, Hlc};
use crate::codec;
use crate::projection::{Projection, TrustView};

/// Upper bound of the write-ahead journal before fjall forces memtable flushes (fjall's least).
const MAX_JOURNAL: u64 = 64 * 1024 * 1024;

/// A keyspace's memtable is written to a table past this (fjall's default is 64 MiB). Bounds what
/// an open after a kill inserts again from the journal: 1M entries ingested, then killed, reopened
/// in about 0.25 s instead of 0.6–0.9 s. Fixed when a keyspace is created.
const MAX_MEMTABLE: u64 = 16 * 1024 * 1024;

impl Store {
    /// Opens (creating if needed) the store in directory `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path)?;
        let open_err = |reason: String| StoreError::Open { path: path.clone(), reason };
        check_keyspaces(&path).map_err(open_err)?;
        // fjall reports most damage as errors but asserts on some; either way the caller gets an
        // error naming the store, not a crash.
        let opened = catch_unwind(AssertUnwindSafe(|| -> Result<_, fjall::Error> {
            // A smaller journal bound than fjall's 512 MiB default keeps crash recovery (journal
            // replay on open) short: at most 64 MiB to replay.
            // fjall's flushes and compactions run at a lower priority: at full priority a
            // compaction after a large sync took most of both cores and kept the writer, holding
            // the node, off the CPU for up to 50 ms (sync bench, flood live push).
            let db = Database::builder(&path)
                .max_journaling_size(MAX_JOURNAL)
                .worker_start(std::sync::Arc::new(crate::par::lower_priority))
                .open()?;
            let ks =
                |name: &str| db.keyspace(name, || KeyspaceCreateOptions::default().max_memtable_size(MAX_MEMTABLE));
            let all = [
                ks("entries")?,
                ks("ids")?,
                ks("heads")?,
                ks("lognums")?,
                ks("forks")?,
                ks("views")?,
                ks("meta")?,
                ks("peers")?,
                ks("chats")?,
                ks("invites")?,
                ks("grants")?,
            ];
            Ok((db, all))
        }));
        let (db, [entries, ids, heads, lognums, forks, views, meta, peers, chats, invites, grants]) = match opened {
            Ok(Ok(v)) => v,
            Ok(Err(fjall::Error::Locked)) => return Err(StoreError::Locked(path)),
            Ok(Err(e)) => match super::error::damage(&e) {
                Some(what) if let fjall::Error::KeyspaceRecovery(dir, _) = &e => {
                    return Err(StoreError::DamagedKeyspace { path, dir: dir.clone(), what });
                }
                Some(what) => {
                    return Err(open_err(format!(
                        "{} ({what}); `libra store repair` rebuilds it from its logs and keeps the damaged one beside it",
                        super::error::DAMAGE
                    )));
                }
                None => return Err(open_err(e.to_string())),
            },
            Err(_) => {
                return Err(open_err("the storage engine failed while recovering".into()));
            }
        };
        check_format(&path, &db, &meta)?;
        mark_complete(&path)?;

        let mut head_cache = BTreeMap::new();
        let mut next_lognum = 0u32;
        let mut latest = 0u64;
        for item in heads.iter() {
            let (k, v) = item.into_inner()?;
            let head: Head = codec::decode(&v).map_err(|e| StoreError::Corrupt(format!("head record: {e}")))?;
            next_lognum = next_lognum.max(head.lognum.saturating_add(1));
            latest = latest.max(head.timestamp);
            head_cache.insert(to_array32(&k)?, head);
        }
        let mut forked = BTreeSet::new();
        for item in forks.iter() {
            forked.insert(to_array32(&item.key()?)?);
        }
        let mut clock = Hlc::default();
        clock.observe(latest, clock::wall_ms());

        let trust = match views.get(keys::view_state_key(TrustView::NAME))? {
            Some(v) => codec::decode(&v).map_err(|e| StoreError::Corrupt(format!("trust view: {e}")))?,
            None => TrustView::default(),
        };
        let threads = crate::par::cores();
        let head_set = crate::sync::HeadSet::from_items(
            head_cache.iter().map(|(a, h): (&[u8; 32], &Head)| crate::sync::HeadItem {
                author: *a,
                seq: h.seq,
                id: h.id,
            }),
        );
        // The order of head moves keeps its epoch across restarts (section 8.9); a store from
        // before it was kept gets one now.
        let epoch = match meta.get(keys::MOVES_EPOCH_KEY)? {
            Some(v) => keys::to_u64(&v)?,
            None => {
                let e = super::moves::new_epoch();
                meta.insert(keys::MOVES_EPOCH_KEY, e.to_be_bytes())?;
                e
            }
        };
        let moves = super::moves::Moves::restore(epoch, head_cache.iter().map(|(a, h)| (*a, h.moved)));
        let ack_points = super::ack_points::AckPoints::load(&views)?;
        let early_notes = super::read_marks::any_read_early(&views)?;
        let mut store = Store {
            path,
            db,
            entries,
            ids,
            heads,
            lognums,
            forks,
            views,
            meta,
            peers,
            chats,
            invites,
            grants,
            reader: None,
            new_messages: Vec::new(),
            ack_points,
            early_notes: std::sync::atomic::AtomicBool::new(early_notes),
            head_cache,
            head_set: std::sync::Arc::new(head_set),
            moves,
            forked,
            next_lognum,
            clock,
            trust,
            threads,
            known_plaintext: BTreeMap::new(),
            opened: Default::default(),
            sync: Default::default(),
        };
        store.catch_up_views()?;
        Ok(store)
    }

    /// Folds into the views whatever entries they do not reflect yet (a view added by an
    /// upgrade starts empty and catches up here).
    fn catch_up_views(&mut self) -> Result<(), StoreError> {
        let positions = self.view_positions(TrustView::NAME)?;
        let behind: Vec<([u8; 32], u64, u64)> = self
            .head_cache
            .iter()
            .filter_map(|(a, h)| {
                let at = positions.get(a).copied().unwrap_or(0);
                (at < h.seq).then_some((*a, at, h.seq))
            })
            .collect();
        if behind.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        // A view folded from nothing (new, or a new version of it) also takes the trust
        // statements of refused entries (spec/devices.md, section 6.1).
        if positions.is_empty() {
            for entry in self.refused_statements()? {
                self.trust.apply(&entry);
            }
        }
        for (author, at, head) in behind {
            for entry in self.read_log(&author, at + 1, usize::MAX)? {
                self.trust.apply(&entry);
            }
            batch.insert(&self.views, keys::view_pos_key(TrustView::NAME, &author), head.to_be_bytes().to_vec());
        }
        batch.insert(&self.views, keys::view_state_key(TrustView::NAME), codec::encode(&self.trust));
        batch.commit()?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }

    pub(super) fn view_positions(&self, name: &str) -> Result<BTreeMap<[u8; 32], u64>, StoreError> {
        let prefix = keys::view_pos_prefix(name);
        let mut out = BTreeMap::new();
        for item in self.views.prefix(&prefix) {
            let (k, v) = item.into_inner()?;
            out.insert(to_array32(&k[prefix.len()..])?, keys::to_u64(&v)?);
        }
        Ok(out)
    }
}

/// Written once every keyspace of the store exists (after its first complete open).
const COMPLETE_MARKER: &str = "libra-complete";

/// Opening never deletes data (spec/log.md, section 12.5): fjall removes a keyspace directory
/// that lacks its `current` file, taking it for a creation cut short by a crash. Once the store
/// was complete, no keyspace is ever created again, so such a directory is damage: the store is
/// not opened, and nothing is removed.
fn check_keyspaces(path: &Path) -> Result<(), String> {
    if !path.join(COMPLETE_MARKER).exists() {
        return Ok(());
    }
    let Ok(dirs) = std::fs::read_dir(path.join("keyspaces")) else {
        return Err("its keyspaces directory is missing".into());
    };
    for dir in dirs.flatten() {
        if dir.path().is_dir() && !dir.path().join("current").exists() {
            return Err(format!(
                "keyspace directory {} lost its `current` file. The store was not opened, so nothing in it was removed: `libra store repair` rebuilds it from its logs and keeps the old one; or keep a copy of the data directory and restore it (`libra init --restore` with a backup, or link this device again)",
                dir.path().display()
            ));
        }
    }
    Ok(())
}

fn mark_complete(path: &Path) -> Result<(), StoreError> {
    let marker = path.join(COMPLETE_MARKER);
    if !marker.exists() {
        std::fs::File::create(&marker)?.sync_all()?;
        #[cfg(unix)]
        std::fs::File::open(path)?.sync_all()?;
    }
    Ok(())
}

fn check_format(path: &Path, db: &Database, meta: &Keyspace) -> Result<(), StoreError> {
    match meta.get("format")? {
        Some(v) if &*v == STORE_FORMAT.as_bytes() => Ok(()),
        Some(v) => Err(StoreError::WrongFormat {
            path: path.to_path_buf(),
            found: String::from_utf8_lossy(&v).into_owned(),
            expected: STORE_FORMAT,
        }),
        None => {
            meta.insert("format", STORE_FORMAT)?;
            db.persist(fjall::PersistMode::SyncAll)?;
            // Flush it to a table at once: a keyspace whose only data sits in a memtable holds
            // back the eviction of every journal written after it.
            meta.rotate_memtable_and_wait()?;
            Ok(())
        }
    }
}
