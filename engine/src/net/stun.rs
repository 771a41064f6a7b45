//! Asking a STUN server the user chose for this node's public address (spec/connectivity.md,
//! section 4.3). The request must leave from the QUIC endpoint's own socket — a NAT maps
//! another socket to another port — so the endpoint runs on [`StunSocket`], which passes every
//! datagram to quinn except the answers to our own requests.

use std::collections::BTreeMap;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::sync::oneshot;

use super::{Host, NetError};
use crate::stun::{self, TxId};

/// Requests waiting for their answer, at most this many at once.
const MAX_PENDING: usize = 16;
/// Retransmissions of a request (RFC 8489: 500 ms, doubling), then it fails.
const TRIES: u32 = 4;
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// How often a node with STUN servers asks again (NAT mappings change; they also expire).
pub(crate) const EVERY: Duration = Duration::from_secs(300);

type Pending = Arc<Mutex<BTreeMap<TxId, (SocketAddr, oneshot::Sender<Result<SocketAddr, stun::StunError>>)>>>;

/// The endpoint's UDP socket, with STUN answers taken out.
#[derive(Debug)]
pub(crate) struct StunSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    pending: Pending,
}

impl StunSocket {
    pub(crate) fn new(inner: Arc<dyn AsyncUdpSocket>) -> StunSocket {
        StunSocket { inner, pending: Arc::default() }
    }

    /// A handle that sends requests on this socket and waits for their answers.
    pub(crate) fn client(&self) -> StunClient {
        StunClient { socket: self.inner.clone(), pending: self.pending.clone() }
    }

    /// Whether `datagram` from `from` answers one of our requests: then it is handed over.
    fn take_answer(&self, datagram: &[u8], from: SocketAddr) -> bool {
        if !stun::is_stun(datagram) {
            return false;
        }
        let Ok(mut pending) = self.pending.lock() else { return false };
        let mut tx = [0u8; 12];
        tx.copy_from_slice(&datagram[8..20]);
        // Only the server asked may answer (a third party cannot plant an address); a
        // dual-stack socket sees an IPv4 server as IPv4-mapped IPv6.
        let same =
            |a: SocketAddr, b: SocketAddr| a.ip().to_canonical() == b.ip().to_canonical() && a.port() == b.port();
        if pending.get(&tx).is_none_or(|(server, _)| !same(*server, from)) {
            return false;
        }
        if let Some((_, reply)) = pending.remove(&tx) {
            let _ = reply.send(stun::parse_response(datagram).map(|(_, a)| a));
        }
        true
    }
}

impl AsyncUdpSocket for StunSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let n = match self.inner.poll_recv(cx, bufs, meta) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        // An answer is one datagram (no coalesced segments); quinn skips an empty buffer.
        for (m, b) in meta.iter_mut().zip(bufs.iter()).take(n) {
            if m.len == m.stride && self.take_answer(&b[..m.len], m.addr) {
                m.len = 0;
            }
        }
        Poll::Ready(Ok(n))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

/// Sends binding requests from the endpoint's socket.
#[derive(Debug, Clone)]
pub(crate) struct StunClient {
    socket: Arc<dyn AsyncUdpSocket>,
    pending: Pending,
}

impl StunClient {
    /// Where `server` sees this socket: our public address and port, as the NAT maps them.
    pub(crate) async fn ask(&self, server: SocketAddr) -> Result<SocketAddr, NetError> {
        let mut tx = [0u8; 12];
        getrandom::fill(&mut tx).map_err(|e| NetError::Stun(e.to_string()))?;
        let (reply, mut answer) = oneshot::channel();
        {
            let mut pending = self.pending.lock().map_err(|_| NetError::Stun("poisoned".into()))?;
            if pending.len() >= MAX_PENDING {
                return Err(NetError::Stun("too many STUN requests at once".into()));
            }
            pending.insert(tx, (server, reply));
        }
        let request = stun::binding_request(&tx);
        let mut wait = FIRST_WAIT;
        let mut result = Err(NetError::Stun("the STUN server did not answer".into()));
        for _ in 0..TRIES {
            self.send(server, &request).await;
            match tokio::time::timeout(wait, &mut answer).await {
                Ok(Ok(r)) => {
                    result = r.map_err(|e| NetError::Stun(e.to_string()));
                    break;
                }
                Ok(Err(_)) => break,
                Err(_) => wait *= 2,
            }
        }
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&tx);
        }
        result
    }

    async fn send(&self, to: SocketAddr, bytes: &[u8]) {
        let t = Transmit { destination: to, ecn: None, contents: bytes, segment_size: None, src_ip: None };
        // A full socket buffer clears in microseconds; a lost request is sent again anyway.
        for _ in 0..20 {
            match self.socket.try_send(&t) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => tokio::time::sleep(Duration::from_millis(5)).await,
                _ => return,
            }
        }
    }
}

impl Host {
    /// Asks the STUN server at `server` (`HOST:PORT`) where it sees this node.
    pub async fn stun_ask(&self, server: &str) -> Result<SocketAddr, NetError> {
        let local = self.local_addr()?;
        let addrs = super::resolve(server).await?;
        let Some(at) = addrs.into_iter().find(|a| super::reaches(local, *a)) else {
            return Err(NetError::Address(server.to_owned()));
        };
        self.stun.ask(at).await
    }

    /// Asks each of `servers` now, then every [`EVERY`] and after every network change, and
    /// keeps the first answer as this node's public address (memory only).
    pub fn run_stun(self: &Arc<Self>, servers: Vec<String>) {
        if servers.is_empty() {
            return;
        }
        let host = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(h) = host.upgrade() else { return };
                if h.closed.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let mut found = None;
                for s in &servers {
                    match h.stun_ask(s).await {
                        Ok(a) => {
                            found = Some((s.clone(), a));
                            break;
                        }
                        // The server's name is the user's own setting; no address is logged.
                        Err(e) => tracing::info!(error = %e, "STUN server gave no address"),
                    }
                }
                h.engine.stun_seen(found);
                let changed = h.dialers.changed_ms();
                drop(h);
                // Again after a while, or soon after the network changed (netwatch).
                let since = tokio::time::Instant::now();
                while since.elapsed() < EVERY {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    if host.upgrade().is_none_or(|h| h.dialers.changed_ms() != changed) {
                        break;
                    }
                }
            }
        });
    }
}
