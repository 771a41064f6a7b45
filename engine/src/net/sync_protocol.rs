//! `libra/sync/1` on QUIC: one bidirectional stream per connection carrying a [`Conn`], the
//! peer's key proven by TLS. At the end the peer's record is updated (strangers that never
//! introduced themselves leave no trace) and the connection is closed with the end's code.

use std::future::Future;
use std::pin::Pin;

use super::router::ProtocolHandler;
use super::{NetError, stream, tls};
use crate::engine::{Engine, Link, NodeLocal, PathKind};
use crate::sync::{Conn, End, Limits, Outcome, SyncError};

/// How long a stranger's connection may take to open its stream (and introduce itself).
const STRANGER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct SyncProtocol {
    pub(crate) engine: Engine,
    pub(crate) limits: Limits,
}

impl ProtocolHandler for SyncProtocol {
    fn accept(&self, conn: quinn::Connection) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let (engine, limits) = (self.engine.clone(), self.limits);
        Box::pin(async move {
            let path = tls::peer_key(&conn).map_or(PathKind::Inbound, |k| engine.inbound_path(&k));
            if let Err(e) = session(&engine, conn, false, true, limits, path).await {
                tracing::info!(error = %e, "inbound session ended");
            }
        })
    }
}

/// Runs one session on `conn` (opening the stream if `initiator`) and closes the connection.
pub(crate) async fn session(
    engine: &Engine,
    conn: quinn::Connection,
    initiator: bool,
    live: bool,
    limits: Limits,
    path: PathKind,
) -> Result<Outcome, NetError> {
    let peer = tls::peer_key(&conn).ok_or(NetError::NotAllowed)?;
    let mut online = OnlineGuard::new(engine, peer, conn.remote_address(), path);
    let streams = if initiator {
        conn.open_bi().await.map_err(NetError::from)
    } else {
        // A peer that connects and never opens its stream is not kept waiting on; a stranger
        // (let in only to introduce itself with an invite) gets a few seconds.
        let wait = if engine.is_allowed(&peer) { limits.reconcile_idle } else { STRANGER_WAIT };
        match tokio::time::timeout(wait, conn.accept_bi()).await {
            Ok(r) => r.map_err(NetError::from),
            Err(_) => Err(NetError::Timeout(wait)),
        }
    };
    let (send, recv) = match streams {
        Ok(s) => s,
        Err(e) => {
            conn.close(100u32.into(), e.to_string().as_bytes());
            return Err(e);
        }
    };
    // What an operator of `libra serve` sees: how a session runs, never where (no address).
    tracing::info!(path = path.label(), initiator, "session started");
    // On a lossy link QUIC backs off its retransmissions (1, 2, 4, 8… s): the stream may be
    // silent for longer than the session's own limits while the connection is fine. Once this
    // connection has lost packets the link is such a link, and QUIC's idle timeout (60 s
    // without a packet; keep-alives every 5 s) decides that a peer is gone. On a clean link a
    // peer that stalls (slowly or on purpose) still meets the session's limits.
    let watched = conn.clone();
    let alive = move || watched.close_reason().is_none() && watched.stats().path.lost_packets > 0;
    let watch = stream::Watch { alive: Some(&alive), replaced: Some(online.replaced()) };
    let silence = tokio::spawn(close_when_silent(conn.clone()));
    let c = stream::run_with(engine, Conn::new(peer, initiator, live, limits, 0), recv, send, watch).await;
    silence.abort();
    // Read before this side closes it: a session that ended because the peer closed the
    // connection (say, refused at its door) reports the peer's code and reason, not the
    // stream's "connection lost" that raced it.
    let peer_closed = conn.close_reason().filter(|r| {
        matches!(r, quinn::ConnectionError::ApplicationClosed(_) | quinn::ConnectionError::ConnectionClosed(_))
    });
    let end = c.end().cloned().unwrap_or(End::Done);
    let reason = match &end {
        End::Done => "done".to_owned(),
        End::Sync(e) => e.to_string(),
        End::Local(s) => s.clone(),
    };
    conn.close(u32::from(end.code()).into(), reason.as_bytes());
    match (finish(engine, peer, &c, &mut online).await, peer_closed) {
        (Err(NetError::Stream(_)), Some(closed)) => Err(NetError::from(closed)),
        (r, _) => r,
    }
}

/// How long a connection may bring no packet at all before it is given up: the peer sends a
/// keep-alive every 5 s, so four in a row went missing. QUIC's own idle timeout (60 s) would
/// wait longer, and a side deep in retransmission back-off on a lossy link may stay silent
/// for minutes while the other still hears from it; closing lets both dial a fresh
/// connection.
const SILENCE: std::time::Duration = std::time::Duration::from_secs(20);

async fn close_when_silent(conn: quinn::Connection) {
    let step = std::time::Duration::from_secs(5);
    let (mut last, mut quiet) = (conn.stats().udp_rx.datagrams, std::time::Duration::ZERO);
    loop {
        tokio::time::sleep(step).await;
        let now = conn.stats().udp_rx.datagrams;
        quiet = if now == last { quiet + step } else { std::time::Duration::ZERO };
        last = now;
        if quiet >= SILENCE {
            conn.close(101u32.into(), b"no packet from the peer for 20 s");
            return;
        }
    }
}

/// After a session over any stream: refuses an outcome for a peer that was never admitted,
/// records the peer's state, then ends its online count.
pub(crate) async fn finish(
    engine: &Engine,
    peer: [u8; 32],
    c: &Conn,
    online: &mut OnlineGuard<'_>,
) -> Result<Outcome, NetError> {
    let end = c.end().cloned().unwrap_or(End::Done);
    if !c.admitted() {
        return Err(NetError::Sync(match end {
            End::Sync(e) => e,
            _ => SyncError::NotAllowed,
        }));
    }
    let mut out = c.outcome.clone();
    out.behind_by = engine.read(|n| c.behind_by(&NodeLocal { engine, node: n })).unwrap_or(0);
    record(engine, peer, &out).await;
    // After the record: whoever refreshes on this event sees the new last-seen time.
    online.release();
    match end {
        End::Done => Ok(out),
        End::Sync(e) => Err(NetError::Sync(e)),
        End::Local(s) => Err(NetError::Stream(s)),
    }
}

/// The peer's local record: last seen, counters, and after a completed session, last sync and
/// how far behind it is.
async fn record(engine: &Engine, peer: [u8; 32], out: &Outcome) {
    let out = out.clone();
    let point = engine.sync_point(&peer);
    let r = engine
        .write_async(move |n| {
            let now = crate::clock::wall_ms();
            let mut rec = n.store.peer(&peer)?.unwrap_or_default();
            rec.last_seen_ms = now;
            rec.entries_in += out.entries_in;
            rec.entries_out += out.entries_out;
            if out.synced {
                rec.last_sync_ms = now;
                rec.behind_by = out.behind_by;
                // What the contact holds, for the next bundle made for it (spec/bundle.md, 2).
                let owner = n.store.trust().owner_of(&crate::identity::DeviceId(crate::codec::Bytes(peer)));
                if let Some(user) = owner {
                    n.store.raise_known_heads(&user, &out.held)?;
                }
            }
            // Kept with the record, the point outlives a restart (spec/sync.md, section 8.9).
            if let Some(p) = point {
                rec.sync_point = Some(p);
            }
            n.store.set_peer(&peer, &rec, false)
        })
        .await;
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => report(engine, &e.to_string()),
        Err(e) => report(engine, &e.to_string()),
    }
}

/// A peer record that could not be written is reported, not swallowed.
fn report(engine: &Engine, why: &str) {
    tracing::warn!(error = %why, "could not record the peer's state");
    engine.emit(crate::engine::Event::Storage { ok: false, detail: format!("could not record a peer's state: {why}") });
}

/// Registers a session with a peer as online, and ends it there when dropped (or released):
/// however the session ends — even a task aborted mid-session — it leaves the online set.
pub(crate) struct OnlineGuard<'a> {
    engine: &'a Engine,
    peer: [u8; 32],
    id: u64,
    replaced: std::sync::Arc<tokio::sync::Notify>,
    armed: bool,
}

impl<'a> OnlineGuard<'a> {
    pub(crate) fn new(
        engine: &'a Engine,
        peer: [u8; 32],
        addr: std::net::SocketAddr,
        path: PathKind,
    ) -> OnlineGuard<'a> {
        let link = Link { addr, path, since_ms: crate::clock::wall_ms() };
        let (id, replaced) = engine.session_started(peer, link);
        OnlineGuard { engine, peer, id, replaced, armed: true }
    }

    /// Signalled when a better path to the peer replaced this session's.
    pub(crate) fn replaced(&self) -> &tokio::sync::Notify {
        &self.replaced
    }

    fn release(&mut self) {
        if std::mem::take(&mut self.armed) {
            self.engine.session_ended(self.peer, self.id);
        }
    }
}

impl Drop for OnlineGuard<'_> {
    fn drop(&mut self) {
        self.release();
    }
}
