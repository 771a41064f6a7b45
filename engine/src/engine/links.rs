//! Open link codes (spec/devices.md, "Linking"): kept in memory only, so a code dies with the
//! process that showed it; each is used at most once and for [`LINK_VALIDITY_MS`].

use super::{Engine, EngineError};
use crate::codec::Bytes;
use crate::devices::DeviceError;
use crate::identity::{DeviceId, random_secret};
use crate::link::{LINK_VALIDITY_MS, LinkCode, LinkGrant, LinkRequest, MAX_ADDRESSES, proves};

/// One code shown and not yet used.
#[derive(Clone)]
pub(crate) struct Offer {
    secret: [u8; 32],
    expires_ms: u64,
}

/// Most codes open at once.
const MAX_OPEN: usize = 8;

impl Engine {
    /// A new one-time link code for a device to join this user, answered by this engine's
    /// network host at `addresses`. Needs the user key on this device.
    pub fn open_link(&self, addresses: Vec<String>) -> Result<LinkCode, EngineError> {
        let (user, has_key) = self.read(|n| (n.user_id(), n.secrets.user.is_some()))?;
        let (Some(user), true) = (user, has_key) else { return Err(DeviceError::NoUserKey.into()) };
        let now = crate::clock::wall_ms();
        let offer = Offer { secret: random_secret(), expires_ms: now + LINK_VALIDITY_MS };
        {
            let mut offers = self.shared.links.lock().map_err(|_| EngineError::Panicked("link offers".into()))?;
            offers.retain(|o| o.expires_ms > now);
            if offers.len() >= MAX_OPEN {
                offers.remove(0);
            }
            offers.push(offer.clone());
        }
        let mut addresses = addresses;
        addresses.truncate(MAX_ADDRESSES);
        Ok(LinkCode {
            version: 1,
            user,
            device: DeviceId(Bytes(self.device())),
            secret: Bytes(offer.secret),
            addresses,
            expires_ms: offer.expires_ms,
        })
    }

    /// Answers a link request from `new` (its TLS key): if it proves an open code, the code is
    /// used up and the device certified (durably) before the grant goes out.
    pub fn answer_link(&self, new: [u8; 32], request: LinkRequest) -> LinkGrant {
        let now = crate::clock::wall_ms();
        let linker = DeviceId(Bytes(self.device()));
        let new = DeviceId(Bytes(new));
        let matched = self.shared.links.lock().ok().and_then(|mut offers| {
            offers.retain(|o| o.expires_ms > now);
            let i = offers.iter().position(|o| proves(&request, &o.secret, &linker, &new))?;
            Some(offers.remove(i))
        });
        if matched.is_none() {
            return LinkGrant::refused("the code is unknown, used or expired");
        }
        match self.write(move |n| n.grant_link(new, &request)) {
            Ok(Ok(grant)) => grant,
            Ok(Err(e)) => LinkGrant::refused(&e.to_string()),
            Err(e) => LinkGrant::refused(&e.to_string()),
        }
    }

    /// Whether a link code is open (the handshake then lets an unknown key through, for
    /// `libra/link/1` only).
    pub fn link_open(&self) -> bool {
        let now = crate::clock::wall_ms();
        self.shared.links.lock().is_ok_and(|o| o.iter().any(|o| o.expires_ms > now))
    }
}
