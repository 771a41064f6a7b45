//! A node on the network: the QUIC endpoint, its accept loop (connections dispatched by ALPN
//! through the router), dialing, and redialing known peers. The engine owns the node; the host
//! only moves bytes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::blob_protocol::{BLOB_ALPN, BlobProtocol};
use super::relay::{RELAY_ALPN, RelayProtocol, dial_on};
use super::router::Router;
use super::sync_protocol::{self, SyncProtocol};
use super::{NetError, stun, tls};
use crate::engine::{Engine, Link, PathKind};
use crate::sync::{ALPN, Limits, Outcome};

/// Where and how a host listens.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub listen: SocketAddr,
    pub limits: Limits,
    /// Splice streams between two of our contacts (spec/connectivity.md, section 3).
    pub relay: bool,
    /// Take part in hole punching between contacts (section 4): our public address is told
    /// to a contact that asks to reach us through a mutual contact, and theirs to us.
    pub punch: bool,
}

impl HostConfig {
    /// Listen on `listen` with the default limits, relaying for nobody.
    pub fn new(listen: SocketAddr) -> HostConfig {
        HostConfig { listen, limits: Limits::default(), relay: false, punch: true }
    }
}

/// A key outside the allow-list finished the handshake because we have open invites or an
/// open link code (section 3.3): it stays only for `libra/link/1` while a code is open, or with
/// a knock that proves an open invite (section 3.2a) — a used, revoked or expired invite ends
/// here, before any stream.
fn stranger_may_enter(engine: &Engine, conn: &quinn::Connection) -> bool {
    if tls::alpn_of(conn).as_deref() == Some(super::link_protocol::LINK_ALPN) {
        return engine.link_open();
    }
    let now = crate::clock::wall_ms();
    let Some(knock) = tls::server_name_of(conn).and_then(|n| crate::knock::Knock::parse(&n).ok()) else {
        return false;
    };
    let open = engine.read(|n| n.store.open_invite_tokens(now)).ok().and_then(Result::ok).unwrap_or_default();
    knock.proven_invite(open.iter().map(|(t, _)| t), crate::knock::epoch_of(now)).is_some()
}

/// A node on the network.
pub struct Host {
    pub(crate) engine: Engine,
    pub(crate) dialers: super::dialer::Dialers,
    pub(crate) endpoint: quinn::Endpoint,
    router: Router,
    pub(crate) seed: [u8; 32],
    pub(crate) limits: Limits,
    pub(crate) punch: bool,
    admission: super::admission::Admission,
    /// LAN discovery runs (visible nearby needs it).
    pub(crate) lan_on: std::sync::atomic::AtomicBool,
    /// While the user is visible nearby (spec/connectivity.md, section 2.7).
    pub(crate) nearby: std::sync::Mutex<Option<crate::nearby::Nearby>>,
    /// Sends STUN requests from the endpoint's socket (section 4.3).
    pub(crate) stun: stun::StunClient,
    /// [`Host::shutdown`] was called: background tasks (the fetcher) stop.
    pub(crate) closed: std::sync::atomic::AtomicBool,
}

/// Longest a dial waits for the handshake (QUIC retransmits its first flights after 1, 2, 4 s:
/// on a link losing a third of its packets each way a handshake often needs more than 5 s).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// [`transport`] for a connection we dial to fetch blobs: a 4 MiB stream window (instead of
/// quinn's 1.25 MB) keeps several 1 MiB responses in flight; only connections this node opens
/// to download get it, so no peer can make us buffer more.
pub(crate) fn blob_transport() -> Arc<quinn::TransportConfig> {
    let mut t = transport_config();
    t.stream_receive_window((4u32 << 20).into());
    Arc::new(t)
}

/// Socket buffers asked for (the OS may grant less: Linux caps them at `net.core.rmem_max`).
const UDP_BUFFER: usize = 4 << 20;

/// The endpoint's UDP socket, with room to queue a burst: with the OS default (208 KiB on
/// Linux) a receiver busy verifying for a millisecond overflowed it, and a fifth of a file's
/// packets were dropped and sent again.
fn bind_udp(addr: std::net::SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer works, only less well under load.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_BUFFER);
    // Linux reports twice what it grants; stock systems cap it at 208 KiB.
    if let Ok(got) = socket.recv_buffer_size()
        && got < UDP_BUFFER
    {
        tracing::info!(
            granted = got,
            asked = UDP_BUFFER,
            "the OS capped the UDP receive buffer: large transfers may lose packets under load (on Linux, raise net.core.rmem_max)"
        );
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

pub(crate) fn transport() -> Arc<quinn::TransportConfig> {
    Arc::new(transport_config())
}

fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    // One stream per session, plus one spare for a reconnecting session; no uni streams.
    t.max_concurrent_bidi_streams(2u32.into());
    t.max_concurrent_uni_streams(0u32.into());
    t.keep_alive_interval(Some(Duration::from_secs(5)));
    t.max_idle_timeout(Duration::from_secs(60).try_into().ok());
    // Lossy links (Wi-Fi, mobile): BBR paces by measured bandwidth instead of halving its
    // window at every random loss (with the default, Cubic, a link losing 30 % each way did
    // not finish a 200-message conversation in 2 minutes; with BBR it takes seconds, for about
    // a third less throughput in the flood benchmark on loopback), and a smaller first RTT
    // guess retransmits a lost handshake packet sooner (the backoff doubles from it).
    t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    t.initial_rtt(Duration::from_millis(100));
    t
}

impl Host {
    /// Binds the endpoint, serving `libra/sync/1`, `libra/relay/1` and `libra/blob/1`. Must be
    /// called within a tokio runtime.
    pub fn new(engine: Engine, config: HostConfig) -> Result<Host, NetError> {
        Host::with_protocols(engine, config, |r| r)
    }

    /// [`Host::new`], with the router changed by `more` (another protocol, or a handler in place
    /// of a standard one).
    pub fn with_protocols(
        engine: Engine,
        config: HostConfig,
        more: impl FnOnce(Router) -> Router,
    ) -> Result<Host, NetError> {
        let sync = Arc::new(SyncProtocol { engine: engine.clone(), limits: config.limits });
        let endpoint = Arc::new(std::sync::OnceLock::new());
        let seed = engine.read(|n| n.secrets.device.signing.to_bytes()).map_err(|e| NetError::Stream(e.to_string()))?;
        let relay = Arc::new(RelayProtocol {
            engine: engine.clone(),
            limits: config.limits,
            seed,
            endpoint: endpoint.clone(),
            serve: config.relay,
            punch: config.punch,
            active: Default::default(),
        });
        let blobs = Arc::new(BlobProtocol { engine: engine.clone() });
        let link = Arc::new(super::link_protocol::LinkProtocol { engine: engine.clone() });
        let router = Router::new()
            .register(ALPN, sync)
            .register(RELAY_ALPN, relay)
            .register(BLOB_ALPN, blobs)
            .register(super::link_protocol::LINK_ALPN, link);
        let host = Host::with_router(engine, config, more(router))?;
        let _ = endpoint.set(host.endpoint.clone());
        Ok(host)
    }

    /// Binds the endpoint, serving the protocols of `router`.
    pub fn with_router(engine: Engine, config: HostConfig, router: Router) -> Result<Host, NetError> {
        let device = engine.device();
        let seed = engine.read(|n| n.secrets.device.signing.to_bytes()).map_err(|e| NetError::Stream(e.to_string()))?;
        let check = engine.clone();
        // Allowed keys always pass; while we have open invites, any well-formed key may finish
        // the handshake, but its session must introduce itself before anything else.
        // An open link code likewise lets an unknown key through, to `libra/link/1` only.
        let allow: tls::Allow =
            Arc::new(move |k: &[u8; 32]| check.intro_open() || check.link_open() || check.is_allowed(k));
        // A client must knock with our key (spec/sync.md, section 3.2a): nobody else learns it.
        let knock: tls::KnockCheck = Arc::new(move |name: Option<&str>| {
            let now = crate::knock::epoch_of(crate::clock::wall_ms());
            name.and_then(|n| crate::knock::Knock::parse(n).ok()).is_some_and(|k| k.proves_key(&device, now))
        });
        let server_tls = tls::server_config(&seed, &device, allow, knock, router.alpns())?;
        let server_quic = quinn::crypto::rustls::QuicServerConfig::try_from(server_tls)
            .map_err(|e| NetError::Stream(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_quic));
        server.transport_config(transport());
        // The endpoint's socket, wrapped so that STUN answers reach us and not quinn.
        let runtime = quinn::default_runtime().ok_or_else(|| NetError::Stream("no async runtime".into()))?;
        let socket = stun::StunSocket::new(runtime.wrap_udp_socket(bind_udp(config.listen)?)?);
        let stun = socket.client();
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            Some(server),
            Arc::new(socket),
            runtime,
        )?;
        Ok(Host {
            stun,
            engine,
            dialers: Default::default(),
            endpoint,
            router,
            seed,
            limits: config.limits,
            punch: config.punch,
            admission: Default::default(),
            lan_on: Default::default(),
            nearby: Default::default(),
            closed: Default::default(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        Ok(self.endpoint.local_addr()?)
    }

    /// Whether this endpoint can send to `to` ([`super::reaches`]).
    pub(crate) fn reaches(&self, to: SocketAddr) -> bool {
        self.local_addr().map_or(true, |l| super::reaches(l, to))
    }

    pub fn device(&self) -> [u8; 32] {
        self.engine.device()
    }

    /// Where a device on the same network can dial this host (for link codes).
    pub fn own_addresses(&self) -> Result<Vec<String>, NetError> {
        Ok(super::lan::own_addresses(self.local_addr()?))
    }

    /// Accepts connections until the endpoint closes, each handled by its protocol. Over the
    /// caps of [`super::admission`] (per source address and in all) a connection is refused
    /// before its handshake.
    pub async fn serve(&self) {
        while let Some(incoming) = self.endpoint.accept().await {
            let Some(mut ticket) = self.admission.admit(incoming.remote_address().ip()) else {
                incoming.refuse();
                continue;
            };
            let router = self.router.clone();
            let engine = self.engine.clone();
            tokio::spawn(async move {
                match incoming.await {
                    Ok(conn) => {
                        let Some(key) = tls::peer_key(&conn) else { return };
                        if !ticket.established(key) {
                            conn.close(2u32.into(), b"too many connections from this key");
                            return;
                        }
                        if !engine.is_allowed(&key) && !stranger_may_enter(&engine, &conn) {
                            conn.close(2u32.into(), b"refused");
                            return;
                        }
                        router.dispatch(conn).await;
                        drop(ticket);
                    }
                    // Refused handshakes (unknown keys) end here; the peer learns nothing more.
                    Err(e) => tracing::info!(error = %e, "inbound connection refused"),
                }
            });
        }
    }

    /// Opens a QUIC connection for protocol `alpn` to `addr`, requiring the peer to hold
    /// `expected` (or any allowed key).
    pub async fn dial(
        &self,
        addr: SocketAddr,
        expected: Option<[u8; 32]>,
        alpn: &[u8],
    ) -> Result<quinn::Connection, NetError> {
        dial_on(&self.endpoint, &self.engine, &self.seed, addr, expected, alpn).await
    }

    /// Dials `addr` and runs a sync session; `live` keeps it open and pushing until the
    /// connection ends.
    pub async fn connect(&self, addr: SocketAddr, expected: Option<[u8; 32]>, live: bool) -> Result<Outcome, NetError> {
        self.connect_on(addr, expected, live, PathKind::Direct).await
    }

    /// [`Host::connect`], telling the online set how the address was found.
    pub(crate) async fn connect_on(
        &self,
        addr: SocketAddr,
        expected: Option<[u8; 32]>,
        live: bool,
        path: PathKind,
    ) -> Result<Outcome, NetError> {
        let conn = self.dial(addr, expected, ALPN).await?;
        sync_protocol::session(&self.engine, conn, true, live, self.limits, path).await
    }

    /// Peers connected right now, with the address in use (local knowledge only).
    pub fn online(&self) -> BTreeMap<[u8; 32], SocketAddr> {
        self.engine.online()
    }

    /// Peers connected right now, with the path in use.
    pub fn links(&self) -> BTreeMap<[u8; 32], Link> {
        self.engine.links()
    }

    /// Closes every connection and the endpoint. Peers are told at once; waiting for them to
    /// acknowledge is bounded (a peer behind a lossy or dead link would hold it for seconds).
    pub async fn shutdown(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.endpoint.close(0u32.into(), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_millis(1500), self.endpoint.wait_idle()).await;
    }
}
