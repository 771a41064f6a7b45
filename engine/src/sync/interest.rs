//! The interest set: which logs a node exchanges with a peer (spec/sync.md, "Interest set").
//!
//! Until contacts exist, a node exchanges the logs of its own identity and of every allowed
//! identity — a user allowed directly or the owner of an allowed device — with all their
//! certified devices, plus any allowed device's own log. Logs outside it are neither offered nor
//! accepted, so a node never hands a log to a peer that may not have it.

use std::collections::BTreeSet;

use crate::codec::Bytes;
use crate::identity::{DeviceId, UserId};
use crate::projection::TrustView;

pub fn interest_set(trust: &TrustView, own_device: &[u8; 32], allowed: &[[u8; 32]]) -> BTreeSet<[u8; 32]> {
    let mut users: BTreeSet<UserId> = BTreeSet::new();
    let mut out: BTreeSet<[u8; 32]> = BTreeSet::new();
    out.insert(*own_device);
    for key in allowed.iter().chain(std::iter::once(own_device)) {
        out.insert(*key);
        if let Some(owner) = trust.owner_of(&DeviceId(Bytes(*key))) {
            users.insert(owner);
        }
        if trust.users.get(&UserId(Bytes(*key))).is_some_and(|u| !u.devices.is_empty()) {
            users.insert(UserId(Bytes(*key)));
        }
    }
    for u in users {
        out.insert(*u.as_bytes());
        if let Some(rec) = trust.user(&u) {
            out.extend(rec.devices.iter().filter(|(_, d)| d.cert.is_some()).map(|(d, _)| *d.as_bytes()));
        }
    }
    out
}
