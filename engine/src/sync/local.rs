//! What a connection needs to know about this node, as a trait: the engine implements it on
//! its store, the simulation on its nodes. Reads only; writes come back as effects.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{HeadSet, LogIndex, Message};
use crate::log::Entry;

/// A read of local state failed (a store error); it closes the session with code 100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("local store: {0}")]
pub struct LocalError(pub String);

/// A set of logs, shared: interest sets are cached, and a connection compares them by pointer
/// before it compares them by content.
pub type LogSet = Arc<BTreeSet<[u8; 32]>>;

/// What this node offers a peer.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    pub logs: LogSet,
    /// Every log this node holds is in `logs`: its whole head set can be shared as it is.
    pub covers_held: bool,
}

pub trait Local: LogIndex {
    /// Whether `peer` may sync with us without introducing itself.
    fn is_allowed(&self, peer: &[u8; 32]) -> bool;
    /// The logs this node offers to `peer` (spec/sync.md, section 4).
    fn offer(&self, peer: &[u8; 32]) -> Result<Offer, LocalError>;
    /// The logs this node accepts (wants to hold).
    fn accept(&self) -> Result<LogSet, LocalError>;
    /// The Grant to send to an admitted `peer`, if any (our grant tags).
    fn grants(&self, peer: &[u8; 32]) -> Option<Message>;
    /// The reconciliation set of those logs, as peers may see them.
    fn heads(&self, offer: &Offer) -> Result<Arc<HeadSet>, LocalError>;
    /// The highest seq of a log that may be sent now (own writes wait for their fsync).
    fn sendable_seq(&self, author: &[u8; 32]) -> Option<u64>;
    /// Up to `limit` entries of a log from `from`, never past [`Local::sendable_seq`].
    fn read(&self, author: &[u8; 32], from: u64, limit: usize) -> Result<Vec<Entry>, LocalError>;
    /// The Introduce to send first when dialing `peer`, if we hold its invite token.
    fn introduction(&self, peer: &[u8; 32]) -> Option<Message>;
    /// The Introduce a responder answers an introduction with: `token` and our card.
    fn introduction_answer(&self, _token: [u8; 16]) -> Option<Message> {
        None
    }
    /// Whether `peer` is a short invite's device that still waits for its card.
    fn awaits_card(&self, _peer: &[u8; 32]) -> bool {
        false
    }
    /// Where the order of head moves stands now, read with [`Local::heads`] (section 8.9).
    fn change_point(&self) -> Option<ChangePoint> {
        None
    }
    /// The logs that may have moved since the last session that synced with `peer` was
    /// admitted (our own logs always among them), sorted; `None` when unknown or too many.
    fn moved_since(&self, _peer: &[u8; 32], _limit: usize) -> Option<Vec<[u8; 32]>> {
        None
    }
    /// The logs that moved after `point` (sorted), if it is a point of this node's order and
    /// they are at most `limit`.
    fn moved_after(&self, _point: ChangePoint, _limit: usize) -> Option<Vec<[u8; 32]>> {
        None
    }
    /// A session with `peer` admitted at `point` has synced.
    fn note_synced(&self, _peer: &[u8; 32], _point: ChangePoint) {}
}

/// A position in a node's order of head moves (see [`crate::store::ChangePoint`]).
pub type ChangePoint = (u64, u64);
