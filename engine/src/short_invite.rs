//! The short invite (spec/messaging.md, section 8.1a): what a QR code on an 80×24 terminal can
//! hold. It names one device and an invite token (and an address, if its user asked), not the
//! card: whoever adds it reaches that device once, introduces itself with the token, and the
//! device answers with its card; only then is the contact added. Until then the device is
//! allowed, dialled and looked for on the LAN, and "awaits its card".

use serde::{Deserialize, Serialize};

use crate::codec::{self, Bytes};
use crate::identity::{DeviceId, UserId};
use crate::messaging::ContactCard;
use crate::messenger::{Invite, MessengerError};
use crate::node::Node;
use crate::store::AddressSource;
use crate::text;

/// The version that marks a short invite (a full one is 1).
pub const SHORT_VERSION: u8 = 2;
/// Longest address a short invite carries (a host name and port).
pub const MAX_SHORT_ADDRESS: usize = 255;
/// Most short invites waiting for their card at once.
pub const MAX_AWAITING: usize = 64;
const PREFIX: &str = "libra:";
const BEACON_CONTEXT: &str = "libra lan invite v1";

/// `[2, device, token, address]`: a device to reach and the token to introduce ourselves with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortInvite {
    pub version: u8,
    pub device: Bytes<32>,
    pub token: Bytes<16>,
    /// Present only when the inviter asked to include it.
    pub address: Option<String>,
}

/// An invite in either form, as a person pastes or scans it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyInvite {
    Full(Invite),
    Short(ShortInvite),
}

impl AnyInvite {
    /// Parses `libra:…` in either form (either case): both are arrays of 4, told apart by
    /// the version that comes first.
    pub fn parse(s: &str) -> Result<AnyInvite, MessengerError> {
        let bytes = invite_bytes(s)?;
        if bytes.get(..2) == Some(&[0x94, SHORT_VERSION][..]) {
            return ShortInvite::from_bytes(&bytes).map(AnyInvite::Short);
        }
        Invite::from_bytes(&bytes).map(AnyInvite::Full)
    }
}

/// The bytes of an invite's text: steps 1 to 3 of spec/messaging.md, section 8.2.
pub(crate) fn invite_bytes(s: &str) -> Result<Vec<u8>, MessengerError> {
    let bad = |m: &str| MessengerError::BadInvite(m.to_owned());
    let t = s.trim();
    let body = t
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .map(|_| &t[PREFIX.len()..])
        .ok_or_else(|| bad("it does not start with 'libra:'"))?;
    if body.len() > 16 * 1024 {
        return Err(bad("too long"));
    }
    text::base32_decode(&body.to_ascii_lowercase()).map_err(|e| bad(&e.to_string()))
}

impl ShortInvite {
    pub fn to_text(&self) -> String {
        format!("{PREFIX}{}", text::base32(&codec::encode(self)))
    }

    /// Upper case, for a QR code's alphanumeric mode.
    pub fn to_qr_text(&self) -> String {
        self.to_text().to_ascii_uppercase()
    }

    pub fn parse(s: &str) -> Result<ShortInvite, MessengerError> {
        ShortInvite::from_bytes(&invite_bytes(s)?)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ShortInvite, MessengerError> {
        let bad = |m: &str| MessengerError::BadInvite(m.to_owned());
        let inv: ShortInvite = codec::decode(bytes).map_err(|e| bad(&e.to_string()))?;
        if inv.version != SHORT_VERSION {
            return Err(bad("unknown version"));
        }
        if ed25519_dalek::VerifyingKey::from_bytes(&inv.device.0).is_err() {
            return Err(bad("the device key is not a valid ed25519 key"));
        }
        if inv.address.as_ref().is_some_and(|a| a.len() > MAX_SHORT_ADDRESS) {
            return Err(bad("address too long"));
        }
        Ok(inv)
    }

    pub fn device(&self) -> DeviceId {
        DeviceId(self.device)
    }
}

/// The secret LAN beacons derive their tags from for an open invite (spec/connectivity.md):
/// the inviter's beacons carry its tag, so a holder of the short invite finds it on the LAN.
pub fn beacon_secret(token: &[u8; 16]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(BEACON_CONTEXT);
    h.update(token);
    *h.finalize().as_bytes()
}

impl Node {
    /// A new invite (as [`Node::invite`]) in both forms: the full one and its short form, one
    /// token for both.
    pub fn invite_both(&mut self, address: Option<String>, uses: u32) -> Result<(Invite, ShortInvite), MessengerError> {
        let full = self.invite(address.clone(), uses)?;
        let token = full.token.unwrap_or(Bytes([0; 16]));
        let short = ShortInvite { version: SHORT_VERSION, device: self.device_id().0, token, address };
        Ok((full, short))
    }

    /// Adds a short invite: its device is allowed, with the address and the token, and awaits
    /// its card (spec/messaging.md, section 8.3a). The contact is added when the card arrives.
    pub fn add_short_invite(&mut self, inv: &ShortInvite) -> Result<DeviceId, MessengerError> {
        let device = inv.device();
        if device == self.device_id() {
            return Err(MessengerError::OwnInvite);
        }
        let mut awaiting = self.store.awaiting_cards()?;
        if !awaiting.contains(&device) && awaiting.len() >= MAX_AWAITING {
            return Err(MessengerError::BadInvite(format!(
                "{MAX_AWAITING} short invites are waiting already; add the full invite text instead"
            )));
        }
        // Known already (a contact's device, or ours): nothing to wait for.
        if self.owner_of_device(&device.0.0)?.is_some() {
            return Err(MessengerError::BadInvite("that device belongs to someone you know already".into()));
        }
        awaiting.insert(device);
        self.store.set_awaiting_cards(&awaiting)?;
        let mut rec = self.store.peer(&device.0.0)?.unwrap_or_default();
        rec.allowed = true;
        if let Some(a) = &inv.address {
            rec.remember_address(a, AddressSource::Invite);
        }
        rec.intro_token = Some(inv.token);
        self.store.set_peer(&device.0.0, &rec, true)?;
        Ok(device)
    }

    /// Whether `device` is one of a short invite's, still waiting for its card.
    pub fn awaits_card(&self, device: &[u8; 32]) -> bool {
        self.store.awaiting_cards().is_ok_and(|a| a.contains(&DeviceId(Bytes(*device))))
    }

    /// The devices of short invites still waiting for their card.
    pub fn awaiting_cards(&self) -> Result<Vec<DeviceId>, MessengerError> {
        Ok(self.store.awaiting_cards()?.into_iter().collect())
    }

    /// The device of a short invite we introduced ourselves to answered with `card` (an
    /// Introduce carrying our token back): if it is the device we wait for, with that token,
    /// and the card certifies it, the card becomes a contact. Returns the contact's user, or
    /// `None` when nothing was waiting or the answer does not fit.
    pub fn complete_short_invite(
        &mut self,
        device: &[u8; 32],
        token: &[u8; 16],
        card: &ContactCard,
    ) -> Result<Option<UserId>, MessengerError> {
        let id = DeviceId(Bytes(*device));
        let mut awaiting = self.store.awaiting_cards()?;
        if !awaiting.contains(&id) {
            return Ok(None);
        }
        let ours = self.store.peer(device)?.and_then(|r| r.intro_token);
        if ours.map(|t| t.0) != Some(*token) {
            return Ok(None);
        }
        // Checked as an invite's card is, and it must certify the device we reached.
        let Ok(full) = Invite::of_card(card) else { return Ok(None) };
        if !full.card.certs.iter().any(|c| c.body.device == id) || Some(full.user()) == self.user_id() {
            return Ok(None);
        }
        let user = self.add_contact(&full, None)?;
        awaiting.remove(&id);
        self.store.set_awaiting_cards(&awaiting)?;
        Ok(Some(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(address: Option<&str>) -> ShortInvite {
        let device = crate::identity::DeviceKeys::from_secrets([7; 32], [8; 32]).id();
        ShortInvite {
            version: SHORT_VERSION,
            device: device.0,
            token: Bytes([5; 16]),
            address: address.map(Into::into),
        }
    }

    #[test]
    fn round_trips_in_either_case_and_is_told_from_a_full_invite() {
        let s = sample(Some("192.168.1.20:7444"));
        assert_eq!(ShortInvite::parse(&s.to_text()).expect("parses"), s);
        assert_eq!(AnyInvite::parse(&s.to_qr_text()).expect("parses"), AnyInvite::Short(s.clone()));
        assert!(crate::messenger::Invite::parse(&s.to_text()).is_err(), "a short invite is no full one");
        // Without an address it stays small enough for a version-4 QR code (114 characters).
        assert!(sample(None).to_qr_text().len() <= 114, "{}", sample(None).to_qr_text().len());
    }

    #[test]
    fn bad_short_invites_are_refused() {
        let mut s = sample(None);
        s.version = 3;
        assert!(ShortInvite::parse(&s.to_text()).is_err());
        let mut s = sample(None);
        s.address = Some("x".repeat(MAX_SHORT_ADDRESS + 1));
        assert!(ShortInvite::parse(&s.to_text()).is_err());
        // A key that is not a point on the curve.
        let not_a_point = (2u8..=255)
            .map(|y| {
                let mut k = [0u8; 32];
                k[0] = y;
                k
            })
            .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
            .expect("some small y is not on the curve");
        let mut s = sample(None);
        s.device = Bytes(not_a_point);
        assert!(ShortInvite::parse(&s.to_text()).is_err());
        assert!(AnyInvite::parse("libra:").is_err());
        assert!(AnyInvite::parse("nonsense").is_err());
    }
}
