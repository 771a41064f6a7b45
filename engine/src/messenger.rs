//! What a person does with Libra, on top of a node: invites, contacts, chats, messages, groups,
//! acknowledgements. Every action is one sealed entry in this device's log.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::codec::{self, Bytes};
use crate::identity::{DeviceCert, DeviceId, UserId};
use crate::log::{Entry, EntryId, MAX_PAYLOAD};
use crate::messaging::body::MAX_TEXT;
use crate::messaging::{Body, ChatId, ContactCard, SealRandom, aad, seal};
use crate::node::{Node, NodeError};
use crate::payload::KIND_SEALED;
use crate::store::{InviteRecord, MAX_INVITE_USES, NewMessage, PeerRecord};
use crate::text;

/// Most messages one acknowledgement names (≈ 35 KiB sealed, well inside an entry).
pub const ACK_BATCH: usize = 1000;
/// Most devices an invite may list.
pub const MAX_INVITE_DEVICES: usize = 16;
const INVITE_PREFIX: &str = "libra:";

/// What `libra invite` prints (as text, and as a QR code of the same text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub version: u8,
    pub card: ContactCard,
    /// Present only when the user asked to include it.
    pub address: Option<String>,
    /// Lets the holder introduce itself on first contact, so we add it back (one-sided adds
    /// become mutual). Valid for [`INVITE_VALIDITY_MS`].
    pub token: Option<Bytes<16>>,
}

/// How long an invite's introduction token stays valid.
pub const INVITE_VALIDITY_MS: u64 = 7 * 24 * 3600 * 1000;

/// Why a messaging action was refused.
#[derive(Debug, thiserror::Error)]
pub enum MessengerError {
    #[error("not a Libra invite: {0}")]
    BadInvite(String),
    #[error("that is your own invite")]
    OwnInvite,
    #[error("an invite allows 1 to {MAX_INVITE_USES} uses, not {0}")]
    BadUses(u32),
    #[error("{0} is blocked (unblock them to write to them)")]
    Blocked(String),
    #[error("this device does not hold the user key (only the device that created the identity can change its name)")]
    NoUserKey,
    #[error("no chat, contact or group called '{0}'")]
    UnknownChat(String),
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLong { size: usize, limit: usize },
    #[error("a group of {size} members exceeds the limit of {limit}")]
    TooManyMembers { size: usize, limit: usize },
    #[error("'{0}' is not a contact")]
    NotAContact(String),
    #[error("no message {0} in this chat")]
    UnknownMessage(String),
    #[error("'{name}' could mean more than one: {candidates}. Use the short id (lu:…) instead")]
    Ambiguous { name: String, candidates: String },
    #[error("give at least {0} characters of the short id after 'lu:'")]
    ShortIdTooShort(usize),
    #[error("you can only edit or delete your own messages")]
    NotYourMessage,
    #[error("a name must be 1 to {0} bytes, without control or invisible characters")]
    BadName(usize),
    #[error("sealing failed: {0}")]
    Seal(#[from] crate::messaging::SealError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Invite {
    pub fn to_text(&self) -> String {
        format!("{INVITE_PREFIX}{}", text::base32(&codec::encode(self)))
    }

    /// The text for a QR code: the same invite in upper case, which QR codes hold in their
    /// compact alphanumeric mode (about a third smaller than as bytes). [`Invite::parse`]
    /// takes either case.
    pub fn to_qr_text(&self) -> String {
        self.to_text().to_ascii_uppercase()
    }

    pub fn parse(s: &str) -> Result<Invite, MessengerError> {
        Invite::from_bytes(&crate::short_invite::invite_bytes(s)?)
    }

    /// The canonical encoding of an invite, checked as [`Invite::parse`] checks a text.
    pub fn from_bytes(bytes: &[u8]) -> Result<Invite, MessengerError> {
        let bad = |m: &str| MessengerError::BadInvite(m.to_owned());
        let inv: Invite = codec::decode(bytes).map_err(|e| bad(&e.to_string()))?;
        if inv.version != 1 {
            return Err(bad("unknown version"));
        }
        let Some(first) = inv.card.certs.first() else { return Err(bad("no devices")) };
        if inv.card.certs.len() > MAX_INVITE_DEVICES || inv.card.name.len() > crate::payload::MAX_NAME {
            return Err(bad("too many devices or name too long"));
        }
        for c in &inv.card.certs {
            c.verify().map_err(|e| bad(&format!("a device certificate is invalid: {e}")))?;
            if c.body.user != first.body.user {
                return Err(bad("devices of different users"));
            }
        }
        Ok(inv)
    }

    /// `card` as the invite `[1, card, nil, nil]`, checked as any invite is: how a card that
    /// arrives in an Introduce (either way) is judged.
    pub fn of_card(card: &ContactCard) -> Result<Invite, MessengerError> {
        Invite::from_bytes(&codec::encode(&Invite { version: 1, card: card.clone(), address: None, token: None }))
    }

    pub fn user(&self) -> UserId {
        self.card.certs.first().map(|c| c.body.user).unwrap_or(UserId(Bytes([0; 32])))
    }
}

/// A sealed payload ready to append, with the plaintext it holds (kept so the projection need
/// not open what this device just sealed).
#[derive(Clone)]
pub struct Sealing {
    pub payload: Vec<u8>,
    pub plaintext: Vec<u8>,
    pub content_key: [u8; 32],
}

/// Acknowledgements to seal (from [`Node::draft_acks`]): each body, its plan, and how many
/// messages it acknowledges; and the first chat that could not be planned.
pub struct AckDrafts {
    drafts: Vec<(Body, SealPlan, Vec<NewMessage>)>,
    /// Messages no draft covers (their chat could not be planned): their points stay.
    left: Vec<NewMessage>,
    first_error: Option<MessengerError>,
}

/// Sealed acknowledgements, to append with [`Node::append_acks`].
pub struct SealedAcks {
    sealings: Vec<Sealing>,
    /// The messages the sealings acknowledge, and those left for a later pass.
    acknowledged: Vec<NewMessage>,
    left: Vec<NewMessage>,
    first_error: Option<MessengerError>,
}

impl AckDrafts {
    /// Seals every draft (needs nothing from the node). One that fails is left out; the
    /// first failure is kept to report if nothing else is acknowledged.
    pub fn seal(self) -> SealedAcks {
        let AckDrafts { drafts, left, mut first_error } = self;
        let mut out = SealedAcks {
            sealings: Vec::with_capacity(drafts.len()),
            acknowledged: Vec::new(),
            left,
            first_error: None,
        };
        for (body, plan, covered) in drafts {
            match plan.seal(&body) {
                Ok(s) => {
                    out.sealings.push(s);
                    out.acknowledged.extend(covered);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    out.left.extend(covered);
                }
            }
        }
        out.first_error = first_error;
        out
    }
}

/// What sealing a body needs from the node (see [`Node::seal_plan`]).
#[derive(Clone)]
pub struct SealPlan {
    recipients: Vec<[u8; 32]>,
    author: DeviceId,
}

impl SealPlan {
    /// The agreement keys sealed to, sorted.
    pub fn recipients(&self) -> &[[u8; 32]] {
        &self.recipients
    }

    /// Seals `body` for the planned recipients.
    pub fn seal(&self, body: &Body) -> Result<Sealing, MessengerError> {
        let plaintext = body.encode();
        let rnd = SealRandom::fresh();
        let sealed = seal(&plaintext, &aad(self.author.as_bytes()), &self.recipients, &rnd)?;
        let payload = sealed.encode();
        if payload.len() > MAX_PAYLOAD as usize {
            return Err(MessengerError::TooLong { size: payload.len(), limit: MAX_PAYLOAD as usize });
        }
        Ok(Sealing { payload, plaintext, content_key: rnd.content_key })
    }
}

/// A chat as the front ends name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTarget {
    pub chat: ChatId,
    /// Users whose devices receive what is said in it (ourselves included).
    pub users: Vec<UserId>,
    pub title: String,
}

impl Node {
    /// Certificates of a user's devices that are trusted now: ours from the trust view, a
    /// contact's from their card and the trust view.
    pub fn device_certs(&self, user: &UserId) -> Result<Vec<DeviceCert>, MessengerError> {
        let mut certs: Vec<DeviceCert> = Vec::new();
        if let Some(rec) = self.store.trust().user(user) {
            certs.extend(rec.devices.values().filter(|d| d.trusted()).filter_map(|d| d.cert.clone()));
        }
        for (u, card) in self.store.contacts()? {
            if u == *user {
                certs.extend(card.certs);
            }
        }
        let revoked: BTreeSet<_> = self
            .store
            .trust()
            .user(user)
            .map(|r| r.devices.iter().filter(|(_, d)| d.revoked).map(|(k, _)| *k).collect())
            .unwrap_or_default();
        let mut seen = BTreeSet::new();
        certs.retain(|c| !revoked.contains(&c.body.device) && seen.insert(c.body.device));
        Ok(certs)
    }

    /// Our own card: name and trusted device certificates.
    pub fn own_card(&self) -> Result<ContactCard, MessengerError> {
        let user = self.me()?;
        Ok(ContactCard { name: self.name().unwrap_or_default(), certs: self.device_certs(&user)? })
    }

    /// A new invite whose token introduces at most `uses` people (1 to [`MAX_INVITE_USES`])
    /// within [`INVITE_VALIDITY_MS`], remembered here.
    pub fn invite(&mut self, address: Option<String>, uses: u32) -> Result<Invite, MessengerError> {
        self.invite_for(address, uses, INVITE_VALIDITY_MS)
    }

    /// [`Node::invite`], valid for `valid_ms` (at most [`INVITE_VALIDITY_MS`]).
    pub fn invite_for(&mut self, address: Option<String>, uses: u32, valid_ms: u64) -> Result<Invite, MessengerError> {
        if uses == 0 || uses > MAX_INVITE_USES {
            return Err(MessengerError::BadUses(uses));
        }
        let user = self.user_id().ok_or(NodeError::Unlinked(self.dir.clone()))?;
        let name = self.name().unwrap_or_default();
        let certs = self.device_certs(&user)?;
        let mut token = [0u8; 16];
        token.copy_from_slice(&crate::identity::random_secret()[..16]);
        let now = clock::wall_ms();
        let expires_ms = now.saturating_add(valid_ms.min(INVITE_VALIDITY_MS));
        let rec = InviteRecord { expires_ms, uses_left: uses, created_ms: now };
        self.store.add_invite(&token, rec)?;
        Ok(Invite { version: 1, card: ContactCard { name, certs }, address, token: Some(Bytes(token)) })
    }

    /// A stranger presented `token` and `card` on connecting: if the token is ours and valid and
    /// the card certifies the connecting device, they become a contact. Returns whether they did.
    pub fn accept_introduction(
        &mut self,
        token: &[u8; 16],
        card: &ContactCard,
        device: &[u8; 32],
    ) -> Result<bool, MessengerError> {
        if !self.store.invite_token_valid(token, clock::wall_ms())? {
            return Ok(false);
        }
        // Re-check the card as an invite would be checked, and that it names the device.
        let invite = Invite::of_card(card)?;
        if !invite.card.certs.iter().any(|c| c.body.device.as_bytes() == device) {
            return Ok(false);
        }
        // A blocked contact cannot come back through an invite it still holds.
        if self.store.contact_state(&invite.user())?.blocked {
            return Ok(false);
        }
        // One use of the invite goes, durably, before anyone is added: a single-use invite
        // introduces one person however many hold it.
        if !self.store.use_invite(token, clock::wall_ms())? {
            return Ok(false);
        }
        let known = self.store.contacts()?.iter().any(|(u, _)| *u == invite.user());
        self.add_contact(&invite, None)?;
        if !known {
            // Anyone holding the invite could be this: shown as new until the user accepts it.
            let mut state = self.store.contact_state(&invite.user())?;
            state.introduced = true;
            self.store.set_contact_state(&invite.user(), state)?;
        }
        Ok(true)
    }

    fn me(&self) -> Result<UserId, MessengerError> {
        Ok(self.user_id().ok_or(NodeError::Unlinked(self.dir.clone()))?)
    }

    /// Seals `body` for the devices of `users` and ours: the payload of a sealed entry. Needs
    /// only read access, so callers can seal in parallel and append in one group.
    pub fn seal_body(&self, body: &Body, users: &[UserId]) -> Result<Sealing, MessengerError> {
        self.seal_plan(users)?.seal(body)
    }

    /// Whom a body for `users` is sealed to, and as whom: read from the node, so that the
    /// sealing itself (three key agreements) can run without holding it.
    pub fn seal_plan(&self, users: &[UserId]) -> Result<SealPlan, MessengerError> {
        let me = self.me()?;
        // Every card is decoded to find a user's devices: kept until trust or a card changes.
        let known = self.interest.recipients(self.store.interest_generation(), users, || {
            let mut keys: BTreeSet<[u8; 32]> = BTreeSet::new();
            for u in users.iter().chain(std::iter::once(&me)) {
                keys.extend(self.device_certs(u)?.iter().map(|c| self.store.trust().agreement_of(c)));
            }
            Ok::<_, MessengerError>(keys.into_iter().collect())
        })?;
        let mut keys: BTreeSet<[u8; 32]> = known.into_iter().collect();
        keys.insert(self.secrets.device.agreement_public());
        Ok(SealPlan { recipients: keys.into_iter().collect(), author: self.device_id() })
    }

    /// Appends a sealed payload (from [`Node::seal_body`]) to this device's log.
    pub fn append_sealed(&mut self, sealing: Sealing) -> Result<Entry, MessengerError> {
        let Sealing { payload, plaintext, content_key } = sealing;
        self.store.note_plaintext(&payload, plaintext, content_key);
        let mut out = self
            .store
            .append(&self.secrets.device.signing, vec![(KIND_SEALED, payload)], clock::wall_ms())
            .map_err(NodeError::from)?;
        out.pop().ok_or_else(|| MessengerError::Node(NodeError::Unlinked(self.dir.clone())))
    }

    /// Signs entries for sealed payloads without storing them (reads only: the engine runs it
    /// under the read lock); [`Node::append_presigned`] stores them.
    pub fn sign_sealed_many<'a>(
        &self,
        sealings: impl IntoIterator<Item = &'a Sealing>,
    ) -> Result<crate::store::Signed, MessengerError> {
        let items = sealings.into_iter().map(|s| (KIND_SEALED, s.payload.clone())).collect();
        Ok(self.store.sign_append(&self.secrets.device.signing, items, clock::wall_ms()).map_err(NodeError::from)?)
    }

    /// Stores what [`Node::sign_sealed_many`] signed for `sealings`, in one commit; signs them
    /// again here if our log (or the clock) moved since.
    pub fn append_presigned(
        &mut self,
        sealings: Vec<Sealing>,
        signed: crate::store::Signed,
    ) -> Result<Vec<Entry>, MessengerError> {
        if !self.store.is_fresh(&signed) {
            return self.append_sealed_many(sealings);
        }
        for Sealing { payload, plaintext, content_key } in sealings {
            self.store.note_plaintext(&payload, plaintext, content_key);
        }
        let stored = self.store.append_signed(signed).map_err(NodeError::from)?;
        stored.ok_or_else(|| {
            MessengerError::Node(NodeError::Store(crate::store::StoreError::Corrupt(
                "a fresh signing went stale".into(),
            )))
        })
    }

    /// Appends sealed payloads to this device's log in one batch (one commit), in order.
    pub fn append_sealed_many(&mut self, sealings: Vec<Sealing>) -> Result<Vec<Entry>, MessengerError> {
        let mut items = Vec::with_capacity(sealings.len());
        for Sealing { payload, plaintext, content_key } in sealings {
            self.store.note_plaintext(&payload, plaintext, content_key);
            items.push((KIND_SEALED, payload));
        }
        Ok(self.store.append(&self.secrets.device.signing, items, clock::wall_ms()).map_err(NodeError::from)?)
    }

    /// Seals `body` for the devices of `users` and ours, and appends it to this device's log.
    pub fn say(&mut self, body: &Body, users: &[UserId]) -> Result<Entry, MessengerError> {
        let payload = self.seal_body(body, users)?;
        self.append_sealed(payload)
    }

    /// The body of a text message, checked.
    pub fn text_body(chat: &ChatTarget, text: &str, reply_to: Option<EntryId>) -> Result<Body, MessengerError> {
        Self::check_text(text)?;
        Ok(Body::Text { chat: chat.chat, text: text.to_owned(), reply_to })
    }

    /// Adds a contact from an invite: a sealed note to our own devices, and their devices
    /// allowed to sync with us (with the invite's address, if any, to dial).
    pub fn add_contact(&mut self, invite: &Invite, name: Option<&str>) -> Result<UserId, MessengerError> {
        let user = invite.user();
        if user == self.me()? {
            if invite.card.certs.iter().all(|c| c.body.device == self.device_id()) {
                return Err(MessengerError::OwnInvite);
            }
            // Our own invite, made on another of our devices (one restored from the phrase,
            // which nobody knows yet): its certificates are signed by our user key, so its
            // devices may sync with us. We carry each new certificate in our log, so contacts
            // learn the device from us. No contact is added.
            for cert in &invite.card.certs {
                let known = self.store.trust().user(&user).and_then(|r| r.devices.get(&cert.body.device));
                if known.is_none_or(|d| d.cert.is_none()) {
                    let payload =
                        crate::payload::Payload::DeviceCert(crate::payload::DeviceCertPayload { cert: cert.clone() });
                    self.append_device(&payload)?;
                }
            }
            self.allow_card(invite)?;
            return Ok(user);
        }
        let mut card = invite.card.clone();
        if let Some(n) = name {
            crate::contacts::check_name(n)?;
            card.name = n.to_owned();
        }
        self.say(&Body::Contact(card), &[])?;
        // Adding someone again is taking them back.
        let mut state = self.store.contact_state(&user)?;
        if state.blocked {
            state.blocked = false;
            self.store.set_contact_state(&user, state)?;
        }
        self.allow_card(invite)?;
        Ok(user)
    }

    /// Allows the devices an invite's card certifies, with its address and token.
    fn allow_card(&mut self, invite: &Invite) -> Result<(), MessengerError> {
        for c in &invite.card.certs {
            let mut rec = self.store.peer(c.body.device.as_bytes())?.unwrap_or_default();
            rec.allowed = true;
            if let Some(a) = &invite.address {
                rec.remember_address(a, crate::store::AddressSource::Invite);
            }
            if invite.token.is_some() {
                rec.intro_token = invite.token;
            }
            self.store.set_peer(c.body.device.as_bytes(), &rec, true)?;
        }
        Ok(())
    }

    fn check_text(text: &str) -> Result<(), MessengerError> {
        if text.len() > MAX_TEXT {
            return Err(MessengerError::TooLong { size: text.len(), limit: MAX_TEXT });
        }
        Ok(())
    }

    /// Sends a message: appended locally at once ("sent"); sync delivers it whenever any path
    /// reaches a recipient.
    /// Refuses writing to the direct chat of a blocked contact (whichever path sends).
    pub fn check_writable(&self, chat: &ChatTarget) -> Result<(), MessengerError> {
        let me = self.me()?;
        if let [other] = chat.users.iter().filter(|u| **u != me).collect::<Vec<_>>()[..]
            && ChatId::direct(&me, other) == chat.chat
            && self.store.contact_state(other)?.blocked
        {
            return Err(MessengerError::Blocked(chat.title.clone()));
        }
        Ok(())
    }

    pub fn send(&mut self, chat: &ChatTarget, text: &str, reply_to: Option<EntryId>) -> Result<Entry, MessengerError> {
        Self::check_text(text)?;
        self.check_writable(chat)?;
        self.say(&Body::Text { chat: chat.chat, text: text.to_owned(), reply_to }, &chat.users)
    }

    pub fn edit(&mut self, chat: &ChatTarget, target: EntryId, text: &str) -> Result<Entry, MessengerError> {
        Self::check_text(text)?;
        self.check_own_message(&target)?;
        self.say(&Body::Edit { chat: chat.chat, target, text: text.to_owned() }, &chat.users)
    }

    pub fn delete(&mut self, chat: &ChatTarget, target: EntryId) -> Result<Entry, MessengerError> {
        self.check_own_message(&target)?;
        self.say(&Body::Delete { chat: chat.chat, target }, &chat.users)
    }

    fn check_members(n: usize) -> Result<(), MessengerError> {
        let limit = crate::messaging::body::MAX_MEMBERS;
        if n > limit {
            return Err(MessengerError::TooManyMembers { size: n, limit });
        }
        Ok(())
    }

    pub fn group_create(&mut self, name: &str, members: &[UserId]) -> Result<ChatTarget, MessengerError> {
        // The same rules as a rename: every member's screen shows the name.
        crate::contacts::check_name(name)?;
        Self::check_members(members.len())?;
        let chat = ChatId(Bytes(crate::identity::random_secret()[..16].try_into().unwrap_or([0; 16])));
        self.say(&Body::GroupCreate { chat, name: name.to_owned(), members: members.to_vec() }, members)?;
        Ok(ChatTarget { chat, users: members.to_vec(), title: name.to_owned() })
    }

    pub fn group_add(&mut self, chat: &ChatTarget, members: &[UserId]) -> Result<(), MessengerError> {
        let mut all: Vec<UserId> = chat.users.iter().chain(members).copied().collect();
        all.sort();
        all.dedup();
        Self::check_members(all.len())?;
        self.say(&Body::GroupAdd { chat: chat.chat, name: chat.title.clone(), members: all.clone() }, &all)?;
        Ok(())
    }

    pub fn group_leave(&mut self, chat: &ChatTarget) -> Result<(), MessengerError> {
        self.say(&Body::GroupLeave { chat: chat.chat }, &chat.users)?;
        Ok(())
    }

    /// Takes `members` out of a group (told to everyone in it, those removed included).
    pub fn group_remove(&mut self, chat: &ChatTarget, members: &[UserId]) -> Result<(), MessengerError> {
        let me = self.me()?;
        let (_, current) =
            self.store.group(&chat.chat)?.ok_or_else(|| MessengerError::UnknownChat(chat.title.clone()))?;
        if let Some(outside) = members.iter().find(|m| !current.contains(m) || **m == me) {
            return Err(MessengerError::NotAContact(format!(
                "{} is not another member of {}",
                outside.short(),
                chat.title
            )));
        }
        self.say(&Body::GroupRemove { chat: chat.chat, members: members.to_vec() }, &current)?;
        Ok(())
    }

    /// Gives a group a new name (for every member).
    pub fn group_rename(&mut self, chat: &ChatTarget, name: &str) -> Result<(), MessengerError> {
        crate::contacts::check_name(name)?;
        if self.store.group(&chat.chat)?.is_none() {
            return Err(MessengerError::UnknownChat(chat.title.clone()));
        }
        self.say(&Body::GroupRename { chat: chat.chat, name: name.to_owned() }, &chat.users)?;
        Ok(())
    }

    /// Acknowledges every message from others that this device has not acknowledged yet: sealed
    /// acks per chat and author (at most [`ACK_BATCH`] targets each), to the author's devices
    /// and ours. Returns how many messages were acknowledged.
    pub fn acknowledge(&mut self) -> Result<usize, MessengerError> {
        let pending = self.store.take_new_messages();
        self.send_acks(pending)
    }

    /// What [`Node::acknowledge`] would seal, taken (as it takes them) but not sealed: the
    /// engine seals the drafts without holding the node, so that nobody reading it waits behind
    /// three key agreements per ack, then appends them with [`Node::append_acks`].
    pub fn draft_acks(&mut self) -> AckDrafts {
        let pending = self.store.take_new_messages();
        self.ack_drafts(pending)
    }

    /// Appends sealed acks (from [`AckDrafts::seal`]) in one batch; how many messages they
    /// acknowledge.
    pub fn append_acks(&mut self, sealed: SealedAcks) -> Result<usize, MessengerError> {
        self.append_acks_settling(sealed, BTreeMap::new())
    }

    /// [`Node::append_acks`], then moves the acknowledgement points past what is now
    /// acknowledged (spec/messaging.md, section 10.4). A log's point moves only if the pass
    /// covered its log from the point on: from the least seq it took of that log, or from
    /// `from` (a pass that read the logs from their points).
    fn append_acks_settling(
        &mut self,
        sealed: SealedAcks,
        from: BTreeMap<[u8; 32], u64>,
    ) -> Result<usize, MessengerError> {
        let SealedAcks { sealings, acknowledged, left, first_error } = sealed;
        let count = acknowledged.len();
        if !sealings.is_empty() {
            self.append_sealed_many(sealings)?;
        }
        let mut covered = from;
        for m in acknowledged.iter().chain(&left) {
            let at = covered.entry(m.log).or_insert(m.seq);
            *at = (*at).min(m.seq);
        }
        if let Err(e) = self.store.settle_ack_points(&covered, &left) {
            // The acks are stored; a point left behind only acknowledges them again later.
            tracing::warn!(error = %e, "could not move the acknowledgement points");
        }
        match (count, first_error) {
            (0, Some(e)) => Err(e),
            _ => Ok(count),
        }
    }

    fn ack_drafts(&self, mut pending: Vec<NewMessage>) -> AckDrafts {
        pending.sort_by_key(|m| (m.chat, m.user));
        let mut drafts = AckDrafts { drafts: Vec::new(), left: Vec::new(), first_error: None };
        for group in pending.chunk_by(|a, b| a.chat == b.chat && a.user == b.user) {
            let Some(user) = group[0].user else { continue };
            // One chat failing must not hold back the others.
            let plan = match self.seal_plan(&[user]) {
                Ok(p) => p,
                Err(e) => {
                    drafts.first_error.get_or_insert(e);
                    drafts.left.extend_from_slice(group);
                    continue;
                }
            };
            for part in group.chunks(ACK_BATCH) {
                let targets: Vec<EntryId> = part.iter().map(|m| m.id).collect();
                let body = Body::Ack { chat: part[0].chat, targets, read: false };
                drafts.drafts.push((body, plan.clone(), part.to_vec()));
            }
        }
        drafts
    }

    /// Acknowledges what a crash or restart may have left unacknowledged.
    pub fn acknowledge_all(&mut self) -> Result<usize, MessengerError> {
        // What is stored since the last pass is behind a point too: read from the logs.
        self.store.take_new_messages();
        let missing = self.store.unacknowledged()?;
        let points = self.store.ack_points();
        let sealed = self.ack_drafts(missing).seal();
        self.append_acks_settling(sealed, points)
    }

    fn send_acks(&mut self, pending: Vec<NewMessage>) -> Result<usize, MessengerError> {
        let sealed = self.ack_drafts(pending).seal();
        self.append_acks(sealed)
    }

    /// Marks a chat read up to now: a read acknowledgement to our own devices, and to the
    /// senders too when `receipts` (read receipts are opt-in).
    pub fn mark_read(&mut self, chat: &ChatTarget, receipts: bool) -> Result<usize, MessengerError> {
        let unread: Vec<_> = {
            let summary = self.store.chats()?.into_iter().find(|c| c.chat == chat.chat);
            let count = summary.map_or(0, |s| s.unread);
            let msgs = self.store.messages(&chat.chat, count)?;
            msgs.into_iter().filter(|m| !m.mine).collect()
        };
        if unread.is_empty() {
            return Ok(0);
        }
        let targets: Vec<EntryId> = unread.iter().map(|m| m.id).collect();
        let users: Vec<UserId> = if receipts {
            unread.iter().filter_map(|m| m.user).collect::<BTreeSet<_>>().into_iter().collect()
        } else {
            Vec::new()
        };
        self.say(&Body::Ack { chat: chat.chat, targets, read: true }, &users)?;
        Ok(unread.len())
    }

    /// A peer record that a contact's device is allowed (used by tests and the app).
    pub fn peer_record(&self, device: &[u8; 32]) -> Result<Option<PeerRecord>, MessengerError> {
        Ok(self.store.peer(device)?)
    }
}
