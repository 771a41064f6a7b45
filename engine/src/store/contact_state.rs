//! What this device's user decided about a contact, kept beside the logs like peer records
//! (local, never sent): whether its safety number was compared, and whether it arrived by
//! introduction (with one of our invites) and has not been accepted yet. See spec/messaging.md,
//! "Contact state".

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::codec;
use crate::identity::UserId;

/// The `meta` keyspace prefix of contact states (followed by the user key).
const PREFIX: &[u8] = b"contact-state:";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactState {
    /// The user compared the safety number with this contact and confirmed it.
    pub verified: bool,
    /// Added itself with one of our invites; shown as new until the user accepts it.
    pub introduced: bool,
    /// The user blocked it: its devices may not connect, its direct chat is hidden and
    /// nothing more is sent to it. (Absent in rows written before blocking existed.)
    #[serde(default)]
    pub blocked: bool,
}

fn key(user: &UserId) -> Vec<u8> {
    [PREFIX, user.as_bytes()].concat()
}

impl Store {
    pub fn contact_state(&self, user: &UserId) -> Result<ContactState, StoreError> {
        match self.meta.get(key(user))? {
            Some(v) => codec::decode(&v).map_err(|e| StoreError::Corrupt(format!("contact state: {e}"))),
            None => Ok(ContactState::default()),
        }
    }

    /// Writes a contact's state, durably (in the engine's group).
    pub fn set_contact_state(&self, user: &UserId, state: ContactState) -> Result<(), StoreError> {
        self.sync.guard(self.meta.insert(key(user), codec::encode(&state)))?;
        // Blocking changes who may connect and what is accepted.
        self.sync.peers_changed();
        self.sync_now()
    }
}
