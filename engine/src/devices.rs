//! A user's devices, on the node (spec/devices.md): creating a linked or restored device,
//! granting a link, revoking, rotating agreement keys, and the device list.
//!
//! After `libra init` nothing writes to the user log again: certificates and revocations are
//! signed by the user key and prove themselves, so whichever device makes one appends it to its
//! own log. Two devices holding the user key therefore never fork a log between them.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use x25519_dalek::StaticSecret;

use crate::clock;
use crate::codec::Bytes;
use crate::identity::{DeviceCert, DeviceId, DeviceKeys, UserId, UserKeys, random_secret};
use crate::keyfile::{self, KeyFileError, Secrets};
use crate::link::{LinkGrant, LinkRequest, MAX_HISTORY, clip_name};
use crate::log::Entry;
use crate::node::{Node, NodeError, default_device_name};
use crate::payload::{AgreementKey, DeviceCertPayload, DeviceHello, Payload, RevocationPayload};
use crate::store::Store;

/// A device publishes a fresh agreement key when its current one is this old (spec/devices.md,
/// "Rotation").
pub const ROTATE_AFTER_MS: u64 = 7 * 24 * 3600 * 1000;
/// A retired agreement secret is deleted this long after it was retired: senders that have not
/// yet seen the rotation may seal to it until then (the window of spec/devices.md).
pub const KEEP_RETIRED_MS: u64 = 30 * 24 * 3600 * 1000;

/// Whether a secret retired at `retired_ms` is past its window at `now_ms`.
pub fn expired(retired_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(retired_ms) >= KEEP_RETIRED_MS
}

/// Whether an agreement key current since `since_ms` (its `agreement` entry's timestamp, else
/// the certificate's `issued_ms`) is due for rotation at `now_ms`.
pub fn rotation_due(since_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(since_ms) >= ROTATE_AFTER_MS
}

/// One device of a user, as `libra device list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    pub device: DeviceId,
    pub name: String,
    pub added_ms: u64,
    pub this_device: bool,
    pub revoked: bool,
    /// The device's last valid entry, when a signed revocation names one.
    pub revoked_after: Option<u64>,
    /// Its log's head as held here.
    pub seq: u64,
    /// Its agreement key was rotated since its certificate.
    pub rotated: bool,
    /// Who added it: `None` for the user key itself (the user log), else the device whose log
    /// carries its certificate (the one that linked it, or that learned it from an invite).
    pub added_by: Vec<Option<DeviceId>>,
    /// Which devices revoked it (their logs carry the revocation), and when (the earliest).
    pub revoked_by: Vec<DeviceId>,
    pub revoked_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(
        "this device does not hold the user key: run the command on the device that created the identity, or give the recovery phrase (--phrase)"
    )]
    NoUserKey,
    #[error("the recovery phrase belongs to another identity")]
    WrongPhrase,
    #[error("{0} is not a device of this user")]
    NotOurs(String),
    #[error("{0} is this device; revoke it from another device")]
    RevokeSelf(String),
}

impl From<crate::store::StoreError> for DeviceError {
    fn from(e: crate::store::StoreError) -> Self {
        DeviceError::Node(e.into())
    }
}

impl From<KeyFileError> for DeviceError {
    fn from(e: KeyFileError) -> Self {
        DeviceError::Node(e.into())
    }
}

impl Node {
    /// A device created by linking: no user key, the certificate the linking device sent, and
    /// the agreement secrets it handed over (to read the history sealed to it).
    pub fn init_linked(
        dir: &Path,
        device: DeviceKeys,
        history: Vec<StaticSecret>,
        cert: DeviceCert,
    ) -> Result<Node, NodeError> {
        let secrets = Secrets::new(None, device).with_history(history, clock::wall_ms());
        Node::init_device(dir, secrets, cert)
    }

    /// A device restored from the recovery phrase: the user key and a new device key. It writes
    /// only its own new log — never the user log or an old device's — so restoring cannot fork.
    /// `history`: agreement secrets from a backup, to open what was sealed to the old devices.
    pub fn init_restored(dir: &Path, user_secret: [u8; 32], history: Vec<StaticSecret>) -> Result<Node, NodeError> {
        let user = UserKeys::from_secret(user_secret);
        let device = DeviceKeys::generate();
        let cert = user.certify(&device, &default_device_name(), clock::wall_ms());
        Node::init_device(dir, Secrets::new(Some(user), device).with_history(history, clock::wall_ms()), cert)
    }

    fn init_device(dir: &Path, secrets: Secrets, cert: DeviceCert) -> Result<Node, NodeError> {
        if keyfile::exists(dir) {
            return Err(KeyFileError::Exists(dir.to_path_buf()).into());
        }
        let mut store = Store::open(dir.join("store"))?;
        keyfile::create(dir, &secrets)?;
        store.append(
            &secrets.device.signing,
            vec![Payload::DeviceHello(DeviceHello { cert }).encoded()],
            clock::wall_ms(),
        )?;
        let mut node = Node { dir: dir.to_path_buf(), secrets, store, interest: Default::default() };
        node.attach_reader()?;
        Ok(node)
    }

    /// The user key: this device's, or the one a recovery phrase gives (which must be ours).
    pub fn user_keys(&self, phrase: Option<&[u8; 32]>) -> Result<UserKeys, DeviceError> {
        let keys = match (phrase, &self.secrets.user) {
            (Some(secret), _) => UserKeys::from_secret(*secret),
            (None, Some(u)) => UserKeys::from_secret(u.signing.to_bytes()),
            (None, None) => return Err(DeviceError::NoUserKey),
        };
        if Some(keys.id()) != self.user_id() {
            return Err(DeviceError::WrongPhrase);
        }
        Ok(keys)
    }

    /// Answers a link request that proved a valid code: certifies `new` (the key it
    /// authenticated with) in our own log, durably, and hands over our agreement secrets.
    pub fn grant_link(&mut self, new: DeviceId, request: &LinkRequest) -> Result<LinkGrant, DeviceError> {
        let user = self.user_keys(None)?;
        let name = if request.name.trim().is_empty() { default_device_name() } else { clip_name(&request.name) };
        let cert = user.certify_key(new, request.agreement.0, &name, clock::wall_ms());
        self.append_device(&Payload::DeviceCert(DeviceCertPayload { cert: cert.clone() }))?;
        let mut history: Vec<Bytes<32>> = self.secrets.agreements().iter().map(|s| Bytes(s.to_bytes())).collect();
        history.truncate(MAX_HISTORY);
        Ok(LinkGrant {
            version: 1,
            refusal: String::new(),
            cert: Some(cert),
            user_name: self.name().unwrap_or_default(),
            history,
        })
    }

    /// Revokes one of our devices with the user key: entries it signs after the last one we
    /// hold are refused everywhere. Then rotates our own agreement key (the revoked device may
    /// hold our old secret, handed over when it was linked).
    pub fn revoke_device(
        &mut self,
        device: &DeviceId,
        reason: &str,
        phrase: Option<&[u8; 32]>,
    ) -> Result<Entry, DeviceError> {
        let user = self.user_keys(phrase)?;
        if *device == self.device_id() {
            return Err(DeviceError::RevokeSelf(device.short()));
        }
        let ours = self
            .store
            .trust()
            .user(&user.id())
            .is_some_and(|r| r.devices.get(device).is_some_and(|d| d.cert.is_some()));
        if !ours {
            return Err(DeviceError::NotOurs(device.short()));
        }
        let last_seq = self.store.head(device.as_bytes()).map_or(0, |h| h.seq);
        let revocation = user.revoke(*device, last_seq, &clip_name(reason), clock::wall_ms());
        let entry = self.append_device(&Payload::Revocation(RevocationPayload { revocation }))?;
        self.rotate_if_needed()?;
        Ok(entry)
    }

    /// Publishes a fresh agreement key: the secret goes to the key file first (the old one is
    /// kept to read history), then the public key into our log; later messages are sealed to it.
    pub fn rotate_agreement(&mut self) -> Result<Entry, DeviceError> {
        let fresh = StaticSecret::from(random_secret());
        let old = self.secrets.device.replace_agreement(fresh);
        let public = self.secrets.device.agreement_public();
        self.secrets.history.insert(0, old);
        self.secrets.retired_ms.insert(0, clock::wall_ms());
        if let Err(e) = keyfile::replace(&self.dir, &self.secrets) {
            // Not on disk: keep sealing to the key that is, or a restart would lose the new one.
            self.secrets.retired_ms.remove(0);
            let old = self.secrets.history.remove(0);
            self.secrets.device.replace_agreement(old);
            return Err(e.into());
        }
        self.attach_reader()?;
        Ok(self.append_device(&Payload::Agreement(AgreementKey { agreement: Bytes(public) }))?)
    }

    /// Rotates once for every own device revoked since the last rotation (this device's own
    /// revocations and those its other devices made). Returns whether it rotated.
    pub fn rotate_if_needed(&mut self) -> Result<bool, DeviceError> {
        let Some(revoked) = self.unrotated_revocations()? else { return Ok(false) };
        self.rotate_agreement()?;
        self.store.set_rotated_for(&revoked)?;
        Ok(true)
    }

    /// Our revoked devices, if some revocation among them has no rotation yet (and this device
    /// is not itself revoked).
    pub fn unrotated_revocations(&self) -> Result<Option<BTreeSet<DeviceId>>, DeviceError> {
        let Some(user) = self.user_id() else { return Ok(None) };
        let revoked: BTreeSet<DeviceId> = self
            .store
            .trust()
            .user(&user)
            .map(|r| r.devices.iter().filter(|(_, d)| d.revoked).map(|(k, _)| *k).collect())
            .unwrap_or_default();
        if revoked.contains(&self.device_id()) || revoked.is_subset(&self.store.rotated_for()?) {
            return Ok(None);
        }
        Ok(Some(revoked))
    }

    /// When this device's current agreement key was published: its newest `agreement` entry,
    /// else its certificate.
    pub fn agreement_since_ms(&self) -> Result<u64, DeviceError> {
        let me = self.device_id();
        if let Some((seq, _)) = self.store.trust().agreements.get(&me)
            && let Some(e) = self.store.get_at(me.as_bytes(), *seq)?
        {
            return Ok(e.header().timestamp >> 16);
        }
        Ok(self.own_cert().map_or(0, |c| c.body.issued_ms))
    }

    /// What key upkeep is due at `now_ms`: whether to rotate, and how many retired secrets
    /// are past the window.
    pub fn key_upkeep(&self, now_ms: u64) -> Result<(bool, usize), DeviceError> {
        if self.user_id().is_none() || self.store.trust().revoked_after(&self.device_id()).is_some() {
            return Ok((false, 0));
        }
        let rotate = rotation_due(self.agreement_since_ms()?, now_ms);
        Ok((rotate, self.secrets.retired_ms.iter().filter(|r| expired(**r, now_ms)).count()))
    }

    /// Rotates a key that is due, and deletes retired secrets past the window: what they
    /// opened stays readable through the content keys the store kept. Returns whether anything
    /// changed.
    pub fn keep_keys(&mut self, now_ms: u64) -> Result<bool, DeviceError> {
        let (rotate, _) = self.key_upkeep(now_ms)?;
        if rotate {
            self.rotate_agreement()?;
        }
        let any_expired = self.secrets.retired_ms.iter().any(|r| expired(*r, now_ms));
        if any_expired {
            let held =
                std::mem::take(&mut self.secrets.history).into_iter().zip(std::mem::take(&mut self.secrets.retired_ms));
            (self.secrets.history, self.secrets.retired_ms) = held.filter(|(_, r)| !expired(*r, now_ms)).unzip();
            keyfile::replace(&self.dir, &self.secrets)?;
            self.attach_reader()?;
        }
        Ok(rotate || any_expired)
    }

    /// The devices of `user` (ours when `None`) as held here, oldest first.
    pub fn devices(&self, user: Option<&UserId>) -> Result<Vec<DeviceInfo>, DeviceError> {
        let user = match user {
            Some(u) => *u,
            None => self.user_id().ok_or_else(|| NodeError::Unlinked(self.dir.clone()))?,
        };
        let trust = self.store.trust();
        let Some(rec) = trust.user(&user) else { return Ok(Vec::new()) };
        let me = self.device_id();
        let mut out: Vec<DeviceInfo> = rec
            .devices
            .iter()
            .filter_map(|(id, d)| {
                let cert = d.cert.as_ref()?;
                Some(DeviceInfo {
                    device: *id,
                    name: cert.body.name.clone(),
                    added_ms: cert.body.issued_ms,
                    this_device: *id == me,
                    revoked: d.revoked,
                    revoked_after: d.revoked_after,
                    seq: self.store.head(id.as_bytes()).map_or(0, |h| h.seq),
                    rotated: trust.agreement_of(cert) != cert.body.agreement.0,
                    added_by: d
                        .certified_in
                        .iter()
                        .map(|a| (a.0 != cert.body.user.0.0).then_some(DeviceId(*a)))
                        .collect(),
                    revoked_by: d.revoked_in.iter().map(|a| DeviceId(*a)).collect(),
                    revoked_ms: d.revoked_ms,
                })
            })
            .collect();
        out.sort_by_key(|d| (d.added_ms, d.device));
        Ok(out)
    }

    /// The recovery phrase, on a device holding the user key.
    pub fn recovery_phrase(&self) -> Result<String, DeviceError> {
        let user = self.secrets.user.as_ref().ok_or(DeviceError::NoUserKey)?;
        Ok(crate::phrase::encode(&user.signing.to_bytes()))
    }
}
