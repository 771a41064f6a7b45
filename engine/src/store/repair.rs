//! `libra store repair` (spec/log.md, section 12.6): a damaged store is rebuilt from what can
//! be read of it, and nothing of it is deleted. Keyspace directories that lost their `current`
//! file are moved aside (opening would otherwise remove them); every log entry still readable is
//! ingested into a fresh store, validated as if from a peer, so heads, indexes and views are
//! made again from the logs; local state that is in no log (peer records, invites, grants,
//! settings, kept content keys) is copied over where it survived. The old store is kept whole
//! beside the new one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Store, StoreError, keys};
use crate::log::Entry;
use crate::projection::Projection;

/// Entries ingested per call while rebuilding.
const CHUNK: usize = 5_000;

/// What a repair did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Where the old store (and any damaged keyspace directory) now is.
    pub kept_at: PathBuf,
    /// Keyspace directories that had lost their `current` file, and where they went.
    pub set_aside: Vec<(PathBuf, PathBuf)>,
    /// Keyspaces whose contents were lost with such a directory.
    pub lost: Vec<&'static str>,
    pub logs: usize,
    pub entries: usize,
    /// Entries that did not validate when ingested again, with the reason (first per log).
    pub refused: Vec<([u8; 32], u64, String)>,
}

/// Every keyspace of the store, by name.
const NAMES: [&str; 11] =
    ["entries", "ids", "heads", "lognums", "forks", "views", "meta", "peers", "chats", "invites", "grants"];

/// Keyspaces whose contents are local state, in no log: copied over as they are.
const LOCAL: [&str; 4] = ["meta", "peers", "invites", "grants"];

impl Store {
    fn named_keyspaces(&self) -> [(&'static str, &fjall::Keyspace); 11] {
        [
            ("entries", &self.entries),
            ("ids", &self.ids),
            ("heads", &self.heads),
            ("lognums", &self.lognums),
            ("forks", &self.forks),
            ("views", &self.views),
            ("meta", &self.meta),
            ("peers", &self.peers),
            ("chats", &self.chats),
            ("invites", &self.invites),
            ("grants", &self.grants),
        ]
    }

    /// Rebuilds the store in `path` (closed: nobody may hold it) into a new one in its place;
    /// the old one is kept in `<path>.damaged-<now_ms>`. With `own`, the rebuilt store must hold
    /// that log (this device's own: without it the device would sign at published positions
    /// again); if it does not, or anything fails, the old store is left where it was (the
    /// damaged directories moved back) and the error says why.
    pub fn repair(path: &Path, now_ms: u64, own: Option<[u8; 32]>) -> Result<RepairReport, StoreError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "store".into());
        let fresh = path.with_file_name(format!("{name}.repairing"));
        let aside = path.with_file_name(format!("{name}.damaged-{now_ms}"));
        let mut set_aside = Vec::new();
        let r = Self::rebuild_into(path, &fresh, &aside.join(&name), own, &mut set_aside);
        if r.is_err() {
            for (from, to) in set_aside.iter().rev() {
                let _ = std::fs::rename(to, from);
            }
            // The directory made for the old store, if nothing is left in it.
            let _ = std::fs::remove_dir(&aside);
            if fresh.exists() {
                // Only rebuilt data, all of it still in the old store.
                let _ = std::fs::remove_dir_all(&fresh);
            }
        }
        r
    }

    /// The repair itself; `kept_at` is where the old store goes, beside the directories set
    /// aside.
    fn rebuild_into(
        path: &Path,
        fresh: &Path,
        kept_at: &Path,
        own: Option<[u8; 32]>,
        set_aside: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<RepairReport, StoreError> {
        let aside = kept_at.parent().unwrap_or(kept_at);
        let mut report = RepairReport { kept_at: kept_at.to_path_buf(), ..RepairReport::default() };
        // Nobody may hold the store (a running node): its lock file is taken while we move.
        let lock = std::fs::OpenOptions::new().read(true).write(true).open(path.join("lock"));
        if let Ok(f) = &lock
            && f.try_lock().is_err()
        {
            return Err(StoreError::Locked(path.to_path_buf()));
        }
        // Set aside before opening: fjall removes a keyspace directory without `current`.
        let ks_dir = path.join("keyspaces");
        std::fs::create_dir_all(aside)?;
        let mut known_ids = BTreeSet::new();
        if let Ok(dirs) = std::fs::read_dir(&ks_dir) {
            for d in dirs.flatten() {
                let p = d.path();
                let Some(id) = p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u64>().ok()) else {
                    continue;
                };
                known_ids.insert(id);
                if p.is_dir() && !p.join("current").exists() {
                    let to = aside.join(format!("keyspace-{id}"));
                    std::fs::rename(&p, &to)?;
                    set_aside.push((p, to));
                }
            }
        }
        drop(lock);
        // Damage that keeps a keyspace from opening (a table's index or metadata no longer
        // matches its checksum) is set aside the same way, one keyspace at a time; fjall then
        // makes it anew and it is rebuilt, or copied from what survived, below. Not fjall's own
        // keyspace of names (id 0): without it no keyspace is found.
        let old = loop {
            let e = match Store::open(path) {
                Err(e) if e.is_damage() => e,
                r => break r?,
            };
            // fjall names the keyspace it could not recover; damage found after fjall opened
            // (reading heads or views) is found by reading every keyspace through.
            let id = match &e {
                StoreError::DamagedKeyspace { dir, .. } => {
                    dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u64>().ok())
                }
                _ => first_damaged_keyspace(path).ok().flatten(),
            };
            let Some(id) = id.filter(|id| *id != 0 && ks_dir.join(id.to_string()).is_dir()) else {
                return Err(StoreError::Corrupt(format!(
                    "{e}. The damage is in fjall's own records (its keyspace of names, or its journal), which a repair cannot rebuild; the store was left as it was in {} (restore a backup, or link this device again)",
                    path.display()
                )));
            };
            if set_aside.len() >= 16 {
                return Err(e);
            }
            let (from, to) = (ks_dir.join(id.to_string()), aside.join(format!("keyspace-{id}")));
            tracing::warn!(keyspace = %id, error = %e, "setting a damaged keyspace aside");
            std::fs::rename(&from, &to)?;
            set_aside.push((from, to));
        };
        // A keyspace fjall had to make anew (an id it never had) lost its contents.
        let max_id = known_ids.iter().copied().max().unwrap_or(0);
        // fjall may also give a set-aside keyspace's id to its new directory (when it was the
        // highest): a keyspace whose directory was set aside lost its contents too.
        let aside_ids: BTreeSet<u64> =
            set_aside.iter().filter_map(|(from, _)| from.file_name()?.to_str()?.parse().ok()).collect();
        report.lost = old
            .named_keyspaces()
            .iter()
            .filter(|(_, k)| k.id() > max_id || aside_ids.contains(&k.id()))
            .map(|(n, _)| *n)
            .collect();

        if fresh.exists() {
            // Our own unfinished repair: only rebuilt data, all of it still in the old store.
            std::fs::remove_dir_all(fresh)?;
        }
        let mut new = Store::open(fresh)?;
        for name in old.copy_local_state(&new)? {
            if !report.lost.contains(&name) {
                report.lost.push(name);
            }
        }
        // The trust statements of refused entries count in the trust view (spec/devices.md,
        // section 6.1): folded first, saved with the first ingest.
        for e in new.refused_statements()? {
            new.trust.apply(&e);
        }
        // Every log still readable, user logs first (a device log names its user), each in
        // order, validated as a peer's entries are.
        let users: BTreeSet<[u8; 32]> = old.trust.users.keys().map(|u| *u.as_bytes()).collect();
        let mut authors = match old.stored_authors() {
            Ok(a) => a,
            // The entries keyspace is damaged where the scan crossed it: the logs the heads
            // name, each read as far as it can be.
            Err(e) if e.is_damage() => old.heads().map(|(a, _)| a).collect(),
            Err(e) => return Err(e),
        };
        authors.sort_by_key(|a| !users.contains(a));
        report.logs = authors.len();
        for author in &authors {
            let (mut from, mut damaged) = (1, false);
            while !damaged {
                let chunk: Vec<Entry> = match old.read_log(author, from, CHUNK) {
                    Ok(c) => c,
                    // A damaged block: take the log entry by entry up to it; the rest of the
                    // log cannot be taken (it would not chain), a peer can send it again.
                    Err(e) if e.is_damage() => {
                        let mut readable = Vec::new();
                        let mut seq = from;
                        while let Ok(mut one) = old.read_log(author, seq, 1) {
                            let Some(e) = one.pop() else { break };
                            readable.push(e);
                            seq += 1;
                        }
                        report.refused.push((*author, seq, format!("unreadable: {e}")));
                        damaged = true;
                        readable
                    }
                    Err(e) => return Err(e),
                };
                let Some(last) = chunk.last() else { break };
                from = last.header().seq + 1;
                report.entries += chunk.len();
                // No clock (0): what the store held is rebuilt whole, whatever its stamps.
                let r = new.ingest(chunk, 0)?;
                if let Some(x) = r.rejected.first() {
                    report.refused.push((*author, x.seq, x.error.to_string()));
                    break;
                }
            }
        }
        if let Some(own) = own
            && new.head(&own).is_none()
        {
            return Err(StoreError::Corrupt(format!(
                "no entry of this device's own log could be read, so a repaired store would let it sign at positions it already used; the store was left as it was in {} (restore a backup, or link this device again)",
                path.display()
            )));
        }
        let problems = new.verify()?;
        if let Some(p) = problems.first() {
            return Err(StoreError::Corrupt(format!(
                "the rebuilt store does not verify ({}); the old store is unchanged in {}",
                p.what,
                path.display()
            )));
        }
        drop(new);
        drop(old);
        std::fs::rename(path, &report.kept_at)?;
        if let Err(e) = std::fs::rename(fresh, path) {
            // Put the old one back rather than leave no store where the node looks for it.
            let _ = std::fs::rename(&report.kept_at, path);
            return Err(e.into());
        }
        report.set_aside = std::mem::take(set_aside);
        if let Some(parent) = path.parent() {
            #[cfg(unix)]
            std::fs::File::open(parent)?.sync_all()?;
            let _ = parent;
        }
        Ok(report)
    }

    /// Every author with an entry in the entries keyspace (the heads may be what was lost).
    fn stored_authors(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        let mut out = Vec::new();
        let mut start: Vec<u8> = Vec::new();
        while let Some(item) = self.entries.range(start.clone()..).next() {
            let k = item.key()?;
            let author = keys::to_array32(k.get(..32).unwrap_or(&[]))?;
            out.push(author);
            // Just past the author's greatest possible key (author ‖ seq u64::MAX).
            start = [&keys::entry_key(&author, u64::MAX)[..], &[0]].concat();
        }
        Ok(out)
    }

    /// Copies what no log holds: the local keyspaces, the content keys kept for entries
    /// sealed to retired keys, and the trust statements of refused entries. A damaged block
    /// ends the copy of its keyspace there; the names of those partly lost are returned.
    fn copy_local_state(&self, to: &Store) -> Result<Vec<&'static str>, StoreError> {
        let mut partly = Vec::new();
        // Copies `items` into `target` up to the first damaged block; false if there was one.
        let copy = |items: &mut dyn Iterator<Item = fjall::Guard>, target: &fjall::Keyspace| {
            let mut batch = to.db.batch();
            let mut whole = true;
            for item in items {
                match item.into_inner() {
                    Ok((k, v)) => batch.insert(target, k, v),
                    Err(e) if super::error::damage(&e).is_some() => {
                        whole = false;
                        break;
                    }
                    Err(e) => return Err(StoreError::from(e)),
                }
            }
            batch.commit()?;
            Ok(whole)
        };
        for ((name, from), (_, target)) in self.named_keyspaces().into_iter().zip(to.named_keyspaces()) {
            if LOCAL.contains(&name) && !copy(&mut from.iter(), target)? {
                partly.push(name);
            }
        }
        for prefix in [keys::CONTENT_KEY_PREFIX, super::refused::PREFIX] {
            if !copy(&mut self.views.prefix(prefix), &to.views)? && !partly.contains(&"views") {
                partly.push("views");
            }
        }
        // Keys kept in `ids` rows: the fresh store's rows are made again by ingest, without
        // them, so they go where keys learned later go.
        if !self.copy_keys_kept_in_ids(to)? {
            partly.push("ids");
        }
        to.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(partly)
    }

    /// Copies the content keys kept in `ids` rows into `to`'s `views` up to the first damaged
    /// block; false if there was one.
    fn copy_keys_kept_in_ids(&self, to: &Store) -> Result<bool, StoreError> {
        let mut batch = to.db.batch();
        let mut whole = true;
        for item in self.ids.iter() {
            let (k, v) = match item.into_inner() {
                Ok(kv) => kv,
                Err(e) if super::error::damage(&e).is_some() => {
                    whole = false;
                    break;
                }
                Err(e) => return Err(StoreError::from(e)),
            };
            // A row that does not parse is damage too: its key is lost, the rest is copied.
            let Ok(Some((rest, key))) = keys::parse_id_value(&v) else {
                whole &= v.is_empty();
                continue;
            };
            let Ok(id) = keys::full_id(&k, &rest) else {
                whole = false;
                continue;
            };
            batch.insert(&to.views, keys::content_key_key(&id), key.to_vec());
        }
        batch.commit()?;
        Ok(whole)
    }
}

/// The id of the first of the store's keyspaces in which an item does not read back (a block
/// that fails its checksum or does not decode), read through with fjall alone.
fn first_damaged_keyspace(path: &Path) -> Result<Option<u64>, StoreError> {
    let db = fjall::Database::builder(path).open()?;
    for name in NAMES {
        let ks = db.keyspace(name, fjall::KeyspaceCreateOptions::default)?;
        for item in ks.iter() {
            if let Err(e) = item.into_inner() {
                if super::error::damage(&e).is_some() {
                    return Ok(Some(ks.id()));
                }
                return Err(e.into());
            }
        }
    }
    Ok(None)
}
