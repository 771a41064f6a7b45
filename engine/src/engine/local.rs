//! The engine's answers to a connection's questions ([`crate::sync::Local`]), read from the
//! node under the engine's read lock.

use std::sync::Arc;

use super::Engine;
use crate::log::{Entry, EntryId};
use crate::node::Node;
use crate::sync::{ChangePoint, HeadSet, Local, LocalError, LogIndex, LogSet, Message, Offer};

pub struct NodeLocal<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) node: &'a Node,
}

impl<'a> NodeLocal<'a> {
    /// The view a connection with any peer gets of `node` (held under `engine`'s read lock).
    pub fn new(engine: &'a Engine, node: &'a Node) -> NodeLocal<'a> {
        NodeLocal { engine, node }
    }
}

fn local(e: impl std::fmt::Display) -> LocalError {
    LocalError(e.to_string())
}

impl LogIndex for NodeLocal<'_> {
    fn id_at(&self, author: &[u8; 32], seq: u64) -> Result<Option<EntryId>, LocalError> {
        self.node.store.id_at(author, seq)
    }
}

impl Local for NodeLocal<'_> {
    fn is_allowed(&self, peer: &[u8; 32]) -> bool {
        self.engine.is_allowed(peer)
    }

    fn offer(&self, peer: &[u8; 32]) -> Result<Offer, LocalError> {
        self.node.offer(peer).map_err(local)
    }

    fn accept(&self) -> Result<LogSet, LocalError> {
        self.node.accepted_logs().map_err(local)
    }

    fn grants(&self, _peer: &[u8; 32]) -> Option<Message> {
        // Every admitted peer carries for our contacts only what they prove; sending our list
        // lets it forward our logs to them (and only them).
        let tags = self.node.grant_tags().ok()?;
        Some(Message::Grant(tags))
    }

    fn heads(&self, offer: &Offer) -> Result<Arc<HeadSet>, LocalError> {
        self.node.store.sendable_head_set(&offer.logs, offer.covers_held).map_err(local)
    }

    fn sendable_seq(&self, author: &[u8; 32]) -> Option<u64> {
        self.node.store.sendable_seq(author)
    }

    fn read(&self, author: &[u8; 32], from: u64, limit: usize) -> Result<Vec<Entry>, LocalError> {
        let Some(last) = self.sendable_seq(author) else { return Ok(Vec::new()) };
        if from > last {
            return Ok(Vec::new());
        }
        let n = usize::try_from(last - from + 1).unwrap_or(usize::MAX).min(limit);
        self.node.store.read_log(author, from, n).map_err(local)
    }

    fn introduction(&self, peer: &[u8; 32]) -> Option<Message> {
        let token = self.node.store.peer(peer).ok().flatten().and_then(|r| r.intro_token)?;
        Some(Message::Introduce { token: token.0, card: self.node.own_card().ok()? })
    }

    fn introduction_answer(&self, token: [u8; 16]) -> Option<Message> {
        Some(Message::Introduce { token, card: self.node.own_card().ok()? })
    }

    fn awaits_card(&self, peer: &[u8; 32]) -> bool {
        self.node.awaits_card(peer)
    }

    fn change_point(&self) -> Option<ChangePoint> {
        Some(self.node.store.change_point())
    }

    fn moved_since(&self, peer: &[u8; 32], limit: usize) -> Option<Vec<[u8; 32]>> {
        // The point of this run, or the one kept from before a restart.
        let point = self
            .engine
            .sync_point(peer)
            .or_else(|| self.node.store.peer(peer).ok().flatten().and_then(|r| r.sync_point))?;
        let mut moved = self.moved_after(point, limit)?;
        // Our own logs become sendable at their fsync, which moves no head: always listed.
        moved.push(*self.node.device_id().as_bytes());
        moved.extend(self.node.user_id().map(|u| *u.as_bytes()));
        moved.sort_unstable();
        moved.dedup();
        Some(moved)
    }

    fn moved_after(&self, point: ChangePoint, limit: usize) -> Option<Vec<[u8; 32]>> {
        self.node.store.moved_since(point, limit)
    }

    fn note_synced(&self, peer: &[u8; 32], point: ChangePoint) {
        self.engine.set_sync_point(peer, point);
    }
}
