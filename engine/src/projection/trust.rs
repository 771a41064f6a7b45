//! The trust view: users, their names, and their devices with how each is vouched for.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Projection;
use crate::codec::Bytes;
use crate::identity::{DeviceCert, DeviceId, UserId};
use crate::log::Entry;
use crate::payload::Payload;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustView {
    pub users: BTreeMap<UserId, UserRecord>,
    /// Each device's newest published agreement key, with the seq of the entry that published
    /// it (spec/devices.md, "Rotation"); a device without one uses its certificate's.
    pub agreements: BTreeMap<DeviceId, (u64, Bytes<32>)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The display name from the highest-seq profile entry of the user log, with that seq.
    pub name: Option<(u64, String)>,
    pub devices: BTreeMap<DeviceId, DeviceRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The certificate with the greatest (issued_ms, signature) seen in any log.
    pub cert: Option<DeviceCert>,
    /// A `device_cert` entry (in the user log, or any log since trust-v2) lists the certificate.
    pub in_user_log: bool,
    /// The device's own log opens with the certificate.
    pub in_device_log: bool,
    pub revoked: bool,
    /// The lowest `last_seq` of the signed revocations seen: the device's entries after it are
    /// refused. None for a device not revoked, or revoked only by an old unsigned `device_revoke`.
    pub revoked_after: Option<u64>,
    /// Who added it (trust-v3): the authors of the logs whose `device_cert` entries carry a
    /// valid certificate of it — the user key (the user log) or the devices that linked it.
    pub certified_in: BTreeSet<Bytes<32>>,
    /// Who revoked it: the authors of the logs carrying a valid revocation of it, and the
    /// earliest time a revocation states.
    pub revoked_in: BTreeSet<Bytes<32>>,
    pub revoked_ms: Option<u64>,
}

impl DeviceRecord {
    /// Trusted: vouched for by a valid certificate of its user and not revoked.
    pub fn trusted(&self) -> bool {
        self.cert.is_some() && !self.revoked
    }
}

#[cfg(test)]
impl TrustView {
    /// Puts `device` under `user` with an unsigned certificate (what [`TrustView::owner_of`]
    /// reads), for tests that are not about signatures; returns its record to adjust.
    pub(crate) fn vouch_unsigned(&mut self, user: UserId, device: DeviceId) -> &mut DeviceRecord {
        let cert = DeviceCert {
            body: crate::identity::DeviceCertBody {
                version: 1,
                user,
                device,
                agreement: Bytes([0; 32]),
                name: String::new(),
                issued_ms: 0,
            },
            signature: Bytes([0; 64]),
        };
        let rec = self.users.entry(user).or_default().devices.entry(device).or_default();
        rec.cert = Some(cert);
        rec
    }
}

impl TrustView {
    pub fn user(&self, id: &UserId) -> Option<&UserRecord> {
        self.users.get(id)
    }

    /// The key to seal to for a device holding `cert`: its newest published one.
    pub fn agreement_of(&self, cert: &DeviceCert) -> [u8; 32] {
        self.agreements.get(&cert.body.device).map_or(cert.body.agreement.0, |(_, k)| k.0)
    }

    /// The last entry of `device` that stays valid, if its owner revoked it with a signed
    /// revocation.
    pub fn revoked_after(&self, device: &DeviceId) -> Option<u64> {
        let owner = self.owner_of(device)?;
        self.users.get(&owner)?.devices.get(device)?.revoked_after
    }

    /// Whether entries of `kind` can change the view at all (what [`Projection::apply`]
    /// folds): the others need not be read, nor their signatures checked, for it.
    pub fn folds(kind: u16) -> bool {
        use crate::payload::*;
        matches!(
            kind,
            KIND_PROFILE | KIND_DEVICE_CERT | KIND_DEVICE_HELLO | KIND_DEVICE_REVOKE | KIND_REVOCATION | KIND_AGREEMENT
        )
    }

    /// The user a device belongs to, if any user's certificate vouches for it. A user whose
    /// certificate the device's own log opens with (its `device_hello`: the device agreed) wins
    /// over users who merely certified it — anyone can certify any key.
    pub fn owner_of(&self, device: &DeviceId) -> Option<UserId> {
        // Only a certificate signed by the user makes it the owner; a revocation or a profile
        // in someone's log does not.
        let mut first = None;
        for (id, u) in &self.users {
            let Some(d) = u.devices.get(device) else { continue };
            if d.cert.as_ref().is_some_and(|c| c.body.user == *id) {
                if d.in_device_log {
                    return Some(*id);
                }
                first.get_or_insert(*id);
            }
        }
        first
    }

    /// Folds a certificate carried in the log of `carrier`: a `device_cert` entry (`hello`
    /// false) or the device's own `device_hello`.
    fn add_cert(&mut self, cert: &DeviceCert, carrier: Bytes<32>, hello: bool) -> bool {
        if cert.verify().is_err() {
            return false;
        }
        let user = self.users.entry(cert.body.user).or_default();
        let rec = user.devices.entry(cert.body.device).or_default();
        let before = rec.clone();
        let newer =
            rec.cert.as_ref().is_none_or(|c| (cert.body.issued_ms, cert.signature) > (c.body.issued_ms, c.signature));
        if newer {
            rec.cert = Some(cert.clone());
        }
        if hello {
            rec.in_device_log = true;
        } else {
            rec.in_user_log = true;
            rec.certified_in.insert(carrier);
        }
        *rec != before
    }
}

impl Projection for TrustView {
    const NAME: &'static str = "trust-v3";

    fn apply(&mut self, entry: &Entry) -> bool {
        let h = entry.header();
        let Some(bytes) = entry.payload.as_deref() else {
            return false;
        };
        let Ok(payload) = Payload::decode(h.kind, bytes) else {
            return false;
        };
        let author = Bytes(h.author.0);
        match payload {
            Payload::Profile(p) => {
                let user = self.users.entry(UserId(author)).or_default();
                if user.name.as_ref().is_some_and(|(seq, _)| *seq >= h.seq) {
                    return false;
                }
                user.name = Some((h.seq, p.name));
                true
            }
            // A certificate proves itself: it counts in any log (trust-v2), so devices that
            // link others write it to their own logs and the user log is written once.
            Payload::DeviceCert(p) => self.add_cert(&p.cert, author, false),
            // A device log may only carry its own certificate, as its first entry.
            Payload::DeviceHello(p) if p.cert.body.device.0 == author && h.seq == 1 => {
                self.add_cert(&p.cert, author, true)
            }
            Payload::DeviceRevoke(p) => {
                let rec = self.users.entry(UserId(author)).or_default().devices.entry(p.device).or_default();
                let changed = !rec.revoked;
                rec.revoked = true;
                changed
            }
            Payload::Revocation(p) => {
                let r = &p.revocation;
                if r.verify().is_err() {
                    return false;
                }
                let rec = self.users.entry(r.body.user).or_default().devices.entry(r.body.device).or_default();
                let before = rec.clone();
                rec.revoked = true;
                rec.revoked_after = Some(rec.revoked_after.map_or(r.body.last_seq, |s| s.min(r.body.last_seq)));
                rec.revoked_ms = Some(rec.revoked_ms.map_or(r.body.issued_ms, |t| t.min(r.body.issued_ms)));
                rec.revoked_in.insert(author);
                *rec != before
            }
            // Only the device itself announces its keys; the newest entry wins.
            Payload::Agreement(p) => {
                let device = DeviceId(author);
                if self.agreements.get(&device).is_some_and(|(seq, _)| *seq >= h.seq) {
                    return false;
                }
                self.agreements.insert(device, (h.seq, p.agreement));
                true
            }
            _ => false,
        }
    }
}
