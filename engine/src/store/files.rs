//! Files in the chats projection: the `f` rows that file messages add (messaging::view), and
//! the settings of downloads.

use super::{Store, StoreError};
use crate::codec;
use crate::identity::UserId;
use crate::log::EntryId;
use crate::messaging::view::{self, FileRow, MsgRow};

/// Files up to this size download without being asked for, unless the user chose otherwise.
pub const DEFAULT_AUTO_DOWNLOAD: u64 = 32 << 20;
const AUTO_KEY: &[u8] = b"file-auto-download";

/// A file some message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The message.
    pub id: EntryId,
    pub row: FileRow,
    /// Who sent it.
    pub user: Option<UserId>,
    /// Its message was deleted by its sender: the file is no longer offered or fetched.
    pub deleted: bool,
}

impl Store {
    /// The file message `id` carries, if any.
    pub fn file_of(&self, id: &EntryId) -> Result<Option<FileRow>, StoreError> {
        let Some(v) = self.chats.get(view::key(&[b"f", id.as_bytes()]))? else { return Ok(None) };
        codec::decode(&v).map(Some).map_err(|_| StoreError::Corrupt("file row".into()))
    }

    /// Every file of every chat, newest first.
    pub fn files(&self) -> Result<Vec<FileEntry>, StoreError> {
        let mut out =
            self.file_rows()?.into_iter().map(|(id, row)| self.file_entry(id, row)).collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| b.row.ts.cmp(&a.row.ts).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The `f` rows alone (one read each, in key order): for scans that look further only at
    /// some of them.
    pub fn file_rows(&self) -> Result<Vec<(EntryId, FileRow)>, StoreError> {
        let mut out = Vec::new();
        for item in self.chats.prefix(b"f") {
            let (k, v) = item.into_inner()?;
            let Some(id) = k.get(1..33).and_then(|b| <[u8; 32]>::try_from(b).ok()) else { continue };
            let row: FileRow = codec::decode(&v).map_err(|_| StoreError::Corrupt("file row".into()))?;
            out.push((EntryId(codec::Bytes(id)), row));
        }
        Ok(out)
    }

    /// A file row with its sender and whether its message was deleted.
    pub fn file_entry(&self, id: EntryId, row: FileRow) -> Result<FileEntry, StoreError> {
        let msg = self.chats.get(view::key(&[b"m", &row.chat.0.0, &row.ts.to_be_bytes(), id.as_bytes()]))?;
        let user = msg.and_then(|m| codec::decode::<MsgRow>(&m).ok()).and_then(|m| m.user);
        let mut deleted = false;
        for d in self.chats.prefix(view::key(&[b"d", id.as_bytes()])) {
            let who = d.value()?;
            deleted |= user.is_some_and(|u| u.as_bytes()[..] == who[..]);
        }
        Ok(FileEntry { id, row, user, deleted })
    }

    /// Whether a file is offered to the user and fetched: not of a deleted message, not from a
    /// blocked contact.
    pub fn file_visible(&self, f: &FileEntry) -> bool {
        !f.deleted && !f.user.is_some_and(|u| self.contact_state(&u).is_ok_and(|s| s.blocked))
    }

    /// Largest file (bytes) fetched without being asked for.
    pub fn auto_download(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(AUTO_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
            .map_or(DEFAULT_AUTO_DOWNLOAD, u64::from_be_bytes))
    }

    pub fn set_auto_download(&self, bytes: u64) -> Result<(), StoreError> {
        self.sync.guard(self.meta.insert(AUTO_KEY, bytes.to_be_bytes()))?;
        self.sync_now()
    }
}
