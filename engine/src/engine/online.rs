//! Who is connected right now, by which path: every live session registers here (local
//! knowledge only, never stored or sent). A session on a direct path (LAN, dialled, inbound,
//! punched) replaces the relayed sessions with the same peer: they are told to end.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Notify;

/// How a session with a peer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// We dialled an address LAN discovery found.
    Lan,
    /// We dialled a known address.
    Direct,
    /// The peer dialled us.
    Inbound,
    /// Through both NATs, introduced by a mutual contact.
    Punched,
    /// Spliced by a contact that relays (its device key).
    Relayed { via: [u8; 32] },
}

impl PathKind {
    /// The word `libra peers` and the app show.
    pub fn label(&self) -> &'static str {
        match self {
            PathKind::Lan => "lan",
            PathKind::Direct => "direct",
            PathKind::Inbound => "inbound",
            PathKind::Punched => "punched",
            PathKind::Relayed { .. } => "relayed",
        }
    }

    pub fn is_relayed(&self) -> bool {
        matches!(self, PathKind::Relayed { .. })
    }
}

/// One live session's path: where its packets go (the relay's address when relayed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub addr: SocketAddr,
    pub path: PathKind,
    pub since_ms: u64,
}

struct Session {
    id: u64,
    link: Link,
    replaced: Arc<Notify>,
}

#[derive(Default)]
pub(crate) struct Online {
    next: u64,
    peers: BTreeMap<[u8; 32], Vec<Session>>,
    /// Peers we punch towards, until when: their inbound connections are punched ones.
    punching: BTreeMap<[u8; 32], std::time::Instant>,
    /// Where each introducer last said it sees us (our reflexive address), and when (ms).
    seen_as: BTreeMap<[u8; 32], (SocketAddr, u64)>,
    /// What the user's STUN server last said: the server, our public address, when (ms).
    pub(crate) stun: Option<(String, SocketAddr, u64)>,
}

impl Online {
    pub(crate) fn punching(&mut self, peer: [u8; 32], until: std::time::Instant) {
        let now = std::time::Instant::now();
        self.punching.retain(|_, t| *t > now);
        self.punching.insert(peer, until);
    }

    pub(crate) fn seen_by(&mut self, peer: [u8; 32], addr: SocketAddr, at_ms: u64) {
        self.seen_as.insert(peer, (addr, at_ms));
    }

    pub(crate) fn seen_as(&self) -> BTreeMap<[u8; 32], (SocketAddr, u64)> {
        self.seen_as.clone()
    }

    /// How an inbound connection from `peer` came: through a punch under way, or plainly.
    pub(crate) fn inbound_path(&self, peer: &[u8; 32]) -> PathKind {
        match self.punching.get(peer) {
            Some(t) if *t > std::time::Instant::now() => PathKind::Punched,
            _ => PathKind::Inbound,
        }
    }

    /// Registers a session; returns its id, the signal that tells it to end because a better
    /// path replaced it, and whether the peer's best link changed.
    pub(crate) fn start(&mut self, peer: [u8; 32], link: Link) -> (u64, Arc<Notify>, bool) {
        self.next += 1;
        let id = self.next;
        let replaced = Arc::new(Notify::new());
        let before = self.best(&peer);
        let sessions = self.peers.entry(peer).or_default();
        if link.path.is_relayed() {
            if sessions.iter().any(|s| !s.link.path.is_relayed()) {
                // A direct path exists already: this relayed one is not needed.
                replaced.notify_one();
            }
        } else {
            for s in sessions.iter().filter(|s| s.link.path.is_relayed()) {
                s.replaced.notify_one();
            }
        }
        sessions.push(Session { id, link, replaced: replaced.clone() });
        (id, replaced, before != self.best(&peer))
    }

    /// Tells every session with `peer` to end.
    pub(crate) fn end_all(&self, peer: &[u8; 32]) {
        for s in self.peers.get(peer).into_iter().flatten() {
            s.replaced.notify_one();
        }
    }

    /// Ends a session; returns whether the peer's best link changed (or it went offline).
    pub(crate) fn end(&mut self, peer: &[u8; 32], id: u64) -> bool {
        let before = self.best(peer);
        if let Some(sessions) = self.peers.get_mut(peer) {
            sessions.retain(|s| s.id != id);
            if sessions.is_empty() {
                self.peers.remove(peer);
            }
        }
        before != self.best(peer)
    }

    /// The link a peer is best reached by now: a direct one before a relayed one, then the
    /// newest.
    pub(crate) fn best(&self, peer: &[u8; 32]) -> Option<Link> {
        let sessions = self.peers.get(peer)?;
        sessions.iter().rev().min_by_key(|s| s.link.path.is_relayed()).map(|s| s.link)
    }

    pub(crate) fn links(&self) -> BTreeMap<[u8; 32], Link> {
        self.peers.keys().filter_map(|k| Some((*k, self.best(k)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(path: PathKind, port: u16) -> Link {
        Link { addr: SocketAddr::from(([127, 0, 0, 1], port)), path, since_ms: 0 }
    }

    #[test]
    fn a_direct_path_replaces_relayed_ones_and_is_preferred() {
        let mut o = Online::default();
        let p = [1; 32];
        let (r1, relayed, changed) = o.start(p, link(PathKind::Relayed { via: [9; 32] }, 1));
        assert!(changed);
        let (_, direct, changed) = o.start(p, link(PathKind::Direct, 2));
        assert!(changed);
        assert_eq!(o.best(&p).map(|l| l.path), Some(PathKind::Direct));
        // The relayed session was told to end (the permit is stored until it waits).
        let waited = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("rt").block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(50), relayed.notified()).await.is_ok()
        });
        assert!(waited, "the relayed session was not told");
        // A relayed session that starts while a direct one runs is told at once.
        let (_, late, _) = o.start(p, link(PathKind::Relayed { via: [9; 32] }, 3));
        let told = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("rt").block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(50), late.notified()).await.is_ok()
        });
        assert!(told);
        assert!(!o.end(&p, r1), "ending the replaced session does not change the best link");
        drop(direct);
        assert_eq!(o.links().len(), 1);
    }
}
