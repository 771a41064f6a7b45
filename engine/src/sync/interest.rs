//! Which logs a node exchanges (spec/sync.md, section 4). Two sets:
//!
//! - the **accept set** (`interest_set`): the logs this node wants to hold — its own identity,
//!   and every allowed identity with all their certified devices, plus every allowed key's own
//!   log. Entries outside it are parked, never stored.
//! - the **offer set** (`offer_set`), per peer: the logs this node shows and sends to *that*
//!   peer — its own identity, the peer's own identity, and the identities that have themselves
//!   made the peer a contact (or put it in a group with it), as proven to us by a **grant**
//!   they gave us. A carrier forwards only between people who chose each other; nobody learns
//!   the logs (or keys) of someone who did not choose them.

use std::collections::BTreeSet;

use crate::codec::Bytes;
use crate::identity::{DeviceId, UserId};
use crate::projection::TrustView;

/// Bytes of a grant tag.
pub const GRANT_TAG: usize = 16;
/// Most tags in one Grant message, and held per issuer.
pub const MAX_GRANTS: usize = 4096;
/// The key derivation context of grant tags.
pub const GRANT_CONTEXT: &str = "libra grant tag v1";

/// The tag by which `issuer` grants `subject` its logs: a carrier that knows both identities
/// can recognise it; one that does not know the subject learns nothing from it.
pub fn grant_tag(issuer: &UserId, subject: &UserId) -> [u8; GRANT_TAG] {
    let mut input = [0u8; 64];
    input[..32].copy_from_slice(issuer.as_bytes());
    input[32..].copy_from_slice(subject.as_bytes());
    let key = blake3::derive_key(GRANT_CONTEXT, &input);
    let mut tag = [0u8; GRANT_TAG];
    tag.copy_from_slice(&key[..GRANT_TAG]);
    tag
}

fn identity_logs(trust: &TrustView, user: &UserId, out: &mut BTreeSet<[u8; 32]>) {
    if let Some(rec) = trust.user(user) {
        out.insert(*user.as_bytes());
        out.extend(rec.devices.iter().filter(|(_, d)| d.cert.is_some()).map(|(d, _)| *d.as_bytes()));
    }
}

/// The accept set: own identity and every allowed identity (see the module docs).
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
        identity_logs(trust, &u, &mut out);
    }
    out
}

/// The offer set for `peer` (a device key) whose user is `subject` (when known, from the trust
/// view or a contact card): our identity, the peer's identity, and every identity `X` for which
/// `granted(X, grant_tag(X, subject))` holds.
pub fn offer_set(
    trust: &TrustView,
    own_device: &[u8; 32],
    peer: &[u8; 32],
    subject: Option<UserId>,
    mut granted: impl FnMut(&UserId, &[u8; GRANT_TAG]) -> bool,
) -> BTreeSet<[u8; 32]> {
    let mut out: BTreeSet<[u8; 32]> = BTreeSet::new();
    out.insert(*own_device);
    out.insert(*peer);
    let own = trust.owner_of(&DeviceId(Bytes(*own_device)));
    if let Some(u) = &own {
        identity_logs(trust, u, &mut out);
    }
    let Some(subject) = subject else { return out };
    identity_logs(trust, &subject, &mut out);
    for issuer in trust.users.keys() {
        if Some(issuer) != own.as_ref() && *issuer != subject && granted(issuer, &grant_tag(issuer, &subject)) {
            identity_logs(trust, issuer, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::DeviceRecord;

    fn user(i: u8) -> UserId {
        UserId(Bytes([i; 32]))
    }

    /// A trust view in which user `u` holds device `d` (certified unless `bare`).
    fn holds(trust: &mut TrustView, u: u8, d: u8, bare: bool) {
        let device = DeviceId(Bytes([d; 32]));
        if bare {
            trust.users.entry(user(u)).or_default().devices.insert(device, DeviceRecord::default());
        } else {
            trust.vouch_unsigned(user(u), device);
        }
    }

    fn set(keys: &[u8]) -> BTreeSet<[u8; 32]> {
        keys.iter().map(|k| [*k; 32]).collect()
    }

    /// Me (user 1: devices 11, 12), Ann (user 2: device 21, and 22 uncertified), Ben (user 3:
    /// device 31), Cy (user 4: device 41).
    fn world() -> TrustView {
        let mut t = TrustView::default();
        holds(&mut t, 1, 11, false);
        holds(&mut t, 1, 12, false);
        holds(&mut t, 2, 21, false);
        holds(&mut t, 2, 22, true);
        holds(&mut t, 3, 31, false);
        holds(&mut t, 4, 41, false);
        t
    }

    #[test]
    fn a_grant_tag_is_keyed_by_issuer_then_subject() {
        let mut input = [0u8; 64];
        input[..32].copy_from_slice(&[2; 32]);
        input[32..].copy_from_slice(&[3; 32]);
        assert_eq!(grant_tag(&user(2), &user(3))[..], blake3::derive_key(GRANT_CONTEXT, &input)[..GRANT_TAG]);
        assert_ne!(grant_tag(&user(2), &user(3)), grant_tag(&user(3), &user(2)));
    }

    #[test]
    fn we_accept_our_identity_and_every_allowed_one() {
        let t = world();
        assert_eq!(interest_set(&t, &[11; 32], &[]), set(&[1, 11, 12]));
        // An allowed device brings its user's identity; an allowed user key brings its own.
        assert_eq!(interest_set(&t, &[11; 32], &[[21; 32]]), set(&[1, 11, 12, 2, 21]));
        assert_eq!(interest_set(&t, &[11; 32], &[[3; 32]]), set(&[1, 11, 12, 3, 31]));
        // A key nobody vouches for is only itself; a device we do not know is only itself.
        assert_eq!(interest_set(&t, &[11; 32], &[[99; 32]]), set(&[1, 11, 12, 99]));
        assert_eq!(interest_set(&t, &[77; 32], &[]), set(&[77]));
    }

    #[test]
    fn a_peer_is_offered_ours_its_own_and_only_what_others_granted_it() {
        let t = world();
        let mut asked = Vec::new();
        // Ann's device 21 connects; Ben granted Ann his logs, Cy did not.
        let offer = offer_set(&t, &[11; 32], &[21; 32], Some(user(2)), |issuer, tag| {
            asked.push(*issuer);
            *issuer == user(3) && *tag == grant_tag(&user(3), &user(2))
        });
        assert_eq!(offer, set(&[11, 1, 12, 21, 2, 31, 3]));
        assert_eq!(asked, vec![user(3), user(4)], "neither we nor Ann are asked for");
        // A peer whose user is not known: ours and its own key only.
        assert_eq!(offer_set(&t, &[11; 32], &[88; 32], None, |_, _| true), set(&[11, 1, 12, 88]));
        // A grant under another subject's tag does not count.
        let wrong = offer_set(&t, &[11; 32], &[21; 32], Some(user(2)), |_, tag| *tag == grant_tag(&user(3), &user(4)));
        assert_eq!(wrong, set(&[11, 1, 12, 21, 2]));
    }
}
