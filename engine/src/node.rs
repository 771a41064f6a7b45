//! A local node: this device's secrets and its store, in one data directory. The CLI and the
//! app both open a node; neither touches keys or the store layout directly.
//!
//! Data directory layout: `identity.key` (secrets, see `keyfile`) and `store/` (fjall).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::clock;
use crate::identity::{DeviceCert, DeviceId, DeviceKeys, UserId, UserKeys};
use crate::keyfile::{self, KeyFileError, Secrets};
use crate::log::Entry;
use crate::payload::{DeviceCertPayload, DeviceHello, MAX_NAME, Payload, Profile};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Keys(#[from] KeyFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a name must be 1 to {MAX_NAME} bytes")]
    BadName,
    /// The key file is there, but the store (the path) holds no entry of this device's own log.
    #[error(
        "the store in {} holds nothing of this device's own log: `init` was interrupted, or the store lost what it held (its journal, `*.jnl`, deleted or damaged). Nothing was changed. If this identity never held messages, move the directory away and run `libra init` again; otherwise restore a backup (`libra init --restore`) or link this device again",
        .0.display()
    )]
    Incomplete(PathBuf),
    /// The node opened, but no user has certified this device yet.
    #[error("the device in {} belongs to no user yet: its link was not completed (`libra init --link CODE`, with the code `libra device link` shows on a device of the user)", .0.display())]
    Unlinked(PathBuf),
    /// The key file opens, but its keys are not the ones this device published in its logs.
    #[error(
        "{path} does not match this store: {what}. The key file is damaged or belongs to another store; restore it from a copy, or restore the identity with `libra init --restore`"
    )]
    KeyMismatch { path: PathBuf, what: String },
}

/// A contact that counts (not blocked), with the device keys its card names.
pub type CountedContact = (UserId, Vec<[u8; 32]>);

/// This device's identity and store.
pub struct Node {
    pub dir: PathBuf,
    pub secrets: Secrets,
    pub store: Store,
    /// Accept and offer sets as of the store's interest generation.
    pub(crate) interest: crate::interest_cache::InterestCache,
}

impl Node {
    /// Creates a new identity: user key, device keys, and the opening entries of the user log
    /// (profile, device certificate) and the device log (hello with the certificate).
    pub fn init(dir: &Path, name: &str) -> Result<Node, NodeError> {
        Node::init_with(dir, name, Secrets::new(Some(UserKeys::generate()), DeviceKeys::generate()))
    }

    /// [`Node::init`] with the given keys (the simulation and vectors use fixed ones).
    pub fn init_with(dir: &Path, name: &str, secrets: Secrets) -> Result<Node, NodeError> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(NodeError::BadName);
        }
        if keyfile::exists(dir) {
            return Err(KeyFileError::Exists(dir.to_path_buf()).into());
        }
        // Open the store first: if another process holds it, nothing is written.
        let mut store = Store::open(dir.join("store"))?;
        keyfile::create(dir, &secrets)?;
        let now = clock::wall_ms();
        let device_name = default_device_name();
        if let Some(user) = &secrets.user {
            let cert = user.certify(&secrets.device, &device_name, now);
            store.append(
                &user.signing,
                vec![
                    (Payload::Profile(Profile { name: name.to_owned() })).encoded(),
                    Payload::DeviceCert(DeviceCertPayload { cert: cert.clone() }).encoded(),
                ],
                now,
            )?;
            store.append(&secrets.device.signing, vec![Payload::DeviceHello(DeviceHello { cert }).encoded()], now)?;
        }
        let mut node = Node { dir: dir.to_path_buf(), secrets, store, interest: Default::default() };
        node.attach_reader()?;
        Ok(node)
    }

    /// Lets the store decrypt what is addressed to this device (the chats projection).
    pub(crate) fn attach_reader(&mut self) -> Result<(), NodeError> {
        if let Some(user) = self.user_id() {
            let reader = crate::messaging::Reader::new(self.secrets.agreements(), user, self.device_id());
            self.store.set_reader(reader)?;
        }
        Ok(())
    }

    /// Opens an existing identity and its store.
    pub fn open(dir: &Path) -> Result<Node, NodeError> {
        let secrets = keyfile::load(dir)?;
        let store = Store::open(dir.join("store"))?;
        let mut node = Node { dir: dir.to_path_buf(), secrets, store, interest: Default::default() };
        if node.store.head(node.device_id().as_bytes()).is_none() {
            if node.store.heads().next().is_some() {
                return Err(node.mismatch("the store holds logs, but none of the device whose key this file holds"));
            }
            return Err(NodeError::Incomplete(dir.join("store")));
        }
        node.check_published_keys()?;
        node.attach_reader()?;
        Ok(node)
    }

    fn mismatch(&self, what: &str) -> NodeError {
        NodeError::KeyMismatch { path: self.dir.join(keyfile::KEY_FILE), what: what.to_owned() }
    }

    /// The key file against what this device published (spec/identity.md, section 8): the
    /// user key, if held, must be the one that certified this device, and the agreement key
    /// the device published last (its certificate's, or its newest `agreement` entry) must be
    /// one the file holds. A damaged secret would otherwise run silently: messages sealed to
    /// the published key would no longer open.
    fn check_published_keys(&self) -> Result<(), NodeError> {
        let trust = self.store.trust();
        if let Some(user) = &self.secrets.user
            && trust
                .user(&user.id())
                .and_then(|r| r.devices.get(&self.device_id()))
                .and_then(|d| d.cert.as_ref())
                .is_none()
        {
            return Err(self.mismatch("its user key certified no device of this store"));
        }
        if let Some(cert) = self.own_cert()
            && self.secrets.agreement_for(&trust.agreement_of(&cert)).is_none()
        {
            return Err(self.mismatch("it does not hold the agreement key this device published"));
        }
        Ok(())
    }

    pub fn device_id(&self) -> DeviceId {
        self.secrets.device.id()
    }

    /// The user this device belongs to, from its own certificate.
    pub fn user_id(&self) -> Option<UserId> {
        self.own_cert().map(|c| c.body.user)
    }

    pub fn own_cert(&self) -> Option<DeviceCert> {
        let user = self.secrets.user.as_ref().map(UserKeys::id);
        let trust = self.store.trust();
        let device = self.device_id();
        let find = |u: &UserId| trust.user(u).and_then(|r| r.devices.get(&device)).and_then(|d| d.cert.clone());
        match user {
            Some(u) => find(&u),
            None => trust.users.keys().find_map(find),
        }
    }

    /// How far this device's own log is stamped past `now_ms`, when that is more than peers
    /// take now ([`clock::MAX_AHEAD_MS`]): the clock once ran fast, and since a log's stamps
    /// never go back, contacts hold everything this device writes until real time catches up.
    pub fn clock_ahead_ms(&self, now_ms: u64) -> Option<u64> {
        let head = self.store.head(self.device_id().as_bytes())?;
        clock::too_far_ahead(head.timestamp, now_ms).then(|| clock::ahead_ms(head.timestamp, now_ms))
    }

    pub fn name(&self) -> Option<String> {
        let u = self.user_id()?;
        self.store.trust().user(&u)?.name.as_ref().map(|(_, n)| n.clone())
    }

    /// Appends one payload to this device's log.
    pub fn append_device(&mut self, payload: &Payload) -> Result<Entry, NodeError> {
        let mut out = self.store.append(&self.secrets.device.signing, vec![payload.encoded()], clock::wall_ms())?;
        out.pop().ok_or_else(|| NodeError::Store(StoreError::Corrupt("append returned nothing".into())))
    }
}

impl Node {
    /// The logs this node wants to hold (the accept set; spec/sync.md, section 4).
    pub fn accept_set(&self) -> Result<BTreeSet<[u8; 32]>, StoreError> {
        let mut allowed = self.store.allowed_peers()?;
        // Contacts count as allowed, with every device their card names: a device linked
        // later learns them from the Contact notes its siblings sealed, not from an invite.
        for (user, devices) in self.counted_contacts()? {
            allowed.push(*user.as_bytes());
            allowed.extend(devices);
        }
        Ok(crate::sync::interest_set(self.store.trust(), self.device_id().as_bytes(), &allowed))
    }

    /// Contacts that are not blocked, each with the devices its card names.
    pub fn counted_contacts(&self) -> Result<Vec<CountedContact>, StoreError> {
        let mut out = Vec::new();
        for (user, card) in self.store.contacts()? {
            if !self.store.contact_state(&user)?.blocked {
                out.push((user, card.certs.iter().map(|c| *c.body.device.as_bytes()).collect()));
            }
        }
        Ok(out)
    }

    /// [`Node::accept_set`], cached until the next change of interest.
    pub fn accepted_logs(&self) -> Result<crate::sync::LogSet, StoreError> {
        self.interest.accept(self.store.interest_generation(), || self.accept_set())
    }

    /// [`Node::offer_set`], cached until the next change of interest, with whether it covers
    /// every log held (then the whole head set is shared with the session as it is).
    pub fn offer(&self, peer: &[u8; 32]) -> Result<crate::sync::Offer, StoreError> {
        let generation = self.store.interest_generation();
        let accept = self.accepted_logs()?;
        let offer = self.interest.offer(generation, peer, || {
            let logs = self.offer_set(peer)?;
            let covers = accept.is_subset(&logs);
            Ok::<_, StoreError>(crate::sync::Offer { logs: crate::sync::LogSet::new(logs), covers_held: covers })
        })?;
        if !offer.covers_held {
            return Ok(offer);
        }
        // Logs held outside the accept set (a contact since removed) are offered to no one.
        let held = self.interest.held_accepted(
            generation,
            self.store.log_count(),
            &accept,
            self.store.heads().map(|(a, _)| a),
        );
        Ok(crate::sync::Offer { covers_held: held, ..offer })
    }

    /// The logs this node offers to `peer` (a device key): ours, the peer's own, and those of
    /// identities that granted the peer theirs (spec/sync.md, section 4).
    pub fn offer_set(&self, peer: &[u8; 32]) -> Result<BTreeSet<[u8; 32]>, StoreError> {
        let mut failed = None;
        let subject = self.owner_of_device(peer)?;
        // Our own devices see everything we hold: each is the same person (spec/devices.md).
        if let Some(me) = subject.filter(|s| Some(*s) == self.user_id()) {
            let device = DeviceId(crate::codec::Bytes(*peer));
            if self.store.trust().user(&me).and_then(|r| r.devices.get(&device)).is_some_and(|d| d.revoked) {
                // A revoked device gets nothing more (its own log is its own).
                return Ok(BTreeSet::from([*peer]));
            }
            let mut set = (*self.accepted_logs()?).clone();
            set.insert(*peer);
            return Ok(set);
        }
        let set =
            crate::sync::offer_set(self.store.trust(), self.device_id().as_bytes(), peer, subject, |issuer, tag| {
                self.store.has_grant(issuer.as_bytes(), tag).unwrap_or_else(|e| {
                    failed.get_or_insert(e);
                    false
                })
            });
        match failed {
            Some(e) => Err(e),
            None => Ok(set),
        }
    }

    /// The user a device belongs to: from the trust view, or from a contact's card (whose
    /// certificates were checked when the contact was added) before its logs are here.
    pub fn owner_of_device(&self, device: &[u8; 32]) -> Result<Option<UserId>, StoreError> {
        Ok(self.device_owners()?(device))
    }

    /// [`Node::owner_of_device`] for many devices: the contact cards are read once.
    pub fn device_owners(&self) -> Result<impl Fn(&[u8; 32]) -> Option<UserId> + '_, StoreError> {
        let mut cards = std::collections::BTreeMap::new();
        for (u, card) in self.store.contacts()? {
            for c in card.certs {
                cards.entry(*c.body.device.as_bytes()).or_insert(u);
            }
        }
        Ok(move |device: &[u8; 32]| {
            self.store.trust().owner_of(&DeviceId(crate::codec::Bytes(*device))).or_else(|| cards.get(device).copied())
        })
    }

    /// The grant tags this identity gives: one per contact and group member.
    /// Cached until the next change of interest (contacts and group members bump it).
    pub fn grant_tags(&self) -> Result<Vec<[u8; crate::sync::GRANT_TAG]>, StoreError> {
        self.interest.grants(self.store.interest_generation(), || self.make_grant_tags())
    }

    fn make_grant_tags(&self) -> Result<Vec<[u8; crate::sync::GRANT_TAG]>, StoreError> {
        let Some(me) = self.user_id() else { return Ok(Vec::new()) };
        // A blocked contact is granted nothing: carriers stop forwarding our logs to it.
        let mut subjects: BTreeSet<UserId> = self.counted_contacts()?.into_iter().map(|(u, _)| u).collect();
        subjects.extend(self.store.group_members()?);
        subjects.remove(&me);
        let mut tags: Vec<_> = subjects.iter().map(|s| crate::sync::grant_tag(&me, s)).collect();
        tags.sort_unstable();
        tags.dedup();
        tags.truncate(crate::sync::MAX_GRANTS);
        Ok(tags)
    }

    /// Stores the grants a peer device presented for its identity. A device not certified by a
    /// user we know grants nothing.
    pub fn receive_grants(&self, peer: &[u8; 32], tags: &[[u8; crate::sync::GRANT_TAG]]) -> Result<bool, StoreError> {
        let Some(issuer) = self.owner_of_device(peer)? else {
            return Ok(false);
        };
        if Some(issuer) == self.user_id() {
            return Ok(false);
        }
        self.store.set_grants(issuer.as_bytes(), tags)?;
        Ok(true)
    }
}

impl Node {
    /// Adds the grants of a bundle's signed statement (its signature already verified) for
    /// the device's user. A device not certified by a user we know, or one of our own, grants
    /// nothing.
    pub fn receive_bundle_grants(
        &self,
        device: &[u8; 32],
        tags: &[[u8; crate::sync::GRANT_TAG]],
    ) -> Result<bool, StoreError> {
        let Some(issuer) = self.owner_of_device(device)? else {
            return Ok(false);
        };
        if Some(issuer) == self.user_id() {
            return Ok(false);
        }
        self.store.add_grants(issuer.as_bytes(), tags)
    }
}

impl Payload {
    /// `(kind, canonical bytes)`, as `Store::append` takes them.
    pub fn encoded(&self) -> (u16, Vec<u8>) {
        (self.kind(), self.encode())
    }
}

/// The default device name. Deliberately not the host name: the certificate travels to every
/// contact, and a host name can identify a person or a place.
pub(crate) fn default_device_name() -> String {
    format!("{} desktop", std::env::consts::OS)
}
