//! The chats projection on disk: its rows (see messaging::view), catch-up when a reader is set,
//! a rebuild for audits, and the queries the front ends ask.

use std::collections::{BTreeMap, BTreeSet};

use super::read_marks::{Locate, MarkStage};
use super::{Store, StoreError, keys};
use crate::codec::{self, Bytes};
use crate::identity::{DeviceId, UserId};
use crate::log::EntryId;
use crate::messaging::view::{self, ContactRow, EditRow, GroupOp, GroupRow, MsgRow};
use crate::messaging::{ChatId, ContactCard, Reader};

/// Name under which the projection's positions are kept (views keyspace).
/// v2: the same rows as v1, rebuilt once so that every entry opened keeps its content key.
pub const VIEW: &str = "chats-v2";

/// A message from another user, just stored: the node acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub chat: ChatId,
    pub id: EntryId,
    pub user: Option<UserId>,
    /// Where it is: the author device's log and its seq (the acknowledgement points follow it).
    pub log: [u8; 32],
    pub seq: u64,
}

/// How far one of our messages got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Delivery {
    Sent,
    Delivered,
    Read,
}

impl Delivery {
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Delivered => "delivered",
            Delivery::Read => "read",
        }
    }
}

/// A message as a reader sees it, edits and deletions applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub id: EntryId,
    pub timestamp: u64,
    pub device: DeviceId,
    pub user: Option<UserId>,
    pub mine: bool,
    /// None when deleted or undecryptable.
    pub text: Option<String>,
    pub edited: bool,
    pub deleted: bool,
    pub undecryptable: bool,
    pub reply_to: Option<EntryId>,
    /// For our own messages.
    pub delivery: Option<Delivery>,
    /// The file it carries (None once deleted).
    pub file: Option<crate::blob::FileRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatKind {
    Direct(Option<UserId>),
    Group { name: String, members: Vec<UserId> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    pub chat: ChatId,
    pub kind: ChatKind,
    pub last: Option<MessageView>,
    /// Capped at [`UNREAD_CAP`].
    pub unread: usize,
}

/// Unread counts stop at this (shown as "999+"): counting further would cost a walk of history.
pub const UNREAD_CAP: usize = 999;

pub(super) fn new_message(key: &[u8], reader: &Reader, value: &[u8], at: ([u8; 32], u64)) -> Option<NewMessage> {
    if key.first() != Some(&b'm') || key.len() != 1 + 16 + 8 + 32 {
        return None;
    }
    let row: MsgRow = codec::decode(value).ok()?;
    if row.user == Some(reader.user) {
        return None;
    }
    let chat = ChatId(Bytes(key[1..17].try_into().ok()?));
    let id = EntryId(Bytes(key[25..57].try_into().ok()?));
    Some(NewMessage { chat, id, user: row.user, log: at.0, seq: at.1 })
}

/// What staging an entry's rows needs besides the batch: where they go, who reads, and how to
/// find a message stored earlier (for read marks).
pub(super) struct Stage<'a> {
    pub(super) chats: &'a fjall::Keyspace,
    pub(super) views: &'a fjall::Keyspace,
    pub(super) reader: &'a Reader,
    pub(super) locate: Locate<'a>,
    /// Whether a device is one of ours.
    pub(super) ours: &'a dyn Fn(&DeviceId) -> bool,
}

/// Adds the rows of the entry at `at` (log, seq) to the batch and moves the read marks they
/// move. Returns the messages from others among them, which this device acknowledges.
pub(super) fn stage_rows(
    batch: &mut fjall::OwnedWriteBatch,
    st: &Stage<'_>,
    marks: &mut MarkStage,
    at: ([u8; 32], u64),
    rows: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<NewMessage>, StoreError> {
    let mut fresh = Vec::new();
    for (k, v) in rows {
        marks.row(batch, st.views, st.locate, st.ours, &k, &v)?;
        fresh.extend(new_message(&k, st.reader, &v, at));
        batch.insert(st.chats, k, v);
    }
    Ok(fresh)
}

/// Whether a row still has to go into this batch: a chat's summary row (`s` chat) says only
/// that the chat exists, so one per chat and batch is enough, however many of its messages the
/// batch holds (a bulk send or a long sync writes hundreds).
pub(super) fn not_yet_staged(summaries: &mut BTreeSet<Vec<u8>>, key: &[u8]) -> bool {
    key.first() != Some(&b's') || summaries.insert(key.to_vec())
}

pub(super) fn arr<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.try_into().ok()
}

impl Store {
    /// Sets who reads sealed messages and brings the chats rows up to date with the logs.
    pub fn set_reader(&mut self, reader: Reader) -> Result<(), StoreError> {
        self.reader = Some(reader);
        self.upgrade_rows()?;
        let positions = self.view_positions(VIEW)?;
        let behind: Vec<([u8; 32], u64, u64)> = self
            .heads()
            .filter_map(|(a, h)| {
                let at = positions.get(&a).copied().unwrap_or(0);
                (at < h.seq).then_some((a, at, h.seq))
            })
            .collect();
        if behind.is_empty() {
            return self.build_read_marks_once();
        }
        let mut batch = self.db.batch();
        let mut marks = MarkStage::new(self.reader.as_ref(), self.early_notes());
        let mut summaries = BTreeSet::new();
        let mut points = BTreeMap::new();
        if let Some(reader) = &self.reader {
            let own = self.own_devices();
            let ours = |d: &DeviceId| own.contains(d);
            let locate = |id: &[u8; 32]| self.place_of(id);
            let st = Stage { chats: &self.chats, views: &self.views, reader, locate: &locate, ours: &ours };
            for (author, at, head) in behind {
                for e in self.read_log(&author, at + 1, usize::MAX)? {
                    let kept = self.kept_key(&e.id)?;
                    let (mut rows, key) =
                        view::rows_known(&e, reader, &self.trust, kept.map_or(view::Known::Nothing, view::Known::Key));
                    rows.retain(|(k, _)| not_yet_staged(&mut summaries, k));
                    if let Some(k) = key.filter(|_| kept.is_none()) {
                        batch.insert(&self.views, keys::content_key_key(e.id.as_bytes()), k.to_vec());
                    }
                    let fresh = stage_rows(&mut batch, &st, &mut marks, (author, e.header().seq), rows)?;
                    self.ack_points.stage(&mut batch, &self.views, &mut points, &fresh);
                }
                batch.insert(&self.views, keys::view_pos_key(VIEW, &author), head.to_be_bytes().to_vec());
            }
        }
        let noted_early = marks.finish(&mut batch, &self.views);
        batch.commit()?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        self.ack_points.apply(points);
        if noted_early {
            self.noted_early();
        }
        self.build_read_marks_once()
    }

    fn build_read_marks_once(&self) -> Result<(), StoreError> {
        if self.read_marks_built()? { Ok(()) } else { self.rebuild_read_marks() }
    }

    /// Whether messages from others were stored since the last `take_new_messages`.
    pub fn has_new_messages(&self) -> bool {
        !self.new_messages.is_empty()
    }

    /// Messages from others stored since the last call (for acknowledgements).
    pub fn take_new_messages(&mut self) -> Vec<NewMessage> {
        std::mem::take(&mut self.new_messages)
    }

    /// Every chats row, as stored.
    pub fn chat_rows(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.chats.iter() {
            let (k, v) = item.into_inner()?;
            out.insert(k.to_vec(), v.to_vec());
        }
        Ok(out)
    }

    /// The chats rows recomputed from the logs alone (the audit compares the two).
    pub fn chat_rows_rebuilt(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        let mut out = BTreeMap::new();
        let Some(reader) = &self.reader else { return Ok(out) };
        for (author, _) in self.heads().collect::<Vec<_>>() {
            for e in self.read_log(&author, 1, usize::MAX)? {
                let known = self.kept_key(&e.id)?.map_or(view::Known::Nothing, view::Known::Key);
                out.extend(view::rows_known(&e, reader, &self.trust, known).0);
            }
        }
        Ok(out)
    }

    /// The rows of a stored entry, opened again with its kept content key: none without a
    /// reader or a kept key (not addressed to this device, or never opened here).
    pub(super) fn kept_rows(&self, e: &crate::log::Entry) -> Result<view::Rows, StoreError> {
        let (Some(reader), Some(key)) = (self.reader.as_ref(), self.kept_key(&e.id)?) else { return Ok(Vec::new()) };
        Ok(view::rows_known(e, reader, &self.trust, view::Known::Key(key)).0)
    }

    /// The content key kept for an entry, if it was opened here before: in its `ids` row when
    /// kept as it was stored, else in `views` (learned later: a catch-up, a handover, an older
    /// store).
    pub fn kept_key(&self, id: &crate::log::EntryId) -> Result<Option<[u8; 32]>, StoreError> {
        let id = id.as_bytes();
        for item in self.ids.prefix(&id[..keys::ID_PREFIX]) {
            if let Some(k) = keys::kept_in_id_value(id, &item.value()?)? {
                return Ok(Some(k));
            }
        }
        Ok(self.views.get(keys::content_key_key(id))?.and_then(|v| <[u8; 32]>::try_from(&v[..]).ok()))
    }

    fn own_user(&self) -> Option<UserId> {
        self.reader.as_ref().map(|r| r.user)
    }

    pub(super) fn own_devices(&self) -> BTreeSet<DeviceId> {
        self.own_user()
            .and_then(|u| self.trust.user(&u))
            .map(|u| u.devices.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Contacts added by any of our devices: the newest card per user.
    pub fn contacts(&self) -> Result<Vec<(UserId, ContactCard)>, StoreError> {
        let mut best: BTreeMap<UserId, (u64, ContactCard)> = BTreeMap::new();
        for item in self.chats.prefix(b"c") {
            let row: ContactRow =
                codec::decode(&item.value()?).map_err(|e| StoreError::Corrupt(format!("contact: {e}")))?;
            let Some(user) = row.card.certs.first().map(|c| c.body.user) else { continue };
            if best.get(&user).is_none_or(|(ts, _)| row.ts > *ts) {
                best.insert(user, (row.ts, row.card));
            }
        }
        Ok(best.into_iter().map(|(u, (_, c))| (u, c)).collect())
    }

    /// A group's name and members, folding its create/add/leave rows in (ts, id) order. Only a
    /// member may add; anyone may leave only themselves.
    pub fn group(&self, chat: &ChatId) -> Result<Option<(String, Vec<UserId>)>, StoreError> {
        let mut state: Option<(String, BTreeSet<UserId>)> = None;
        for item in self.chats.prefix(view::key(&[b"g", &chat.0.0])) {
            let row: GroupRow =
                codec::decode(&item.value()?).map_err(|e| StoreError::Corrupt(format!("group: {e}")))?;
            let Some(author) = row.user else { continue };
            match (row.op, &mut state) {
                (GroupOp::Create { name, members }, None) => {
                    let mut m: BTreeSet<UserId> = members.into_iter().collect();
                    m.insert(author);
                    state = Some((name, m));
                }
                (GroupOp::Add { members, .. }, Some((_, m))) if m.contains(&author) => m.extend(members),
                // A member who joined later never saw the creation: the addition names the group.
                (GroupOp::Add { name, members }, None) => {
                    let mut m: BTreeSet<UserId> = members.into_iter().collect();
                    m.insert(author);
                    state = Some((name, m));
                }
                (GroupOp::Leave, Some((_, m))) => {
                    m.remove(&author);
                }
                // Only a member may take others out or rename the group.
                (GroupOp::Remove { members }, Some((_, m))) if m.contains(&author) => {
                    for x in members {
                        m.remove(&x);
                    }
                }
                (GroupOp::Rename { name }, Some((n, m))) if m.contains(&author) => *n = name,
                _ => {}
            }
        }
        Ok(state.map(|(n, m)| (n, m.into_iter().collect())))
    }

    fn message_view(
        &self,
        key: &[u8],
        value: &[u8],
        own_devices: &BTreeSet<DeviceId>,
    ) -> Result<MessageView, StoreError> {
        let bad = || StoreError::Corrupt("chat row".into());
        let row: MsgRow = codec::decode(value).map_err(|_| bad())?;
        let timestamp = u64::from_be_bytes(arr(&key[17..25]).ok_or_else(bad)?);
        let id = EntryId(Bytes(arr(&key[25..57]).ok_or_else(bad)?));
        let mine = row.user.is_some() && row.user == self.own_user();
        // The newest edit by the message's own author wins; deletion by its author hides it.
        let mut text = row.text.clone();
        let mut edited = false;
        for item in self.chats.prefix(view::key(&[b"e", id.as_bytes()])) {
            let edit: EditRow = codec::decode(&item.value()?).map_err(|_| bad())?;
            if edit.user.is_some() && edit.user == row.user {
                text = Some(edit.text);
                edited = true;
            }
        }
        let mut deleted = false;
        for item in self.chats.prefix(view::key(&[b"d", id.as_bytes()])) {
            let who = item.value()?;
            if row.user.is_some_and(|u| u.as_bytes()[..] == who[..]) {
                deleted = true;
            }
        }
        if deleted {
            text = None;
        }
        let delivery = if mine {
            let mut d = Delivery::Sent;
            for item in self.chats.prefix(view::key(&[b"a", id.as_bytes()])) {
                let k = item.key()?;
                let device = DeviceId(Bytes(arr(&k[33..65]).ok_or_else(bad)?));
                if own_devices.contains(&device) {
                    continue;
                }
                let read = k.get(73) == Some(&1);
                d = d.max(if read { Delivery::Read } else { Delivery::Delivered });
            }
            Some(d)
        } else {
            None
        };
        let file = if deleted { None } else { self.file_of(&id)?.map(|r| r.file) };
        Ok(MessageView {
            file,
            id,
            timestamp,
            device: row.device,
            user: row.user,
            mine,
            undecryptable: row.text.is_none() && !deleted,
            text,
            edited,
            deleted,
            reply_to: row.reply_to,
            delivery,
        })
    }

    /// Whether one of our devices acknowledged `id` as read.
    pub(super) fn read_by_us(&self, id: &EntryId, own_devices: &BTreeSet<DeviceId>) -> Result<bool, StoreError> {
        for item in self.chats.prefix(view::key(&[b"a", id.as_bytes()])) {
            let k = item.key()?;
            let device = k.get(33..65).and_then(arr::<32>).map(|d| DeviceId(Bytes(d)));
            if device.is_some_and(|d| own_devices.contains(&d)) && k.get(73) == Some(&1) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The newest `limit` messages of a chat, oldest first.
    pub fn messages(&self, chat: &ChatId, limit: usize) -> Result<Vec<MessageView>, StoreError> {
        let own = self.own_devices();
        let mut out = Vec::new();
        for item in self.chats.prefix(view::key(&[b"m", &chat.0.0])).rev().take(limit) {
            let (k, v) = item.into_inner()?;
            out.push(self.message_view(&k, &v, &own)?);
        }
        out.reverse();
        Ok(out)
    }

    /// Messages of every chat whose text contains `needle` (case-insensitive), newest first, at
    /// most `limit`. Reads every message row: linear in the number of messages.
    pub fn search(&self, needle: &str, limit: usize) -> Result<Vec<(ChatId, MessageView)>, StoreError> {
        let needle = needle.trim().to_lowercase();
        if needle.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let own = self.own_devices();
        let mut hits = Vec::new();
        for item in self.chats.prefix(b"m") {
            let (k, v) = item.into_inner()?;
            let Some(chat) = k.get(1..17).and_then(arr::<16>).map(|c| ChatId(Bytes(c))) else { continue };
            let m = self.message_view(&k, &v, &own)?;
            if m.text.as_deref().is_some_and(|t| t.to_lowercase().contains(&needle)) {
                hits.push((chat, m));
            }
        }
        hits.sort_by_key(|(_, m)| std::cmp::Reverse(m.timestamp));
        hits.truncate(limit);
        Ok(hits)
    }

    /// Every chat with its last message and unread count, most recent activity first.
    /// Every group's members, without the per-chat reads [`Store::chats`] makes.
    pub fn group_members(&self) -> Result<Vec<UserId>, StoreError> {
        let mut out = Vec::new();
        for item in self.chats.prefix(b"s") {
            let k = item.key()?;
            let Some(chat) = k.get(1..17).and_then(arr::<16>).map(|c| ChatId(Bytes(c))) else { continue };
            if let Some((_, members)) = self.group(&chat)? {
                out.extend(members);
            }
        }
        Ok(out)
    }

    pub fn chats(&self) -> Result<Vec<ChatSummary>, StoreError> {
        let own = self.own_devices();
        let me = self.own_user();
        let contacts: Vec<UserId> = self.contacts()?.into_iter().map(|(u, _)| u).collect();
        let mut out = Vec::new();
        for item in self.chats.prefix(b"s") {
            let k = item.key()?;
            let Some(chat) = k.get(1..17).and_then(arr::<16>).map(|c| ChatId(Bytes(c))) else { continue };
            let kind = match self.group(&chat)? {
                Some((name, members)) => ChatKind::Group { name, members },
                None => {
                    let other = contacts.iter().copied().find(|u| me.is_some_and(|m| ChatId::direct(&m, u) == chat));
                    ChatKind::Direct(other)
                }
            };
            // The newest message in full (edits, deletion, delivery); the unread ones are the
            // rows after the chat's read mark (see read_marks).
            let last = match self.chats.prefix(view::key(&[b"m", &chat.0.0])).next_back() {
                Some(item) => {
                    let (k, v) = item.into_inner()?;
                    Some(self.message_view(&k, &v, &own)?)
                }
                None => None,
            };
            let unread = self.unread_after_mark(&chat)?;
            out.push(ChatSummary { chat, kind, last, unread: unread.min(UNREAD_CAP) });
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.last.as_ref().map_or(0, |m| m.timestamp)));
        Ok(out)
    }
}
