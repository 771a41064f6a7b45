//! Read marks: per chat, the newest message that is ours or that one of our devices marked read.
//! The chat list counts a chat's unread messages as the rows after its mark: one short range,
//! where it used to ask "read by us?" of each message, a random read each at cold start-up.
//!
//! Local bookkeeping in the views keyspace (like the pending acks), not part of the projection
//! the audit compares: written in the batch that stores the rows it follows, and rebuilt from
//! the rows when absent (a store from before marks, a repaired one). A device's read acks
//! always follow its hello in its log, so the device is ours by the time they are staged: a
//! change of our devices needs no rebuild.
//!
//! What the chat list shows is exact as long as the mark is either the true one (the newest
//! message ours or read) or older than it with more than [`UNREAD_CAP`] messages after the true
//! one: both count "999+". A rebuild walks back at most that far, which keeps it cheap.

use std::collections::{HashMap, HashSet};

use super::chats::{UNREAD_CAP, arr};
use super::{Store, StoreError};
use crate::codec::{self, Bytes};
use crate::identity::{DeviceId, UserId};
use crate::log::EntryId;
use crate::messaging::view::{self, MsgRow};
use crate::messaging::{ChatId, Reader};

/// + chat(16) → ts(8) id(32): the message the mark stands on.
const MARK: &[u8] = b"read-mark\0";
/// + id(32): one of our devices read this message before it arrived here.
const EARLY: &[u8] = b"read-early\0";
/// Present once every chat has its mark (absent in stores from before marks, and after a repair).
const BUILT: &[u8] = b"read-marks\0v1";

fn mark_key(chat: &[u8; 16]) -> Vec<u8> {
    [MARK, chat].concat()
}

fn early_key(id: &[u8]) -> Vec<u8> {
    [EARLY, id].concat()
}

/// Where a message held lives: its chat and timestamp (what its `m` row key starts with).
pub(super) type Place = ([u8; 16], [u8; 8]);
/// Finds where a held message lives, for a read ack of a message staged in an earlier batch.
pub(super) type Locate<'a> = &'a dyn Fn(&[u8; 32]) -> Result<Option<Place>, StoreError>;

/// The marks one write batch moves, and what it stores that later rows in it may point at.
pub(super) struct MarkStage {
    /// The reader's user: its messages are its own.
    user: Option<UserId>,
    marks: HashMap<[u8; 16], [u8; 40]>,
    /// Message rows staged in this batch: id → chat, ts.
    placed: HashMap<[u8; 32], Place>,
    early: HashSet<[u8; 32]>,
    /// Whether the store may hold notes of messages read early: almost never, and asking for
    /// one per message stored was a point read per message.
    stored_early: bool,
}

impl MarkStage {
    pub(super) fn new(reader: Option<&Reader>, stored_early: bool) -> MarkStage {
        MarkStage {
            user: reader.map(|r| r.user),
            marks: HashMap::new(),
            placed: HashMap::new(),
            early: HashSet::new(),
            stored_early,
        }
    }

    /// Follows one row staged for the chats keyspace. `ours` says whether a device is one of ours.
    pub(super) fn row(
        &mut self,
        batch: &mut fjall::OwnedWriteBatch,
        views: &fjall::Keyspace,
        locate: Locate<'_>,
        ours: &dyn Fn(&DeviceId) -> bool,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        match key.first() {
            // `m` chat(16) ts(8) id(32)
            Some(b'm') if key.len() == 57 => {
                let (Some(chat), Some(ts), Some(id)) = (arr(&key[1..17]), arr(&key[17..25]), arr(&key[25..57])) else {
                    return Ok(());
                };
                self.placed.insert(id, (chat, ts));
                let mine = self.user.is_some() && codec::decode::<MsgRow>(value).is_ok_and(|r| r.user == self.user);
                let read_before = self.early.remove(&id) || (self.stored_early && views.get(early_key(&id))?.is_some());
                if read_before {
                    batch.remove(views, early_key(&id));
                }
                if mine || read_before {
                    self.raise(views, chat, &key[17..57])?;
                }
            }
            // `a` target(32) device(32) ts(8) read(1)
            Some(b'a') if key.len() == 74 && key[73] == 1 => {
                let (Some(target), Some(device)) = (arr::<32>(&key[1..33]), arr(&key[33..65])) else {
                    return Ok(());
                };
                if !ours(&DeviceId(Bytes(device))) {
                    return Ok(());
                }
                let at = match self.placed.get(&target) {
                    Some(p) => Some(*p),
                    None => locate(&target)?,
                };
                match at {
                    Some((chat, ts)) => self.raise(views, chat, &[&ts[..], &target].concat())?,
                    None => {
                        self.early.insert(target);
                        batch.insert(views, early_key(&target), Vec::new());
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn raise(&mut self, views: &fjall::Keyspace, chat: [u8; 16], at: &[u8]) -> Result<(), StoreError> {
        let Some(at) = arr::<40>(at) else { return Ok(()) };
        let current = match self.marks.get(&chat) {
            Some(m) => Some(*m),
            None => views.get(mark_key(&chat))?.and_then(|v| arr(&v)),
        };
        if current.is_none_or(|c| at > c) {
            self.marks.insert(chat, at);
        }
        Ok(())
    }

    /// Puts the moved marks into the batch; whether it noted a message read early.
    pub(super) fn finish(self, batch: &mut fjall::OwnedWriteBatch, views: &fjall::Keyspace) -> bool {
        for (chat, at) in self.marks {
            batch.insert(views, mark_key(&chat), at.to_vec());
        }
        !self.early.is_empty()
    }
}

/// Whether the store holds a note of a message read before it arrived.
pub(super) fn any_read_early(views: &fjall::Keyspace) -> Result<bool, StoreError> {
    match views.prefix(EARLY).next() {
        Some(item) => item.key().map(|_| true).map_err(StoreError::from),
        None => Ok(false),
    }
}

impl Store {
    /// The number of messages in `chat` after its read mark, at most `UNREAD_CAP + 1`.
    pub(super) fn unread_after_mark(&self, chat: &ChatId) -> Result<usize, StoreError> {
        let prefix = view::key(&[b"m", &chat.0.0]);
        let start = match self.views.get(mark_key(&chat.0.0))? {
            Some(at) => std::ops::Bound::Excluded([&prefix[..], &at].concat()),
            None => std::ops::Bound::Included(prefix.clone()),
        };
        let mut n = 0;
        for item in self.chats.range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded)).take(UNREAD_CAP + 1) {
            if !item.key()?.starts_with(&prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Whether notes of messages read early may be stored (else staging need not look).
    pub(super) fn early_notes(&self) -> bool {
        self.early_notes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn noted_early(&self) {
        self.early_notes.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Where a held message lives (its chat and timestamp), from its entry and kept content
    /// key: none for an entry not held, not opened here or not a message. Only read acks by our
    /// own devices ask, for messages stored in an earlier batch.
    pub(super) fn place_of(&self, id: &[u8; 32]) -> Result<Option<Place>, StoreError> {
        let Some(entry) = self.get(&EntryId(Bytes(*id)))? else { return Ok(None) };
        Ok(self.kept_rows(&entry)?.iter().find_map(|(k, _)| match k.first() {
            Some(b'm') if k.len() == 57 => Some((arr(&k[1..17])?, arr(&k[17..25])?)),
            _ => None,
        }))
    }

    /// Whether every chat has its mark.
    pub(super) fn read_marks_built(&self) -> Result<bool, StoreError> {
        Ok(self.views.get(BUILT)?.is_some())
    }

    /// Sets every chat's mark from its rows: the newest message ours or read by one of our
    /// devices, looked for among the newest `UNREAD_CAP + 1` (see the module note); and notes
    /// the reads of messages not held yet.
    pub fn rebuild_read_marks(&self) -> Result<(), StoreError> {
        let own = self.own_devices();
        let me = self.reader.as_ref().map(|r| r.user);
        let mut batch = self.db.batch();
        for prefix in [MARK, EARLY] {
            for item in self.views.prefix(prefix) {
                batch.remove(&self.views, item.key()?.to_vec());
            }
        }
        // Reads by our devices of messages not held yet: noted, as staging notes them. One pass
        // over the acknowledgement rows, on the first start with marks and after a repair.
        for item in self.chats.prefix(b"a") {
            let k = item.key()?;
            let (Some(target), Some(device)) = (k.get(1..33).and_then(arr::<32>), k.get(33..65).and_then(arr::<32>))
            else {
                continue;
            };
            if k.len() == 74
                && k[73] == 1
                && own.contains(&DeviceId(Bytes(device)))
                && self.place_of(&target)?.is_none()
            {
                batch.insert(&self.views, early_key(&target), Vec::new());
                self.noted_early();
            }
        }
        for item in self.chats.prefix(b"s") {
            let k = item.key()?;
            let Some(chat) = k.get(1..17).and_then(arr::<16>) else { continue };
            for item in self.chats.prefix(view::key(&[b"m", &chat])).rev().take(UNREAD_CAP + 1) {
                let (k, v) = item.into_inner()?;
                let row: MsgRow = codec::decode(&v).map_err(|_| StoreError::Corrupt("chat row".into()))?;
                let id = k.get(25..57).and_then(arr::<32>).ok_or_else(|| StoreError::Corrupt("chat row".into()))?;
                let mine = row.user.is_some() && row.user == me;
                if mine || self.read_by_us(&EntryId(Bytes(id)), &own)? {
                    batch.insert(&self.views, mark_key(&chat), k[17..57].to_vec());
                    break;
                }
            }
        }
        batch.insert(&self.views, BUILT, Vec::new());
        batch.commit()?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
