//! Relaying through a friend (spec/connectivity.md, section 3): `libra/relay/1`. A node that
//! opted in (`--relay`) splices a stream from one of its contacts to another contact connected
//! to it; the two run TLS 1.3 end to end over the spliced stream (raw public keys, each
//! pinning the other), then the ordinary sync session. The relay sees only that they talk and
//! how much. Every node serves the target side of this protocol, so a contact can reach it
//! through any friend who relays.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::router::ProtocolHandler;
use super::sync_protocol::{OnlineGuard, finish};
use super::{Host, NetError, stream, tls};
use crate::engine::{Engine, PathKind};
use crate::relay_wire::{Kind, Request};
use crate::sync::{ALPN, Conn, Limits, Outcome};

pub const RELAY_ALPN: &[u8] = b"libra/relay/1";

/// Spliced pairs a relay carries at once, in all and per requesting peer.
const MAX_RELAYED: usize = 32;
const MAX_PER_PEER: usize = 4;
/// Longest wait for a request, or for the relay's answer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a relay refused, as it answers (0 is "spliced").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Refusal {
    Off = 1,
    NotAllowed = 2,
    Unreachable = 3,
    Busy = 4,
}

impl Refusal {
    pub(crate) fn from_code(c: u8) -> String {
        match c {
            1 => "the relay does not relay".into(),
            2 => "the relay does not relay between these devices".into(),
            3 => "the relay cannot reach the device".into(),
            4 => "the relay is busy".into(),
            other => format!("the relay refused (code {other})"),
        }
    }
}

pub(crate) struct RelayProtocol {
    pub(crate) engine: Engine,
    pub(crate) limits: Limits,
    pub(crate) seed: [u8; 32],
    /// Set once the endpoint exists (the router is built before it).
    pub(crate) endpoint: Arc<OnceLock<quinn::Endpoint>>,
    /// This node splices for its contacts (`--relay`).
    pub(crate) serve: bool,
    /// This node takes part in hole punching between its contacts.
    pub(crate) punch: bool,
    pub(crate) active: Slots,
}

impl ProtocolHandler for RelayProtocol {
    fn accept(&self, conn: quinn::Connection) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let me = RelayProtocol {
            engine: self.engine.clone(),
            limits: self.limits,
            seed: self.seed,
            endpoint: self.endpoint.clone(),
            serve: self.serve,
            punch: self.punch,
            active: self.active.clone(),
        };
        Box::pin(async move {
            if let Err(e) = me.handle(conn).await {
                tracing::info!(error = %e, "relay stream ended");
            }
        })
    }
}

/// Opens a QUIC connection on `endpoint` as this node (what [`Host::dial`] does).
pub(crate) async fn dial_on(
    endpoint: &quinn::Endpoint,
    engine: &Engine,
    seed: &[u8; 32],
    addr: SocketAddr,
    expected: Option<[u8; 32]>,
    alpn: &[u8],
) -> Result<quinn::Connection, NetError> {
    let check = engine.clone();
    let allow: tls::Allow = Arc::new(move |k: &[u8; 32]| check.is_allowed(k));
    let tls = tls::client_config(seed, &engine.device(), allow, expected, alpn)?;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| NetError::Stream(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(quic));
    client.transport_config(if alpn == super::BLOB_ALPN {
        super::host::blob_transport()
    } else {
        super::host::transport()
    });
    // The knock (spec/sync.md, section 3.2a): a node answers only a dial that names its key,
    // and a stranger only with an open invite of its own.
    let Some(key) = expected else { return Err(NetError::NoKey) };
    let invite = engine.read(|n| n.store.peer(&key).ok().flatten().and_then(|r| r.intro_token)).ok().flatten();
    let name = tls::knock_name(&key, invite.as_ref().map(|t| &t.0));
    let conn = tokio::time::timeout(super::HANDSHAKE_TIMEOUT, endpoint.connect_with(client, addr, &name)?)
        .await
        .map_err(|_| NetError::Timeout(super::HANDSHAKE_TIMEOUT))?;
    // A node that does not take the knock, or not our key, ends the handshake with access_denied
    // (TLS alert 49): say what that can mean.
    conn.map_err(|e| match &e {
        quinn::ConnectionError::ConnectionClosed(c) if c.error_code == quinn::TransportErrorCode::crypto(49) => {
            NetError::Unanswered
        }
        _ => NetError::Connection(e),
    })
}

/// Answers a request with a refusal and waits (briefly) until the requester has it: closing
/// at once could lose the answer.
pub(crate) async fn refuse(send: quinn::SendStream, r: Refusal) -> NetError {
    answer(send, &[r as u8]).await;
    NetError::Relay(Refusal::from_code(r as u8))
}

/// Writes the last bytes of a request's stream and waits (briefly) until the other side has
/// them: closing at once could lose them.
pub(crate) async fn answer(mut send: quinn::SendStream, bytes: &[u8]) {
    if send.write_all(bytes).await.is_ok() && send.finish().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
    }
}

/// Reads exactly `buf.len()` bytes of a request or an answer, within [`REQUEST_TIMEOUT`].
pub(crate) async fn read(recv: &mut quinn::RecvStream, buf: &mut [u8]) -> Result<(), NetError> {
    tokio::time::timeout(REQUEST_TIMEOUT, recv.read_exact(buf))
        .await
        .map_err(|_| NetError::Timeout(REQUEST_TIMEOUT))?
        .map_err(|e| NetError::Stream(e.to_string()))
}

/// When each unreachable peer is tried next, and how many rounds failed.
type Backoff = BTreeMap<[u8; 32], (std::time::Instant, u32)>;

/// Counts a spliced pair for as long as it lives.
/// The spliced pairs in progress, per requesting peer: each holds a [`Slot`].
#[derive(Clone, Default)]
pub(crate) struct Slots(Arc<Mutex<BTreeMap<[u8; 32], usize>>>);

/// One spliced pair's place in [`Slots`], freed when dropped.
struct Slot {
    slots: Slots,
    peer: [u8; 32],
}

impl Slots {
    /// A place for one more pair requested by `from`, unless the relay already carries
    /// [`MAX_RELAYED`] pairs or `from` holds [`MAX_PER_PEER`].
    fn take(&self, from: [u8; 32]) -> Option<Slot> {
        let mut a = self.0.lock().ok()?;
        let total: usize = a.values().sum();
        let mine = a.get(&from).copied().unwrap_or(0);
        if total >= MAX_RELAYED || mine >= MAX_PER_PEER {
            return None;
        }
        *a.entry(from).or_default() += 1;
        Some(Slot { slots: self.clone(), peer: from })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut a) = self.slots.0.lock()
            && let Some(n) = a.get_mut(&self.peer)
        {
            *n -= 1;
            if *n == 0 {
                a.remove(&self.peer);
            }
        }
    }
}

impl RelayProtocol {
    async fn handle(&self, conn: quinn::Connection) -> Result<(), NetError> {
        let peer = tls::peer_key(&conn).ok_or(NetError::NotAllowed)?;
        if !self.engine.is_allowed(&peer) {
            conn.close(2u32.into(), b"not allowed");
            return Err(NetError::NotAllowed);
        }
        let (send, mut recv) = tokio::time::timeout(REQUEST_TIMEOUT, conn.accept_bi())
            .await
            .map_err(|_| NetError::Timeout(REQUEST_TIMEOUT))??;
        let mut head = [0u8; Request::LEN];
        read(&mut recv, &mut head).await?;
        let req = match Request::decode(&head) {
            Ok(r) => r,
            Err(e) => {
                refuse(send, Refusal::NotAllowed).await;
                return Err(NetError::Stream(e.to_string()));
            }
        };
        let other = req.device;
        match req.kind {
            Kind::Connect => self.splice(peer, other, send, recv).await,
            Kind::Incoming => self.incoming(peer, conn.remote_address(), other, send, recv).await,
            Kind::Punch => self.introduce(peer, conn.remote_address(), other, send, recv).await,
            Kind::PunchFrom => self.punched(peer, other, send, recv).await,
        }
    }

    /// The relay's side: splices `from`'s stream to `target`, if both are contacts, the
    /// target is connected, and the limits allow.
    async fn splice(
        &self,
        from: [u8; 32],
        target: [u8; 32],
        mut send: quinn::SendStream,
        recv: quinn::RecvStream,
    ) -> Result<(), NetError> {
        let verdict = if !self.serve {
            Err(Refusal::Off)
        } else if target == from || target == self.engine.device() || !self.engine.is_allowed(&target) {
            Err(Refusal::NotAllowed)
        } else {
            // Only a path of its own reaches the target (not one relayed by someone else).
            self.engine
                .links()
                .get(&target)
                .filter(|l| !l.path.is_relayed())
                .map(|l| l.addr)
                .ok_or(Refusal::Unreachable)
        };
        let slot = verdict.as_ref().ok().and_then(|_| self.active.take(from));
        let addr = match (verdict, &slot) {
            (Ok(a), Some(_)) => a,
            (Ok(_), None) => return Err(refuse(send, Refusal::Busy).await),
            (Err(r), _) => return Err(refuse(send, r).await),
        };
        let Some(endpoint) = self.endpoint.get() else { return Err(NetError::Stream("no endpoint".into())) };
        // The target's mapping towards us is open (it keeps a session with us): dial it there.
        let onward = match dial_on(endpoint, &self.engine, &self.seed, addr, Some(target), RELAY_ALPN).await {
            Ok(c) => c,
            Err(e) => {
                refuse(send, Refusal::Unreachable).await;
                return Err(e);
            }
        };
        let (mut t_send, t_recv) = onward.open_bi().await?;
        let hello = Request { kind: Kind::Incoming, device: from }.encode();
        t_send.write_all(&hello).await.map_err(|e| NetError::Stream(e.to_string()))?;
        send.write_all(&[0]).await.map_err(|e| NetError::Stream(e.to_string()))?;
        let mut a = tokio::io::join(recv, send);
        let mut b = tokio::io::join(t_recv, t_send);
        // Opaque bytes (TLS records) both ways until either side ends.
        let r = tokio::io::copy_bidirectional(&mut a, &mut b).await;
        drop(slot);
        onward.close(0u32.into(), b"done");
        r.map(|_| ()).map_err(|e| NetError::Stream(e.to_string()))
    }

    /// The target's side: a contact reaches us through `relay`; TLS as server (pinning that
    /// contact), then a live sync session.
    async fn incoming(
        &self,
        relay: [u8; 32],
        relay_addr: SocketAddr,
        source: [u8; 32],
        send: quinn::SendStream,
        recv: quinn::RecvStream,
    ) -> Result<(), NetError> {
        if source == relay || !self.engine.is_allowed(&source) {
            return Err(NetError::NotAllowed);
        }
        let check = self.engine.clone();
        let allow: tls::Allow = Arc::new(move |k: &[u8; 32]| check.is_allowed(k));
        let cfg =
            tls::server_config_expecting(&self.seed, &self.engine.device(), allow, Some(source), vec![ALPN.to_vec()])?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let tls = tokio::time::timeout(REQUEST_TIMEOUT, acceptor.accept(tokio::io::join(recv, send)))
            .await
            .map_err(|_| NetError::Timeout(REQUEST_TIMEOUT))?
            .map_err(|e| NetError::Stream(format!("relayed TLS: {e}")))?;
        if tls::stream_peer_key(tls.get_ref().1) != Some(source) {
            return Err(NetError::NotAllowed);
        }
        let path = PathKind::Relayed { via: relay };
        relayed_session(&self.engine, source, (relay_addr, path), false, true, self.limits, tls).await.map(|_| ())
    }
}

/// A sync session over a TLS stream that a relay carries.
async fn relayed_session<S>(
    engine: &Engine,
    peer: [u8; 32],
    (via, path): (SocketAddr, PathKind),
    initiator: bool,
    live: bool,
    limits: Limits,
    tls: S,
) -> Result<Outcome, NetError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut online = OnlineGuard::new(engine, peer, via, path);
    let (r, w) = tokio::io::split(tls);
    let watch = stream::Watch { alive: None, replaced: Some(online.replaced()) };
    let c = stream::run_with(engine, Conn::new(peer, initiator, live, limits, 0), r, w, watch).await;
    finish(engine, peer, &c, &mut online).await
}

impl Host {
    /// Sends `kind` naming `target` (then `tail`) to the contact `via` (at `via_addr`) on
    /// `libra/relay/1` and returns the stream once it answered 0 (a refusal is an error naming
    /// its reason).
    pub(crate) async fn request(
        &self,
        via_addr: SocketAddr,
        via: [u8; 32],
        kind: Kind,
        target: [u8; 32],
        tail: &[u8],
    ) -> Result<(quinn::Connection, quinn::SendStream, quinn::RecvStream), NetError> {
        let conn = self.dial(via_addr, Some(via), RELAY_ALPN).await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        let req = [&Request { kind, device: target }.encode()[..], tail].concat();
        send.write_all(&req).await.map_err(|e| NetError::Stream(e.to_string()))?;
        let mut code = [0u8; 1];
        read(&mut recv, &mut code).await?;
        if code[0] != 0 {
            return Err(NetError::Relay(Refusal::from_code(code[0])));
        }
        Ok((conn, send, recv))
    }

    /// Reaches `target` through `relay` (a contact that relays, at `relay_addr`) and runs a
    /// sync session with it, end to end encrypted and authenticated.
    pub async fn connect_via(
        &self,
        relay_addr: SocketAddr,
        relay: [u8; 32],
        target: [u8; 32],
        live: bool,
    ) -> Result<Outcome, NetError> {
        let (conn, send, recv) = self.request(relay_addr, relay, Kind::Connect, target, &[]).await?;
        let check = self.engine.clone();
        let allow: tls::Allow = Arc::new(move |k: &[u8; 32]| check.is_allowed(k));
        let cfg = tls::client_config(&self.seed, &self.engine.device(), allow, Some(target), ALPN)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let name = rustls::pki_types::ServerName::try_from("libra").map_err(|e| NetError::Stream(e.to_string()))?;
        let tls = tokio::time::timeout(REQUEST_TIMEOUT, connector.connect(name, tokio::io::join(recv, send)))
            .await
            .map_err(|_| NetError::Timeout(REQUEST_TIMEOUT))?
            .map_err(|e| NetError::Stream(format!("relayed TLS: {e}")))?;
        let path = PathKind::Relayed { via: relay };
        let out = relayed_session(&self.engine, target, (relay_addr, path), true, live, self.limits, tls).await;
        conn.close(0u32.into(), b"done");
        out
    }

    /// Keeps trying to reach allowed peers that have no session through peers that do: first
    /// by hole punching introduced by them, then relayed by them (any may relay); one attempt
    /// per peer at a time, every `every`. A peer reached only through a relay is still offered
    /// punching, which replaces the relayed session when it works.
    pub fn run_relay_dialer(self: &Arc<Self>, every: Duration) {
        let host = self.clone();
        tokio::spawn(async move {
            let trying: Arc<Mutex<std::collections::BTreeSet<[u8; 32]>>> = Arc::default();
            // A peer no relay could reach is tried less and less often (up to every 5 min).
            let backoff: Arc<Mutex<Backoff>> = Arc::default();
            let mut last_change = host.dialers.changed_ms();
            loop {
                tokio::time::sleep(every).await;
                // The machine's network changed: everyone is worth trying again now, and a
                // session from before is ending: its peer is to be reached anew.
                let changed = host.dialers.changed_ms();
                if changed != last_change {
                    last_change = changed;
                    if let Ok(mut b) = backoff.lock() {
                        b.clear();
                    }
                }
                let links = host.engine.links();
                let allowed = host.engine.read(|n| n.store.allowed_peers().unwrap_or_default()).unwrap_or_default();
                let now = std::time::Instant::now();
                let links: std::collections::BTreeMap<_, _> =
                    links.into_iter().filter(|(_, l)| l.since_ms >= changed).collect();
                for target in allowed.into_iter().filter(|t| links.get(t).is_none_or(|l| l.path.is_relayed())) {
                    let due = backoff.lock().map(|b| b.get(&target).is_none_or(|(at, _)| *at <= now)).unwrap_or(true);
                    if !due || !trying.lock().is_ok_and(|mut t| t.insert(target)) {
                        continue;
                    }
                    let upgrade = links.contains_key(&target);
                    // Introducers and relays: peers we reach on a path of our own.
                    let helpers: Vec<([u8; 32], SocketAddr)> = links
                        .iter()
                        .filter(|(r, l)| **r != target && !l.path.is_relayed())
                        .map(|(r, l)| (*r, l.addr))
                        .collect();
                    let (h, trying, backoff) = (host.clone(), trying.clone(), backoff.clone());
                    tokio::spawn(async move {
                        let reached = h.reach_through(target, &helpers, upgrade).await;
                        if let Ok(mut b) = backoff.lock() {
                            if reached {
                                b.remove(&target);
                            } else {
                                let n = b.get(&target).map_or(0, |(_, n)| *n + 1);
                                let wait = every.saturating_mul(1 << n.min(5)).min(Duration::from_secs(300));
                                b.insert(target, (std::time::Instant::now() + wait, n));
                            }
                        }
                        if let Ok(mut t) = trying.lock() {
                            t.remove(&target);
                        }
                    });
                }
            }
        });
    }

    /// One round of trying to reach `target` through `helpers`: punching, then (unless only a
    /// better path than a relayed one is sought) relaying. Reports why it failed as a dial
    /// state; returns whether a session got going.
    async fn reach_through(&self, target: [u8; 32], helpers: &[([u8; 32], SocketAddr)], upgrade: bool) -> bool {
        let mut why = Vec::new();
        for (helper, addr) in helpers {
            if self.engine.direct(&target) || (!upgrade && self.engine.online().contains_key(&target)) {
                return true;
            }
            let synced_before = self.last_sync(&target);
            // Directly through both NATs if the two can, else spliced.
            let mut r = self.punch_via(*addr, *helper, target, true).await;
            if r.is_err() && !upgrade && self.last_sync(&target) == synced_before {
                r = self.connect_via(*addr, *helper, target, true).await;
            }
            // A session that got going (even one that ended since) counts.
            if r.is_ok() || self.last_sync(&target) > synced_before {
                return true;
            }
            if let Err(e) = r {
                why.push(format!("{}: {e}", crate::text::short_id(crate::text::IdKind::Device, helper)));
            }
        }
        if !upgrade {
            let reason = if helpers.is_empty() {
                "no contact online to introduce or relay".to_owned()
            } else {
                format!("no contact online could introduce or relay ({})", why.join("; "))
            };
            self.engine.emit(crate::engine::Event::Dial {
                device: target,
                state: crate::engine::DialState::Unreachable { reason },
            });
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_carries_at_most_four_pairs_per_peer_and_32_in_all() {
        let slots = Slots::default();
        let mine: Vec<Slot> = (0..MAX_PER_PEER).map(|_| slots.take([1; 32]).expect("a slot")).collect();
        assert!(slots.take([1; 32]).is_none(), "a fifth pair for one peer is refused");
        let mut others: Vec<Slot> = (2u8..)
            .flat_map(|p| (0..MAX_PER_PEER).map(move |_| p))
            .take(MAX_RELAYED - MAX_PER_PEER)
            .map(|p| slots.take([p; 32]).expect("a slot"))
            .collect();
        assert!(slots.take([100; 32]).is_none(), "a 33rd pair is refused, even for a new peer");
        others.pop();
        assert!(slots.take([100; 32]).is_some(), "a closed pair frees its place");
        drop(mine);
        assert!(slots.take([1; 32]).is_some(), "and a peer's own places come back");
    }
}
