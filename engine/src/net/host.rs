//! A running node on the network: the QUIC endpoint, the accept loop, dialing, and the shared
//! state every session works on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use std::time::Duration;

use super::driver::{self, Outcome};
use super::{NetError, tls};
use crate::node::Node;
use crate::store::Store;

/// Where and how a host listens.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub listen: SocketAddr,
    pub limits: Limits,
}

impl HostConfig {
    /// Listen on `listen` with the default limits.
    pub fn new(listen: SocketAddr) -> HostConfig {
        HostConfig { listen, limits: Limits::default() }
    }
}

/// Per-peer limits that keep a hostile or broken peer from holding memory or time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest a peer may take to deliver one frame once it has started (slowloris).
    pub frame_deadline: Duration,
    /// Longest silence while reconciling.
    pub reconcile_idle: Duration,
    /// Most bytes one session may receive; a longer stream is cut and may reconnect.
    pub session_bytes_in: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            frame_deadline: Duration::from_secs(10),
            reconcile_idle: Duration::from_secs(30),
            session_bytes_in: 4 << 30,
        }
    }
}

/// State shared by every session of a host.
pub(crate) struct Shared {
    /// Readers (sessions reading logs, forwarded read-only commands) share; writers exclude.
    node: RwLock<Node>,
    pub(crate) device: [u8; 32],
    pub(crate) changed: tokio::sync::watch::Sender<u64>,
    allowed: Arc<RwLock<BTreeSet<[u8; 32]>>>,
    /// Unexpired invites exist: strangers may complete the handshake to introduce themselves.
    intro_open: Arc<std::sync::atomic::AtomicBool>,
    online: Mutex<BTreeMap<[u8; 32], SocketAddr>>,
    pub(crate) limits: Limits,
}

impl Shared {
    pub(crate) fn with_store<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        let guard = self.node.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard.store)
    }
    pub(crate) fn with_store_mut<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut guard = self.node.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard.store)
    }
    pub(crate) fn notify_changed(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
    pub(crate) fn set_online(&self, peer: [u8; 32], addr: Option<SocketAddr>) {
        let mut online = self.online.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match addr {
            Some(a) => online.insert(peer, a),
            None => online.remove(&peer),
        };
    }
    /// Reloads the allow-list the handshake checks from the store (and our own devices).
    pub(crate) fn refresh_allowed(&self, node: &Node) {
        let allowed = allowed_keys(node);
        *self.allowed.write().unwrap_or_else(std::sync::PoisonError::into_inner) = allowed;
        let open = node.store.has_open_invites(crate::clock::wall_ms()).unwrap_or(false);
        self.intro_open.store(open, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn is_allowed(&self, key: &[u8; 32]) -> bool {
        self.allowed.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(key)
    }

    /// Runs `f` on the node exclusively (sessions use this for introductions).
    pub(crate) fn with_node_mut<R>(&self, f: impl FnOnce(&mut Node) -> R) -> R {
        let mut guard = self.node.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = f(&mut guard);
        self.refresh_allowed(&guard);
        r
    }

    pub(crate) fn read_node<R>(&self, f: impl FnOnce(&Node) -> R) -> R {
        let guard = self.node.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }

    /// Acknowledges newly stored messages from others; their acks go out with the next push.
    pub(crate) fn acknowledge(&self) {
        let mut guard = self.node.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = guard.acknowledge() {
            tracing::warn!(error = %e, "could not acknowledge received messages");
        }
    }

    pub(crate) fn allow_cache_insert(&self, key: [u8; 32]) {
        self.allowed.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key);
    }
}

/// The device keys that may connect: allowed peers, and our own other trusted devices.
fn allowed_keys(node: &Node) -> BTreeSet<[u8; 32]> {
    let mut allowed: BTreeSet<[u8; 32]> = node
        .store
        .peers()
        .map(|p| p.into_iter().filter(|(_, r)| r.allowed).map(|(k, _)| k).collect())
        .unwrap_or_default();
    if let Some(user) = node.user_id()
        && let Some(rec) = node.store.trust().user(&user)
    {
        allowed.extend(rec.devices.iter().filter(|(_, d)| d.trusted()).map(|(d, _)| *d.as_bytes()));
    }
    allowed.remove(node.device_id().as_bytes());
    allowed
}

/// A node on the network.
pub struct Host {
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    seed: [u8; 32],
}

/// Longest a dial waits for the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    // One sync stream per connection, plus one spare for a reconnecting session; no uni streams.
    t.max_concurrent_bidi_streams(2u32.into());
    t.max_concurrent_uni_streams(0u32.into());
    t.keep_alive_interval(Some(Duration::from_secs(10)));
    t.max_idle_timeout(Duration::from_secs(60).try_into().ok());
    Arc::new(t)
}

impl Host {
    /// Binds the endpoint. Must be called within a tokio runtime.
    pub fn new(node: Node, config: HostConfig) -> Result<Host, NetError> {
        let device = *node.device_id().as_bytes();
        let seed = node.secrets.device.signing.to_bytes();
        let mut node = node;
        if let Err(e) = node.acknowledge_all() {
            tracing::warn!(error = %e, "could not acknowledge messages received before this start");
        }
        let allowed = allowed_keys(&node);
        let allowed = Arc::new(RwLock::new(allowed));
        let intro_open = Arc::new(std::sync::atomic::AtomicBool::new(
            node.store.has_open_invites(crate::clock::wall_ms()).unwrap_or(false),
        ));
        let (check, open) = (allowed.clone(), intro_open.clone());
        // Allowed keys always pass; while we have open invites, any well-formed key may finish
        // the handshake, but its session must introduce itself before anything else.
        let allow: tls::Allow = Arc::new(move |k: &[u8; 32]| {
            open.load(std::sync::atomic::Ordering::Relaxed)
                || check.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(k)
        });
        let server_tls = tls::server_config(&seed, &device, allow)?;
        let server_quic = quinn::crypto::rustls::QuicServerConfig::try_from(server_tls)
            .map_err(|e| NetError::Stream(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_quic));
        server.transport_config(transport());
        let endpoint = quinn::Endpoint::server(server, config.listen)?;
        let (changed, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            node: RwLock::new(node),
            device,
            changed,
            allowed,
            intro_open,
            online: Mutex::new(BTreeMap::new()),
            limits: config.limits,
        });
        Ok(Host { shared, endpoint, seed })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        Ok(self.endpoint.local_addr()?)
    }

    pub fn device(&self) -> [u8; 32] {
        self.shared.device
    }

    /// Accepts connections until the endpoint closes; each runs a live session.
    pub async fn serve(&self) {
        while let Some(incoming) = self.endpoint.accept().await {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                match incoming.await {
                    Ok(conn) => {
                        if let Err(e) = driver::run(shared, conn, false, true).await {
                            tracing::info!(error = %e, "inbound session ended");
                        }
                    }
                    // Refused handshakes (unknown keys) end here; the peer learns nothing more.
                    Err(e) => tracing::info!(error = %e, "inbound connection refused"),
                }
            });
        }
    }

    /// Dials `addr`, requiring the peer to hold `expected` (or any allowed key), and runs a
    /// session; `live` keeps it open and pushing until the connection ends.
    pub async fn connect(&self, addr: SocketAddr, expected: Option<[u8; 32]>, live: bool) -> Result<Outcome, NetError> {
        let check = self.shared.allowed.clone();
        let allow: tls::Allow =
            Arc::new(move |k: &[u8; 32]| check.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(k));
        let tls = tls::client_config(&self.seed, &self.shared.device, allow, expected)?;
        let quic =
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| NetError::Stream(e.to_string()))?;
        let mut client = quinn::ClientConfig::new(Arc::new(quic));
        client.transport_config(transport());
        // A handshake that has not completed in this time will not: nobody answers there.
        let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.endpoint.connect_with(client, addr, "libra")?)
            .await
            .map_err(|_| NetError::Timeout(HANDSHAKE_TIMEOUT))??;
        driver::run(self.shared.clone(), conn, true, live).await
    }

    /// Keeps a live session with every allowed peer that has a known address: dial, and on any
    /// end, dial again after a backoff of 1 s doubling to 60 s (reset after a good session).
    pub fn dial_known(self: &Arc<Self>) {
        let targets: Vec<([u8; 32], SocketAddr)> = self.read_node(|n| {
            n.store
                .peers()
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, r)| r.allowed)
                .filter_map(|(k, r)| Some((k, r.address?.parse().ok()?)))
                .collect()
        });
        for (key, addr) in targets {
            let h = self.clone();
            tokio::spawn(async move {
                let mut backoff = Duration::from_secs(1);
                loop {
                    match h.connect(addr, Some(key), true).await {
                        Ok(_) => backoff = Duration::from_secs(1),
                        Err(e) => tracing::info!(error = %e, "dial failed; retrying"),
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            });
        }
    }

    /// A receiver that changes whenever the node's logs change (local writes or ingests).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// Allows a device or user key to sync with us, remembering an address to dial if given.
    pub fn allow(&self, key: [u8; 32], address: Option<String>) -> Result<(), NetError> {
        Ok(self.shared.record_allowed(key, address)?)
    }

    /// Runs `f` on the node (identity and store); live sessions are told about new entries.
    pub fn with_node<R>(&self, f: impl FnOnce(&mut Node) -> R) -> R {
        let r = {
            let mut guard = self.shared.node.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let r = f(&mut guard);
            // The closure may have allowed peers (adding a contact does).
            self.shared.refresh_allowed(&guard);
            r
        };
        self.shared.notify_changed();
        r
    }

    /// Runs `f` on the node for reading; sessions keep running meanwhile.
    pub fn read_node<R>(&self, f: impl FnOnce(&Node) -> R) -> R {
        let guard = self.shared.node.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }

    /// Peers connected right now, with the address in use (local knowledge only).
    pub fn online(&self) -> BTreeMap<[u8; 32], SocketAddr> {
        self.shared.online.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Closes every connection and the endpoint.
    pub async fn shutdown(&self) {
        self.endpoint.close(0u32.into(), b"shutdown");
        self.endpoint.wait_idle().await;
        self.with_node(|n| {
            let _ = n.store.flush();
        });
    }
}
