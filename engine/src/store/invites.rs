//! The invites this node handed out (local, never sent): each token's expiry, how many more
//! times it may introduce someone, and when it was made. See spec/messaging.md, "Introductions".

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::codec;

/// Most uses one invite may allow (`libra invite --uses N`).
pub const MAX_INVITE_USES: u32 = 1000;

/// One open invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRecord {
    pub expires_ms: u64,
    /// Introductions it still allows; the row goes when it reaches 0.
    pub uses_left: u32,
    pub created_ms: u64,
}

/// The public handle of an invite: the first 4 bytes of blake3("libra invite id" ‖ token), in
/// hex. It names the invite in `invite list` and `invite revoke` without revealing the token.
pub fn invite_id(token: &[u8; 16]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"libra invite id");
    h.update(token);
    h.finalize().as_bytes()[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn decode(v: &[u8]) -> Result<InviteRecord, StoreError> {
    // Stores written before uses were counted hold only the expiry: one use left.
    if v.len() == 8 {
        return Ok(InviteRecord { expires_ms: super::keys::to_u64(v)?, uses_left: 1, created_ms: 0 });
    }
    codec::decode(v).map_err(|e| StoreError::Corrupt(format!("invite: {e}")))
}

impl Store {
    /// Remembers an invite token this node handed out, durably.
    pub fn add_invite(&self, token: &[u8; 16], rec: InviteRecord) -> Result<(), StoreError> {
        self.sync.guard(self.invites.insert(token.to_vec(), codec::encode(&rec)))?;
        self.sync.peers_changed();
        self.sync_now()
    }

    /// Whether `token` is one of ours with a use left at `now_ms`.
    pub fn invite_token_valid(&self, token: &[u8; 16], now_ms: u64) -> Result<bool, StoreError> {
        Ok(match self.invites.get(token)? {
            Some(v) => {
                let r = decode(&v)?;
                r.expires_ms > now_ms && r.uses_left > 0
            }
            None => false,
        })
    }

    /// Takes one use of `token` if it is valid at `now_ms` (durably, before the caller acts on
    /// it); returns whether it was.
    pub fn use_invite(&self, token: &[u8; 16], now_ms: u64) -> Result<bool, StoreError> {
        let Some(v) = self.invites.get(token)? else { return Ok(false) };
        let mut r = decode(&v)?;
        if r.expires_ms <= now_ms || r.uses_left == 0 {
            return Ok(false);
        }
        r.uses_left -= 1;
        if r.uses_left == 0 {
            self.sync.guard(self.invites.remove(token.to_vec()))?;
        } else {
            self.sync.guard(self.invites.insert(token.to_vec(), codec::encode(&r)))?;
        }
        self.sync.peers_changed();
        self.sync_now()?;
        Ok(true)
    }

    /// Invites still open at `now_ms`, by id, oldest first.
    pub fn open_invites(&self, now_ms: u64) -> Result<Vec<(String, InviteRecord)>, StoreError> {
        Ok(self.open_invite_tokens(now_ms)?.into_iter().map(|(t, r)| (invite_id(&t), r)).collect())
    }

    /// The tokens of the invites still open at `now_ms`, oldest first.
    pub fn open_invite_tokens(&self, now_ms: u64) -> Result<Vec<([u8; 16], InviteRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.invites.iter() {
            let (k, v) = item.into_inner()?;
            let r = decode(&v)?;
            let Ok(token) = <[u8; 16]>::try_from(&k[..]) else {
                return Err(StoreError::Corrupt(format!("invite token of {} bytes", k.len())));
            };
            if r.expires_ms > now_ms && r.uses_left > 0 {
                out.push((token, r));
            }
        }
        out.sort_by_key(|(t, r)| (r.created_ms, invite_id(t)));
        Ok(out)
    }

    /// Removes the invites whose id starts with `id` (all of them with `None`), and every
    /// expired one; returns the ids of open invites revoked.
    pub fn revoke_invites(&self, id: Option<&str>, now_ms: u64) -> Result<Vec<String>, StoreError> {
        let mut gone = Vec::new();
        let mut doomed = Vec::new();
        for item in self.invites.iter() {
            let (k, v) = item.into_inner()?;
            let r = decode(&v)?;
            let Ok(token) = <[u8; 16]>::try_from(&k[..]) else { continue };
            let iid = invite_id(&token);
            let open = r.expires_ms > now_ms && r.uses_left > 0;
            if !open || id.is_none_or(|p| iid.starts_with(p)) {
                if open {
                    gone.push(iid);
                }
                doomed.push(k.to_vec());
            }
        }
        for k in doomed {
            self.sync.guard(self.invites.remove(k))?;
        }
        self.sync.peers_changed();
        self.sync_now()?;
        Ok(gone)
    }

    /// Whether any invite is still open (strangers may then introduce themselves).
    pub fn has_open_invites(&self, now_ms: u64) -> Result<bool, StoreError> {
        for item in self.invites.iter() {
            if let Ok(r) = decode(&item.value()?)
                && r.expires_ms > now_ms
                && r.uses_left > 0
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Meta key of the devices of short invites that wait for their card (spec/messaging.md,
/// section 8.3a): a MessagePack array of device keys, sorted.
const AWAITING_KEY: &[u8] = b"awaiting-card";

impl Store {
    pub fn awaiting_cards(&self) -> Result<std::collections::BTreeSet<crate::identity::DeviceId>, StoreError> {
        let Some(v) = self.meta.get(AWAITING_KEY)? else { return Ok(Default::default()) };
        codec::decode(&v).map_err(|e| StoreError::Corrupt(format!("awaiting-card: {e}")))
    }

    /// Durable at once: a device that awaits its card is one the user chose to reach.
    pub fn set_awaiting_cards(
        &self,
        devices: &std::collections::BTreeSet<crate::identity::DeviceId>,
    ) -> Result<(), StoreError> {
        self.sync.guard(self.meta.insert(AWAITING_KEY, codec::encode(devices)))?;
        self.sync_now()
    }
}
