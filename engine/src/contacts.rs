//! Who a person means: resolving what the user typed (a name, a short id, a full id, a chat id)
//! to exactly one contact or group, never guessing between two; the user's own names for
//! contacts; safety numbers and verification; contacts that introduced themselves.
//!
//! Names are chosen by their owners and prove nothing: a name that fits two contacts (or a
//! contact and a group) is refused with the candidates listed (spec/messaging.md, "Addressing
//! contacts").

use std::collections::BTreeMap;

use crate::codec::Bytes;
use crate::identity::{DeviceId, UserId, safety_number};
use crate::log::EntryId;
use crate::messaging::{Body, ChatId};
use crate::messenger::{ChatTarget, MessengerError};
use crate::node::{Node, NodeError};
use crate::payload::MAX_NAME;
use crate::store::{ChatKind, ContactState};

/// Fewest characters of a short id's body (after `lu:`) that select a contact.
pub const MIN_SHORT_ID: usize = 4;
/// Fewest hex digits of a chat id that select a chat.
const MIN_CHAT_ID_HEX: usize = 6;

/// A contact as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactView {
    pub user: UserId,
    /// The user's own name for it if they gave one, else the name it chose.
    pub name: String,
    pub devices: usize,
    pub state: ContactState,
}

impl ContactView {
    /// How it is told apart where names collide: "Bob (lu:abcd-…, verified)".
    pub fn describe(&self) -> String {
        let mut tags = vec![self.user.short()];
        if self.state.verified {
            tags.push("verified".into());
        }
        if self.state.introduced {
            tags.push("new: introduced itself with your invite".into());
        }
        format!("{} ({})", self.name, tags.join(", "))
    }
}

impl Node {
    /// Every contact, with its state.
    pub fn contact_views(&self) -> Result<Vec<ContactView>, MessengerError> {
        let mut out = Vec::new();
        for (user, card) in self.store.contacts()? {
            let state = self.store.contact_state(&user)?;
            out.push(ContactView { user, name: card.name, devices: card.certs.len(), state });
        }
        Ok(out)
    }

    /// The name to show for `user`: the contact's (or our alias for it), "me", or its short id.
    pub fn display_name(&self, user: &UserId) -> String {
        if Some(*user) == self.user_id() {
            return "me".into();
        }
        self.store
            .contacts()
            .ok()
            .and_then(|cs| cs.into_iter().find(|(c, _)| c == user).map(|(_, card)| card.name))
            .unwrap_or_else(|| user.short())
    }

    /// Every contact's name as shown, in one pass over the contacts: where two contacts have
    /// the same name, each is told apart by its short id, and "unverified" unless verified.
    pub fn distinct_names(&self) -> BTreeMap<UserId, String> {
        let views = self.contact_views().unwrap_or_default();
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for c in &views {
            *count.entry(c.name.to_lowercase()).or_default() += 1;
        }
        views
            .into_iter()
            .map(|c| {
                let shown = if count.get(&c.name.to_lowercase()).copied().unwrap_or(0) > 1 {
                    let unverified = if c.state.verified { "" } else { ", unverified" };
                    format!("{} ({}{unverified})", c.name, c.user.short())
                } else {
                    c.name
                };
                (c.user, shown)
            })
            .collect()
    }

    /// [`Node::display_name`], told apart where another contact has the same name (see
    /// [`Node::distinct_names`]; callers naming many people take that map once).
    pub fn distinct_name(&self, user: &UserId) -> String {
        self.distinct_names().remove(user).unwrap_or_else(|| self.display_name(user))
    }

    /// Resolves what the user typed to one chat: a full user id, a contact's short id (`lu:`
    /// and at least [`MIN_SHORT_ID`] characters, dashes optional), a contact's or group's name
    /// (case-insensitive), or a chat id's first hex digits. More than one match is an error
    /// that lists them.
    pub fn chat(&self, name: &str) -> Result<ChatTarget, MessengerError> {
        let me = self.user_id().ok_or_else(|| MessengerError::UnknownChat(name.to_owned()))?;
        let q = name.trim();
        let contacts = self.contact_views()?;
        let direct = |c: &ContactView| ChatTarget {
            chat: ChatId::direct(&me, &c.user),
            users: vec![c.user],
            title: c.name.clone(),
        };
        if let Ok(u) = UserId::parse(q) {
            let title = contacts.iter().find(|c| c.user == u).map_or_else(|| u.short(), |c| c.name.clone());
            return Ok(ChatTarget { chat: ChatId::direct(&me, &u), users: vec![u], title });
        }
        if let Some(want) = short_id_query(q) {
            let want = want?;
            let hits: Vec<&ContactView> = contacts.iter().filter(|c| short_id_matches(&c.user, &want)).collect();
            return match hits.as_slice() {
                [] => Err(MessengerError::UnknownChat(name.to_owned())),
                [c] => Ok(direct(c)),
                many => Err(ambiguous(q, many.iter().map(|c| c.describe()).collect())),
            };
        }
        let mut hits: Vec<(String, ChatTarget)> = contacts
            .iter()
            .filter(|c| c.name.to_lowercase() == q.to_lowercase())
            .map(|c| (c.describe(), direct(c)))
            .collect();
        let hex = q.to_ascii_lowercase();
        let by_id = hex.len() >= MIN_CHAT_ID_HEX && hex.bytes().all(|b| b.is_ascii_hexdigit());
        for summary in self.store.chats()? {
            let id_hit = by_id && summary.chat.to_hex().starts_with(&hex);
            match summary.kind {
                ChatKind::Group { name: g, members } if id_hit || g.to_lowercase() == q.to_lowercase() => {
                    let what = format!("group {g} (chat {})", &summary.chat.to_hex()[..8]);
                    hits.push((what, ChatTarget { chat: summary.chat, users: members, title: g }));
                }
                ChatKind::Direct(Some(u)) if id_hit && !hits.iter().any(|(_, t)| t.chat == summary.chat) => {
                    let title = self.display_name(&u);
                    hits.push((
                        format!("{title} ({})", u.short()),
                        ChatTarget { chat: summary.chat, users: vec![u], title },
                    ));
                }
                _ => {}
            }
        }
        match hits.len() {
            0 => Err(MessengerError::UnknownChat(name.to_owned())),
            1 => Ok(hits.remove(0).1),
            _ => Err(ambiguous(q, hits.into_iter().map(|(d, _)| d).collect())),
        }
    }

    /// The one contact `who` names (see [`Node::chat`]).
    pub fn contact(&self, who: &str) -> Result<UserId, MessengerError> {
        let t = self.chat(who)?;
        match t.users.as_slice() {
            [u] if self.store.contacts()?.iter().any(|(c, _)| c == u) => Ok(*u),
            _ => Err(MessengerError::NotAContact(who.to_owned())),
        }
    }

    /// Gives a contact the user's own name for it (a new contact card in our log, sealed to
    /// our devices only; the contact never sees it).
    pub fn rename_contact(&mut self, user: &UserId, name: &str) -> Result<(), MessengerError> {
        check_name(name)?;
        let mut card = self
            .store
            .contacts()?
            .into_iter()
            .find(|(c, _)| c == user)
            .map(|(_, card)| card)
            .ok_or_else(|| MessengerError::NotAContact(user.short()))?;
        card.name = name.to_owned();
        self.say(&Body::Contact(card), &[])?;
        Ok(())
    }

    /// The safety number of us and `user` (the same on both sides).
    pub fn safety_number_with(&self, user: &UserId) -> Result<String, MessengerError> {
        let me = self.user_id().ok_or_else(|| MessengerError::NotAContact(user.short()))?;
        Ok(safety_number(&me, user))
    }

    /// Marks a contact verified (the user compared the safety number) or not.
    pub fn set_verified(&mut self, user: &UserId, verified: bool) -> Result<(), MessengerError> {
        let mut s = self.store.contact_state(user)?;
        s.verified = verified;
        self.store.set_contact_state(user, s)?;
        Ok(())
    }

    /// Accepts a contact that introduced itself: it is no longer shown as new.
    pub fn accept_contact(&mut self, user: &UserId) -> Result<(), MessengerError> {
        let mut s = self.store.contact_state(user)?;
        s.introduced = false;
        self.store.set_contact_state(user, s)?;
        Ok(())
    }

    /// Blocks a contact (or unblocks it): its devices leave (or rejoin) the allow-list, so
    /// they cannot connect and get nothing from us; its direct chat is hidden and refuses
    /// sending. Local to this device, like the rest of the contact state.
    /// Returns the contact's devices (a running engine ends their sessions: `Engine::disconnect`).
    pub fn set_blocked(&mut self, user: &UserId, blocked: bool) -> Result<Vec<[u8; 32]>, MessengerError> {
        if !self.store.contacts()?.iter().any(|(u, _)| u == user) {
            return Err(MessengerError::NotAContact(user.short()));
        }
        let mut s = self.store.contact_state(user)?;
        s.blocked = blocked;
        self.store.set_contact_state(user, s)?;
        let mut devices = Vec::new();
        for c in self.device_certs(user)? {
            let key = c.body.device.as_bytes();
            let mut rec = self.store.peer(key)?.unwrap_or_default();
            rec.allowed = !blocked;
            self.store.set_peer(key, &rec, true)?;
            devices.push(*key);
        }
        Ok(devices)
    }

    /// Refuses to edit or delete a message this user did not write.
    pub(crate) fn check_own_message(&self, target: &EntryId) -> Result<(), MessengerError> {
        let unknown = || MessengerError::UnknownMessage(target.to_hex()[..8].to_owned());
        let e = self.store.get(target)?.ok_or_else(unknown)?;
        let author = DeviceId(Bytes(e.header().author.0));
        if self.store.trust().owner_of(&author) != self.user_id() || self.user_id().is_none() {
            return Err(MessengerError::NotYourMessage);
        }
        Ok(())
    }
}

/// A name the user gives (their own, or a contact's): 1 to [`MAX_NAME`] bytes, nothing that
/// acts on a terminal or hides itself.
impl Node {
    /// Changes the user's own display name: a Profile entry in the user log (spec/identity.md),
    /// which contacts receive with the log. Needs the user key on this device. Contacts keep
    /// showing the name they gave us, if they gave one.
    pub fn set_name(&mut self, name: &str) -> Result<(), MessengerError> {
        check_name(name)?;
        let Some(user) = self.secrets.user.as_ref() else { return Err(MessengerError::NoUserKey) };
        // Only the device that created the identity writes the user log: one restored from the
        // phrase may not hold its head, and a second writer would fork it (spec/devices.md).
        if !self.creates_user_log()? {
            return Err(MessengerError::NoUserKey);
        }
        let signing = user.signing.clone();
        let payload = crate::payload::Payload::Profile(crate::payload::Profile { name: name.to_owned() });
        self.store.append(&signing, vec![payload.encoded()], crate::clock::wall_ms()).map_err(NodeError::from)?;
        Ok(())
    }
}

impl Node {
    /// Whether this device is the one `libra init` created with the identity: the user log's
    /// certificate at seq 2 names it.
    fn creates_user_log(&self) -> Result<bool, MessengerError> {
        let Some(user) = self.user_id() else { return Ok(false) };
        let Some(e) = self.store.get_at(user.as_bytes(), 2).map_err(NodeError::from)? else { return Ok(false) };
        let cert = e.payload.as_deref().and_then(|p| crate::payload::Payload::decode(e.header().kind, p).ok());
        Ok(matches!(cert, Some(crate::payload::Payload::DeviceCert(c)) if c.cert.body.device == self.device_id()))
    }
}

/// What a short id the user typed (`lu:` and at least [`MIN_SHORT_ID`] characters, dashes
/// optional) asks for, ready for [`short_id_matches`]; `None` when `q` is not one.
pub fn short_id_query(q: &str) -> Option<Result<String, MessengerError>> {
    let rest = q.get(..3).filter(|p| p.eq_ignore_ascii_case("lu:")).map(|_| &q[3..])?;
    let want: String = rest.chars().filter(|c| *c != '-').collect::<String>().to_ascii_lowercase();
    Some(if want.len() < MIN_SHORT_ID { Err(MessengerError::ShortIdTooShort(MIN_SHORT_ID)) } else { Ok(want) })
}

/// Whether `user`'s id starts with what [`short_id_query`] gave.
pub fn short_id_matches(user: &UserId, want: &str) -> bool {
    user.to_string()[2..].starts_with(want)
}

pub fn check_name(name: &str) -> Result<(), MessengerError> {
    if name.trim().is_empty() || name.len() > MAX_NAME || name.chars().any(crate::text::is_unsafe_char) {
        return Err(MessengerError::BadName(MAX_NAME));
    }
    Ok(())
}

/// The names in it are others' choices: escaped for a terminal here (errors are printed as
/// they are).
fn ambiguous(name: &str, candidates: Vec<String>) -> MessengerError {
    let candidates: Vec<String> = candidates.iter().map(|c| crate::text::for_terminal(c)).collect();
    MessengerError::Ambiguous { name: crate::text::for_terminal(name), candidates: candidates.join("; ") }
}
