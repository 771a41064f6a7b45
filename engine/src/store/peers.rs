//! Local peer records: allow-list and connection state. Never part of any log, never sent.

use serde::{Deserialize, Serialize};

use super::keys::to_array32;
use super::{Store, StoreError};
use crate::codec;

/// What this node remembers about one peer device (or user, for `allowed`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// May sync with us (until contacts exist, the allow-list is the whole policy).
    pub allowed: bool,
    /// Where to dial it, as the user gave it. Local only.
    pub address: Option<String>,
    pub last_seen_ms: u64,
    pub last_sync_ms: u64,
    pub entries_in: u64,
    pub entries_out: u64,
    /// Entries of logs we offer that the peer had not received when the last completed session
    /// ended (0 after a completed one-shot sync).
    pub behind_by: u64,
    /// The token of the invite we added this peer from, presented when we first connect so the
    /// peer adds us back (spec/messaging.md, "Introductions").
    pub intro_token: Option<crate::codec::Bytes<16>>,
    /// The address book: every address known for this peer, where it came from, and whether
    /// the user allowed passing it on. `address` stays the first one to dial.
    pub addresses: Vec<PeerAddress>,
    /// Where our order of head moves stood when a session with this peer last ended synced
    /// (spec/sync.md, section 8.9): the next session opens from it with a Since.
    #[serde(default)]
    pub sync_point: Option<(u64, u64)>,
}

/// Where an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum AddressSource {
    /// Typed by the user (`peer allow --address`, the app's connect view).
    Typed,
    /// In the invite the contact was added from.
    Invite,
    /// Learned from a peer (a contact telling us where it is).
    Learned,
    /// Where its LAN beacon came from (spec/connectivity.md).
    Lan,
}

impl From<AddressSource> for u8 {
    fn from(s: AddressSource) -> u8 {
        match s {
            AddressSource::Typed => 0,
            AddressSource::Invite => 1,
            AddressSource::Learned => 2,
            AddressSource::Lan => 3,
        }
    }
}

impl TryFrom<u8> for AddressSource {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            0 => Ok(AddressSource::Typed),
            1 => Ok(AddressSource::Invite),
            2 => Ok(AddressSource::Learned),
            3 => Ok(AddressSource::Lan),
            _ => Err(format!("unknown address source {v}")),
        }
    }
}

/// One address of a peer: `HOST:PORT` (a name or an IP), as given. Local only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddress {
    pub addr: String,
    pub source: AddressSource,
    /// The user allowed telling other contacts this address (never without consent).
    pub shareable: bool,
}

/// Most addresses kept per peer.
pub const MAX_ADDRESSES: usize = 16;

impl PeerRecord {
    /// Adds (or refreshes) an address; the newest one typed or from an invite is dialled first.
    pub fn remember_address(&mut self, addr: &str, source: AddressSource) {
        self.addresses.retain(|a| a.addr != addr);
        self.addresses.insert(0, PeerAddress { addr: addr.to_owned(), source, shareable: false });
        self.addresses.truncate(MAX_ADDRESSES);
        if matches!(source, AddressSource::Typed | AddressSource::Invite) || self.address.is_none() {
            self.address = Some(addr.to_owned());
        }
    }

    /// Every address to try, first the preferred one.
    pub fn dial_addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = self.address.iter().cloned().collect();
        for a in &self.addresses {
            if !out.contains(&a.addr) {
                out.push(a.addr.clone());
            }
        }
        out
    }
}

/// The record as written before the address book (8 fields).
#[derive(Deserialize, Serialize)]
struct PeerRecordV1 {
    allowed: bool,
    address: Option<String>,
    last_seen_ms: u64,
    last_sync_ms: u64,
    entries_in: u64,
    entries_out: u64,
    behind_by: u64,
    intro_token: Option<crate::codec::Bytes<16>>,
}

fn decode_record(v: &[u8]) -> Result<PeerRecord, StoreError> {
    if let Ok(r) = codec::decode::<PeerRecord>(v) {
        return Ok(r);
    }
    let old: PeerRecordV1 = codec::decode(v).map_err(|e| StoreError::Corrupt(format!("peer record: {e}")))?;
    let addresses = old
        .address
        .iter()
        .map(|a| PeerAddress { addr: a.clone(), source: AddressSource::Typed, shareable: false })
        .collect();
    Ok(PeerRecord {
        allowed: old.allowed,
        address: old.address,
        last_seen_ms: old.last_seen_ms,
        last_sync_ms: old.last_sync_ms,
        entries_in: old.entries_in,
        entries_out: old.entries_out,
        behind_by: old.behind_by,
        intro_token: old.intro_token,
        addresses,
        sync_point: None,
    })
}

impl Store {
    pub fn peer(&self, key: &[u8; 32]) -> Result<Option<PeerRecord>, StoreError> {
        match self.peers.get(key)? {
            Some(v) => decode_record(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Writes a peer record. Connection state is not worth an fsync; the allow-list is.
    pub fn set_peer(&self, key: &[u8; 32], record: &PeerRecord, durable: bool) -> Result<(), StoreError> {
        let was_allowed = self.peer(key)?.is_some_and(|r| r.allowed);
        self.sync.guard(self.peers.insert(key.to_vec(), codec::encode(record)))?;
        if was_allowed != record.allowed {
            // Who may connect changed, however the caller wants it synced.
            self.sync.peers_changed();
        }
        if durable {
            self.sync.peers_changed();
            self.sync_now()?;
        }
        Ok(())
    }

    /// The peer devices the user allowed (the allow-list).
    pub fn allowed_peers(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        Ok(self.peers()?.into_iter().filter(|(_, r)| r.allowed).map(|(k, _)| k).collect())
    }

    pub fn peers(&self) -> Result<Vec<([u8; 32], PeerRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.peers.iter() {
            let (k, v) = item.into_inner()?;
            let r = decode_record(&v)?;
            out.push((to_array32(&k)?, r));
        }
        Ok(out)
    }
}

impl crate::sync::LogIndex for Store {
    fn id_at(&self, author: &[u8; 32], seq: u64) -> Result<Option<crate::log::EntryId>, crate::sync::LocalError> {
        self.get_at(author, seq).map(|e| e.map(|e| e.id)).map_err(|e| crate::sync::LocalError(e.to_string()))
    }
}

impl Store {
    /// Replaces the grants `issuer` gave us (spec/sync.md, section 4).
    pub fn set_grants(&self, issuer: &[u8; 32], tags: &[[u8; crate::sync::GRANT_TAG]]) -> Result<(), StoreError> {
        let mut held = Vec::new();
        for item in self.grants.prefix(issuer) {
            held.push(item.key()?);
        }
        let same = held.len() == tags.len().min(crate::sync::MAX_GRANTS)
            && held.iter().zip(tags).all(|(k, t)| k.get(32..) == Some(&t[..]));
        if same {
            // The usual case on every reconnect: nothing to write, no one to wake.
            return Ok(());
        }
        let mut batch = self.db.batch();
        for k in held {
            batch.remove(&self.grants, k);
        }
        for t in tags.iter().take(crate::sync::MAX_GRANTS) {
            batch.insert(&self.grants, [&issuer[..], &t[..]].concat(), Vec::new());
        }
        self.sync.guard(batch.commit())?;
        self.sync.peers_changed();
        self.sync_now()
    }

    /// Adds grants of `issuer` to those held (a bundle's signed statement: it only adds, so an
    /// older bundle never withdraws what a later session gave); at most `MAX_GRANTS` per issuer.
    /// Returns whether any was new.
    pub fn add_grants(&self, issuer: &[u8; 32], tags: &[[u8; crate::sync::GRANT_TAG]]) -> Result<bool, StoreError> {
        let mut held = 0usize;
        for item in self.grants.prefix(issuer) {
            item.key()?;
            held += 1;
        }
        let mut batch = self.db.batch();
        let mut added = 0usize;
        for t in tags {
            if held + added >= crate::sync::MAX_GRANTS {
                break;
            }
            let k = [&issuer[..], &t[..]].concat();
            if self.grants.get(&k)?.is_none() {
                batch.insert(&self.grants, k, Vec::new());
                added += 1;
            }
        }
        if added == 0 {
            return Ok(false);
        }
        self.sync.guard(batch.commit())?;
        self.sync.peers_changed();
        self.sync_now()?;
        Ok(true)
    }

    /// Whether `issuer` granted its logs to the identity behind `tag`.
    pub fn has_grant(&self, issuer: &[u8; 32], tag: &[u8; crate::sync::GRANT_TAG]) -> Result<bool, StoreError> {
        Ok(self.grants.get([&issuer[..], &tag[..]].concat())?.is_some())
    }
}
