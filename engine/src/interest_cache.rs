//! Interest sets, cached (spec/sync.md, section 4). Computing them walks every peer record, the
//! trust view and the grants — O(logs) — and every session asks at its start and after each
//! ingest; at 100k logs that was most of an idle session. A cached set is valid for one
//! interest generation of the store (bumped by every write that can change one).
//!
//! The recipients of a seal are kept the same way: they come from the trust view and the
//! contact cards (every card decoded), both of which bump the generation when they change,
//! and every send asks.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use crate::identity::UserId;
use crate::sync::{GRANT_TAG, LogSet, Offer};

/// Offer sets kept at once (one per peer); past this the cache starts over.
const MAX_OFFERS: usize = 1024;
/// Recipient lists kept at once (one per chat's set of users); past this the cache starts over.
const MAX_RECIPIENTS: usize = 1024;

#[derive(Debug, Default)]
pub struct InterestCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    accept: Option<LogSet>,
    /// Whether every held log is in the accept set, for (generation, number of logs held):
    /// logs are never removed, so a new log is the only other way this changes.
    held_accepted: Option<(usize, bool)>,
    offers: HashMap<[u8; 32], Offer>,
    grants: Option<Vec<[u8; GRANT_TAG]>>,
    recipients: HashMap<Vec<UserId>, Vec<[u8; 32]>>,
}

impl Inner {
    fn at(&mut self, generation: u64) -> &mut Inner {
        if self.generation != generation {
            *self = Inner { generation, ..Inner::default() };
        }
        self
    }
}

impl InterestCache {
    /// The value `slot` picks at `generation`, computed by `make` and kept when not there.
    fn cached<T: Clone, E>(
        &self,
        generation: u64,
        slot: impl Fn(&mut Inner) -> &mut Option<T>,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if let Some(v) = self.inner.lock().ok().and_then(|mut i| slot(i.at(generation)).clone()) {
            return Ok(v);
        }
        let v = make()?;
        if let Ok(mut i) = self.inner.lock() {
            *slot(i.at(generation)) = Some(v.clone());
        }
        Ok(v)
    }

    /// The accept set at `generation`, computed by `make` when not cached.
    pub fn accept<E>(
        &self,
        generation: u64,
        make: impl FnOnce() -> Result<BTreeSet<[u8; 32]>, E>,
    ) -> Result<LogSet, E> {
        self.cached(generation, |i| &mut i.accept, || make().map(LogSet::new))
    }

    /// Whether the `held` logs (`count` of them) all lie in `accept`, at `generation`.
    pub fn held_accepted(
        &self,
        generation: u64,
        count: usize,
        accept: &LogSet,
        held: impl Iterator<Item = [u8; 32]>,
    ) -> bool {
        if let Some((n, yes)) = self.inner.lock().ok().and_then(|mut i| i.at(generation).held_accepted)
            && n == count
        {
            return yes;
        }
        let yes = { held }.all(|a| accept.contains(&a));
        if let Ok(mut i) = self.inner.lock() {
            i.at(generation).held_accepted = Some((count, yes));
        }
        yes
    }

    /// The grant tags this identity gives, at `generation`.
    pub fn grants<E>(
        &self,
        generation: u64,
        make: impl FnOnce() -> Result<Vec<[u8; GRANT_TAG]>, E>,
    ) -> Result<Vec<[u8; GRANT_TAG]>, E> {
        self.cached(generation, |i| &mut i.grants, make)
    }

    /// The offer set for `peer` at `generation`, computed by `make` when not cached.
    pub fn offer<E>(
        &self,
        generation: u64,
        peer: &[u8; 32],
        make: impl FnOnce() -> Result<Offer, E>,
    ) -> Result<Offer, E> {
        if let Some(o) = self.inner.lock().ok().and_then(|mut i| i.at(generation).offers.get(peer).cloned()) {
            return Ok(o);
        }
        let offer = make()?;
        if let Ok(mut i) = self.inner.lock() {
            let i = i.at(generation);
            if i.offers.len() >= MAX_OFFERS {
                i.offers.clear();
            }
            i.offers.insert(*peer, offer.clone());
        }
        Ok(offer)
    }

    /// The agreement keys of the trusted devices of `users` at `generation`, computed by
    /// `make` when not cached.
    pub fn recipients<E>(
        &self,
        generation: u64,
        users: &[UserId],
        make: impl FnOnce() -> Result<Vec<[u8; 32]>, E>,
    ) -> Result<Vec<[u8; 32]>, E> {
        if let Some(r) = self.inner.lock().ok().and_then(|mut i| i.at(generation).recipients.get(users).cloned()) {
            return Ok(r);
        }
        let keys = make()?;
        if let Ok(mut i) = self.inner.lock() {
            let i = i.at(generation);
            if i.recipients.len() >= MAX_RECIPIENTS {
                i.recipients.clear();
            }
            i.recipients.insert(users.to_vec(), keys.clone());
        }
        Ok(keys)
    }
}
