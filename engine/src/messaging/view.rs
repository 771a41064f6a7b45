//! The chats projection as rows: a pure function from one entry to the key-value rows it adds.
//! The store writes them in the same batch as the entry; reading a chat merges them.
//!
//! Rows are keyed so that any arrival order yields the same set, and everything that depends on
//! order (the latest edit, group membership, delivery state) is resolved when reading. So a
//! rebuild from the logs equals the incremental state, row for row.
//!
//! Row keys (first byte is the row type):
//!   `m` chat(16) ts(8) id(32)      → MsgRow        a message (or an undecryptable entry)
//!   `t` id(32)                      → chat(16) ts(8) where a message lives
//!   `e` target(32) ts(8) id(32)    → EditRow
//!   `d` target(32) id(32)          → author user(32)
//!   `a` target(32) device(32) ts(8) read(1) → (empty)   an acknowledgement
//!   `g` chat(16) ts(8) id(32)      → GroupRow      group create / add / leave
//!   `c` id(32)                      → ContactRow    a contact added by one of our devices
//!   `s` chat(16)                    → (empty)       the chat exists
//!   `f` id(32)                      → FileRow       the file a message carries

use serde::{Deserialize, Serialize};
use x25519_dalek::StaticSecret;

use super::body::{Body, ChatId, ContactCard};
use super::seal::{SealError, Sealed};
use crate::codec::{self, Bytes};
use crate::identity::{DeviceId, UserId};
use crate::log::{Entry, EntryId};
use crate::payload::KIND_SEALED;
use crate::projection::TrustView;

/// Who reads: this device's agreement secret and its user.
pub struct Reader {
    /// This device's agreement secrets, each with its public key: the current one first, then
    /// older ones and those handed over when it was linked (spec/devices.md), so history stays
    /// readable.
    pub agreements: Vec<(StaticSecret, [u8; 32])>,
    pub user: UserId,
    /// This device: its own acknowledgements settle its pending ones.
    pub device: DeviceId,
}

/// The additional data a sealed payload is bound to: its author, so that nobody can re-post a
/// ciphertext under their own key.
pub fn aad(author: &[u8; 32]) -> Vec<u8> {
    [&b"libra-msg-v1"[..], author].concat()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgRow {
    pub device: DeviceId,
    pub user: Option<UserId>,
    /// None for an entry addressed to us that did not decrypt or parse.
    pub text: Option<String>,
    pub reply_to: Option<EntryId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditRow {
    pub user: Option<UserId>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupOp {
    Create { name: String, members: Vec<UserId> },
    Add { name: String, members: Vec<UserId> },
    Leave,
    Remove { members: Vec<UserId> },
    Rename { name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRow {
    pub user: Option<UserId>,
    pub op: GroupOp,
}

/// The file of a message (beside its `m` row, which holds the caption).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRow {
    pub chat: ChatId,
    pub ts: u64,
    pub file: crate::blob::FileRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRow {
    pub card: ContactCard,
    pub ts: u64,
}

pub(crate) fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The rows one entry contributes.
pub fn rows(entry: &Entry, reader: &Reader, trust: &TrustView) -> Vec<(Vec<u8>, Vec<u8>)> {
    rows_known(entry, reader, trust, Known::Nothing).0
}

/// What is known of an entry's content before opening it.
#[derive(Clone, Copy)]
pub enum Known<'a> {
    Nothing,
    /// This device sealed it: the plaintext and the content key.
    Sealed(&'a [u8], [u8; 32]),
    /// Its content key, kept from when it was first opened: it opens after the agreement secret
    /// it was sealed to is gone (spec/devices.md, "Retention").
    Key([u8; 32]),
    /// What looking for its content key with the reader's secrets gave, done before the write
    /// (outside the node lock, see [`content_key_of`]): the key, or none addressed to us.
    Opened(Option<[u8; 32]>),
}

/// The content key of a sealed entry for these secrets (the reader's), or why there is none;
/// `None` for an entry that is not a sealed envelope. The costly part of reading a message
/// (a key agreement per secret), so that it can run before the write that stores the entry.
pub fn content_key_of(entry: &Entry, secrets: &[(StaticSecret, [u8; 32])]) -> Option<Result<[u8; 32], SealError>> {
    if entry.header().kind != KIND_SEALED {
        return None;
    }
    let sealed = Sealed::decode(entry.payload.as_deref()?).ok()?;
    Some(content_key_any(&sealed, secrets))
}

/// [`rows`], with what is known of the content: for an entry this device sealed, its plaintext
/// (one key agreement saved per message sent); for one opened before, its content key. A
/// rebuild, which opens it, yields the same rows. Also returns the entry's content key when it
/// is addressed to this device (the store keeps it).
pub fn rows_known(entry: &Entry, reader: &Reader, trust: &TrustView, known: Known<'_>) -> (Rows, Option<[u8; 32]>) {
    let h = entry.header();
    if h.kind != KIND_SEALED {
        return (Vec::new(), None);
    }
    let Some(payload) = entry.payload.as_deref() else { return (Vec::new(), None) };
    // A payload that is not even a sealed envelope names no recipient: nobody's business.
    let Ok(sealed) = Sealed::decode(payload) else { return (Vec::new(), None) };
    let aad = aad(&h.author.0);
    let (opened, key) = match known {
        Known::Sealed(p, k) if h.author.0 == *reader.device.as_bytes() => (Ok(p.to_vec()), Some(k)),
        Known::Key(k) | Known::Opened(Some(k)) => (sealed.open_with(&k, &aad), Some(k)),
        Known::Opened(None) => (Err(SealError::NotForUs), None),
        _ => match content_key_any(&sealed, &reader.agreements) {
            Ok(k) => (sealed.open_with(&k, &aad), Some(k)),
            Err(e) => (Err(e), None),
        },
    };
    (rows_opened(entry, reader, trust, opened), key)
}

/// Content keys found (or not) for sealed entries, by entry id.
pub type ContentKeys = std::collections::HashMap<EntryId, Result<[u8; 32], SealError>>;

/// The content keys of sealed entries for `secrets`, by entry id, spread over `threads`.
pub fn content_keys(entries: &[&Entry], secrets: &[(StaticSecret, [u8; 32])], threads: usize) -> ContentKeys {
    let one = |part: &[&Entry]| -> Vec<_> {
        part.iter().filter_map(|e| content_key_of(e, secrets).map(|k| (e.id, k))).collect()
    };
    // One key agreement costs more than starting a thread: a few entries already share.
    if threads <= 1 || entries.len() < 16 {
        return one(entries).into_iter().collect();
    }
    // Small chunks claimed by whichever thread is free, so both cores finish together. A chunk
    // whose thread panicked is left out: its entries are opened in the write group.
    let chunk = crate::par::chunk_size(entries.len(), threads, 8, 64);
    crate::par::map_chunks(entries, chunk, threads, |_, part| one(part)).into_iter().flatten().flatten().collect()
}

/// The rows of one entry.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

fn rows_opened(entry: &Entry, reader: &Reader, trust: &TrustView, opened: Result<Vec<u8>, SealError>) -> Rows {
    let h = entry.header();
    let device = DeviceId(Bytes(h.author.0));
    let user = trust.owner_of(&device);
    let ts = h.timestamp.to_be_bytes();
    let id = entry.id.as_bytes();
    let body = match opened {
        Err(SealError::NotForUs) => return Vec::new(),
        Err(_) => None,
        Ok(plain) => Body::decode(&plain).ok(),
    };
    let Some(body) = body else {
        // Addressed to us but unreadable: shown, never dropped. It belongs to the 1:1 chat with
        // its author, the only chat we can name without the plaintext.
        let chat = user.map_or(ChatId(Bytes([0; 16])), |u| ChatId::direct(&reader.user, &u));
        let row = MsgRow { device, user, text: None, reply_to: None };
        return message_rows(chat, &ts, id, &row);
    };
    match body {
        Body::Text { chat, text, reply_to } => {
            message_rows(chat, &ts, id, &MsgRow { device, user, text: Some(text), reply_to })
        }
        Body::File { chat, text, reply_to, file } => {
            let mut rows = message_rows(chat, &ts, id, &MsgRow { device, user, text: Some(text), reply_to });
            rows.push((key(&[b"f", id]), codec::encode(&FileRow { chat, ts: h.timestamp, file })));
            rows
        }
        Body::Edit { target, text, .. } => {
            vec![(key(&[b"e", target.as_bytes(), &ts, id]), codec::encode(&EditRow { user, text }))]
        }
        Body::Delete { target, .. } => {
            let who = user.map_or([0; 32], |u| *u.as_bytes());
            vec![(key(&[b"d", target.as_bytes(), id]), who.to_vec())]
        }
        // This device's own delivery acks tell this device nothing (delivery counts other
        // users' devices; read marks only read acks): no rows, one fewer per message received.
        Body::Ack { read: false, .. } if device == reader.device => Vec::new(),
        Body::Ack { targets, read, .. } => targets
            .iter()
            .map(|t| (key(&[b"a", t.as_bytes(), device.as_bytes(), &ts, &[u8::from(read)]]), Vec::new()))
            .collect(),
        Body::Contact(card) => {
            // Only our own devices may add contacts for us.
            if user != Some(reader.user) {
                return Vec::new();
            }
            vec![(key(&[b"c", id]), codec::encode(&ContactRow { card, ts: h.timestamp }))]
        }
        Body::GroupCreate { chat, name, members } => group_rows(chat, &ts, id, user, GroupOp::Create { name, members }),
        Body::GroupAdd { chat, name, members } => group_rows(chat, &ts, id, user, GroupOp::Add { name, members }),
        Body::GroupLeave { chat } => group_rows(chat, &ts, id, user, GroupOp::Leave),
        Body::GroupRemove { chat, members } => group_rows(chat, &ts, id, user, GroupOp::Remove { members }),
        Body::GroupRename { chat, name } => group_rows(chat, &ts, id, user, GroupOp::Rename { name }),
    }
}

/// The content key from the first secret the envelope is addressed to.
fn content_key_any(sealed: &Sealed, secrets: &[(StaticSecret, [u8; 32])]) -> Result<[u8; 32], SealError> {
    let mut out = Err(SealError::NotForUs);
    for (s, public) in secrets {
        out = sealed.content_key_for(s, public);
        if !matches!(out, Err(SealError::NotForUs)) {
            break;
        }
    }
    out
}

fn message_rows(chat: ChatId, ts: &[u8; 8], id: &[u8; 32], row: &MsgRow) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![(key(&[b"m", &chat.0.0, ts, id]), codec::encode(row)), (key(&[b"s", &chat.0.0]), Vec::new())]
}

fn group_rows(chat: ChatId, ts: &[u8; 8], id: &[u8; 32], user: Option<UserId>, op: GroupOp) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (key(&[b"g", &chat.0.0, ts, id]), codec::encode(&GroupRow { user, op })),
        (key(&[b"s", &chat.0.0]), Vec::new()),
    ]
}

impl Reader {
    /// A reader with these secrets (their public keys computed here, once).
    pub fn new(agreements: Vec<StaticSecret>, user: UserId, device: DeviceId) -> Reader {
        let agreements = agreements
            .into_iter()
            .map(|s| {
                let p = x25519_dalek::PublicKey::from(&s).to_bytes();
                (s, p)
            })
            .collect();
        Reader { agreements, user, device }
    }
}

#[cfg(test)]
mod tests;
