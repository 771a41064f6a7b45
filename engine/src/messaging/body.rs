//! What a sealed payload carries once opened: one canonical MessagePack `[tag, body]`.
//!
//! Everything a person does in Libra (write, edit, delete, acknowledge, add a contact, change a
//! group) is one of these inside a sealed entry of kind 16, so a carrier cannot tell them apart.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::blob::FileRef;
use crate::codec::{self, Bytes, CodecError};
use crate::identity::{DeviceCert, UserId};
use crate::log::EntryId;

/// Longest message text, in bytes (the entry limit leaves room for sealing overhead).
pub const MAX_TEXT: usize = 32 * 1024;
/// Most members a group may list.
pub const MAX_MEMBERS: usize = 64;

/// A chat: for two people, derived from both user ids; for a group, random at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatId(pub Bytes<16>);

impl ChatId {
    /// The 1:1 chat of two users; the same on both sides.
    pub fn direct(a: &UserId, b: &UserId) -> ChatId {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut h = blake3::Hasher::new_derive_key("libra-chat-direct-v1");
        h.update(lo.as_bytes());
        h.update(hi.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&h.finalize().as_bytes()[..16]);
        ChatId(Bytes(id))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.0)
    }
}

/// A contact as an invite introduces it: a name and certified devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCard {
    pub name: String,
    pub certs: Vec<DeviceCert>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Text {
        chat: ChatId,
        text: String,
        reply_to: Option<EntryId>,
    },
    Edit {
        chat: ChatId,
        target: EntryId,
        text: String,
    },
    Delete {
        chat: ChatId,
        target: EntryId,
    },
    /// Delivered (and read, when `read`) acknowledgements of messages in one chat.
    Ack {
        chat: ChatId,
        targets: Vec<EntryId>,
        read: bool,
    },
    /// Sealed to own devices only: this user added a contact.
    Contact(ContactCard),
    GroupCreate {
        chat: ChatId,
        name: String,
        members: Vec<UserId>,
    },
    /// Carries the group's name and its full member list after the addition, so a member who
    /// joins later (and cannot open the creation) still knows the group.
    GroupAdd {
        chat: ChatId,
        name: String,
        members: Vec<UserId>,
    },
    GroupLeave {
        chat: ChatId,
    },
    /// A member takes others out of the group (sealed to the members before the removal, so
    /// those removed learn it too).
    GroupRemove {
        chat: ChatId,
        members: Vec<UserId>,
    },
    /// A member gives the group a new name.
    GroupRename {
        chat: ChatId,
        name: String,
    },
    /// A file: its blob's root and key, with a caption (spec/blobs.md).
    File {
        chat: ChatId,
        text: String,
        reply_to: Option<EntryId>,
        file: FileRef,
    },
}

const TEXT: u8 = 1;
const EDIT: u8 = 2;
const DELETE: u8 = 3;
const ACK: u8 = 4;
const CONTACT: u8 = 5;
const GROUP_CREATE: u8 = 6;
const GROUP_ADD: u8 = 7;
const GROUP_LEAVE: u8 = 8;
const GROUP_REMOVE: u8 = 9;
const GROUP_RENAME: u8 = 10;
const FILE: u8 = 11;

fn body<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, CodecError> {
    codec::decode_tagged(bytes)
}

/// Why an opened body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("does not parse: {0}")]
    Parse(#[from] CodecError),
    #[error("unknown body tag {0}")]
    UnknownTag(u8),
    #[error("text longer than {MAX_TEXT} bytes")]
    TooLong,
    #[error("more than {MAX_MEMBERS} members")]
    TooManyMembers,
    #[error("a group name longer than {} bytes", crate::payload::MAX_NAME)]
    NameTooLong,
    #[error("file: {0}")]
    File(String),
}

impl Body {
    pub fn chat(&self) -> Option<ChatId> {
        match self {
            Body::Text { chat, .. }
            | Body::Edit { chat, .. }
            | Body::Delete { chat, .. }
            | Body::Ack { chat, .. }
            | Body::GroupCreate { chat, .. }
            | Body::GroupAdd { chat, .. }
            | Body::GroupLeave { chat }
            | Body::GroupRemove { chat, .. }
            | Body::GroupRename { chat, .. }
            | Body::File { chat, .. } => Some(*chat),
            Body::Contact(_) => None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Body::Text { chat, text, reply_to } => codec::encode_tagged(TEXT, &(chat, text, reply_to)),
            Body::Edit { chat, target, text } => codec::encode_tagged(EDIT, &(chat, target, text)),
            Body::Delete { chat, target } => codec::encode_tagged(DELETE, &(chat, target)),
            Body::Ack { chat, targets, read } => codec::encode_tagged(ACK, &(chat, targets, read)),
            Body::Contact(card) => codec::encode_tagged(CONTACT, card),
            Body::GroupCreate { chat, name, members } => codec::encode_tagged(GROUP_CREATE, &(chat, name, members)),
            Body::GroupAdd { chat, name, members } => codec::encode_tagged(GROUP_ADD, &(chat, name, members)),
            Body::GroupLeave { chat } => codec::encode_tagged(GROUP_LEAVE, &(chat,)),
            Body::GroupRemove { chat, members } => codec::encode_tagged(GROUP_REMOVE, &(chat, members)),
            Body::GroupRename { chat, name } => codec::encode_tagged(GROUP_RENAME, &(chat, name)),
            Body::File { chat, text, reply_to, file } => codec::encode_tagged(FILE, &(chat, text, reply_to, file)),
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Body, BodyError> {
        let Some(tag) = codec::peek_tag(bytes) else {
            return Err(BodyError::Parse(CodecError::Malformed("not a [tag, body] pair".into())));
        };
        let b = match tag {
            TEXT => {
                let (chat, text, reply_to): (ChatId, String, Option<EntryId>) = body(bytes)?;
                Body::Text { chat, text, reply_to }
            }
            EDIT => {
                let (chat, target, text): (ChatId, EntryId, String) = body(bytes)?;
                Body::Edit { chat, target, text }
            }
            DELETE => {
                let (chat, target): (ChatId, EntryId) = body(bytes)?;
                Body::Delete { chat, target }
            }
            ACK => {
                let (chat, targets, read): (ChatId, Vec<EntryId>, bool) = body(bytes)?;
                Body::Ack { chat, targets, read }
            }
            CONTACT => Body::Contact(body(bytes)?),
            GROUP_CREATE => {
                let (chat, name, members): (ChatId, String, Vec<UserId>) = body(bytes)?;
                Body::GroupCreate { chat, name, members }
            }
            GROUP_ADD => {
                let (chat, name, members): (ChatId, String, Vec<UserId>) = body(bytes)?;
                Body::GroupAdd { chat, name, members }
            }
            GROUP_LEAVE => {
                let (chat,): (ChatId,) = body(bytes)?;
                Body::GroupLeave { chat }
            }
            GROUP_REMOVE => {
                let (chat, members): (ChatId, Vec<UserId>) = body(bytes)?;
                Body::GroupRemove { chat, members }
            }
            GROUP_RENAME => {
                let (chat, name): (ChatId, String) = body(bytes)?;
                Body::GroupRename { chat, name }
            }
            FILE => {
                let (chat, text, reply_to, file): (ChatId, String, Option<EntryId>, FileRef) = body(bytes)?;
                Body::File { chat, text, reply_to, file }
            }
            t => return Err(BodyError::UnknownTag(t)),
        };
        match &b {
            Body::Text { text, .. } | Body::Edit { text, .. } | Body::File { text, .. } if text.len() > MAX_TEXT => {
                Err(BodyError::TooLong)
            }
            Body::File { file, .. } => file.check().map(|()| b.clone()).map_err(|e| BodyError::File(e.to_string())),
            Body::GroupCreate { members, .. } | Body::GroupAdd { members, .. } | Body::GroupRemove { members, .. }
                if members.len() > MAX_MEMBERS =>
            {
                Err(BodyError::TooManyMembers)
            }
            Body::GroupRename { name, .. } if name.len() > crate::payload::MAX_NAME => Err(BodyError::NameTooLong),
            _ => Ok(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip() {
        let chat = ChatId(Bytes([3; 16]));
        let id = EntryId(Bytes([9; 32]));
        for b in [
            Body::Text { chat, text: "hi".into(), reply_to: Some(id) },
            Body::Edit { chat, target: id, text: "hey".into() },
            Body::Delete { chat, target: id },
            Body::Ack { chat, targets: vec![id, id], read: true },
            Body::Contact(ContactCard { name: "n".into(), certs: vec![] }),
            Body::GroupCreate { chat, name: "g".into(), members: vec![UserId(Bytes([1; 32]))] },
            Body::GroupAdd { chat, name: "g".into(), members: vec![] },
            Body::GroupLeave { chat },
            Body::GroupRemove { chat, members: vec![UserId(Bytes([2; 32]))] },
            Body::GroupRename { chat, name: "h".into() },
            Body::File { chat, text: "look".into(), reply_to: None, file: file_ref("a.png") },
        ] {
            assert_eq!(Body::decode(&b.encode()), Ok(b));
        }
        assert_eq!(Body::decode(&codec::encode_tagged(99, &())), Err(BodyError::UnknownTag(99)));
        let long = Body::Text { chat, text: "x".repeat(MAX_TEXT + 1), reply_to: None };
        assert_eq!(Body::decode(&long.encode()), Err(BodyError::TooLong));
        let path = Body::File { chat, text: String::new(), reply_to: None, file: file_ref("../etc/passwd") };
        assert!(matches!(Body::decode(&path.encode()), Err(BodyError::File(_))));
    }

    fn file_ref(name: &str) -> FileRef {
        FileRef {
            name: name.into(),
            size: 5,
            media_type: "image/png".into(),
            root: Bytes([4; 32]),
            key: Bytes([5; 32]),
        }
    }

    #[test]
    fn limits_are_the_specified_ones() {
        // spec/messaging.md §5.2.
        assert_eq!((MAX_TEXT, MAX_MEMBERS, crate::payload::MAX_NAME), (32_768, 64, 64));
    }

    #[test]
    fn each_limit_holds_at_its_edge() {
        let chat = ChatId(Bytes([3; 16]));
        let id = EntryId(Bytes([9; 32]));
        let at = "x".repeat(MAX_TEXT);
        let past = "x".repeat(MAX_TEXT + 1);
        let file = |text: &str| Body::File { chat, text: text.into(), reply_to: None, file: file_ref("a.png") };
        for (ok, too_long) in [
            (
                Body::Text { chat, text: at.clone(), reply_to: None },
                Body::Text { chat, text: past.clone(), reply_to: None },
            ),
            (Body::Edit { chat, target: id, text: at.clone() }, Body::Edit { chat, target: id, text: past.clone() }),
            (file(&at), file(&past)),
        ] {
            assert_eq!(Body::decode(&ok.encode()), Ok(ok));
            assert_eq!(Body::decode(&too_long.encode()), Err(BodyError::TooLong));
        }
        let users = |n: usize| (0..n).map(|i| UserId(Bytes([i as u8; 32]))).collect::<Vec<_>>();
        for make in [
            |chat, members| Body::GroupCreate { chat, name: "g".into(), members },
            |chat, members| Body::GroupAdd { chat, name: "g".into(), members },
            |chat, members| Body::GroupRemove { chat, members },
        ] {
            let ok = make(chat, users(MAX_MEMBERS));
            assert_eq!(Body::decode(&ok.encode()), Ok(ok));
            assert_eq!(Body::decode(&make(chat, users(MAX_MEMBERS + 1)).encode()), Err(BodyError::TooManyMembers));
        }
        let name = |n: usize| Body::GroupRename { chat, name: "n".repeat(n) };
        let ok = name(crate::payload::MAX_NAME);
        assert_eq!(Body::decode(&ok.encode()), Ok(ok));
        assert_eq!(Body::decode(&name(crate::payload::MAX_NAME + 1).encode()), Err(BodyError::NameTooLong));
        // Names elsewhere are bounded only by the payload (spec/messaging.md §5.2).
        let long = Body::GroupCreate { chat, name: "n".repeat(1000), members: vec![] };
        assert_eq!(Body::decode(&long.encode()), Ok(long));
    }

    #[test]
    fn what_is_not_a_body_is_refused_with_its_reason() {
        for junk in [&[][..], &[0x92], &[0x91, 0x01], &[0x92, 0xcc, 0x01, 0xc0]] {
            assert!(matches!(Body::decode(junk), Err(BodyError::Parse(_))), "{junk:02x?}");
        }
        assert_eq!(Body::decode(&codec::encode_tagged(0, &())), Err(BodyError::UnknownTag(0)));
        assert_eq!(Body::decode(&codec::encode_tagged(12, &())), Err(BodyError::UnknownTag(12)));
        // The right tag with another tag's fields.
        let delete = codec::encode_tagged(TEXT, &(ChatId(Bytes([3; 16])), EntryId(Bytes([9; 32]))));
        assert!(matches!(Body::decode(&delete), Err(BodyError::Parse(_))));
    }

    #[test]
    fn every_body_but_a_contact_names_its_chat() {
        let chat = ChatId(Bytes([3; 16]));
        let id = EntryId(Bytes([9; 32]));
        for b in [
            Body::Text { chat, text: String::new(), reply_to: None },
            Body::Edit { chat, target: id, text: String::new() },
            Body::Delete { chat, target: id },
            Body::Ack { chat, targets: vec![], read: false },
            Body::GroupCreate { chat, name: String::new(), members: vec![] },
            Body::GroupAdd { chat, name: String::new(), members: vec![] },
            Body::GroupLeave { chat },
            Body::GroupRemove { chat, members: vec![] },
            Body::GroupRename { chat, name: String::new() },
            Body::File { chat, text: String::new(), reply_to: None, file: file_ref("a") },
        ] {
            assert_eq!(b.chat(), Some(chat), "{b:?}");
        }
        assert_eq!(Body::Contact(ContactCard { name: "n".into(), certs: vec![] }).chat(), None);
        assert_eq!(chat.to_hex(), "03".repeat(16));
    }

    #[test]
    fn direct_chat_ids_are_symmetric() {
        let (a, b) = (UserId(Bytes([1; 32])), UserId(Bytes([2; 32])));
        assert_eq!(ChatId::direct(&a, &b), ChatId::direct(&b, &a));
        assert_ne!(ChatId::direct(&a, &b), ChatId::direct(&a, &a));
        // The lower id first (spec/messaging.md §6).
        let mut h = blake3::Hasher::new_derive_key("libra-chat-direct-v1");
        h.update(&[1; 32]);
        h.update(&[2; 32]);
        assert_eq!(ChatId::direct(&b, &a).0.0[..], h.finalize().as_bytes()[..16]);
    }
}
