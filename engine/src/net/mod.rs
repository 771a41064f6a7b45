//! The network driver: QUIC (quinn) with TLS 1.3 raw public keys (rustls). Connections are
//! dispatched by ALPN to protocol handlers (`router`); `libra/sync/1` runs the sans-IO
//! [`crate::sync::Conn`] over one bidirectional stream (`sync_protocol`), through the generic
//! byte-stream driver (`stream`) that also runs it over any other ordered byte stream.
//!
//! **Invariant:** this module is the only one that knows quinn and rustls; it never holds the
//! node — everything goes through the [`crate::engine::Engine`].

pub mod admission;
mod blob_protocol;
mod dialer;
mod fetch;
mod host;
mod lan;
pub mod link_protocol;
mod netwatch;
mod punch;
mod relay;
mod router;
pub mod stream;
mod stun;
mod sync_protocol;
pub mod tls;

pub use crate::sync::{Limits, Outcome};
pub use blob_protocol::BLOB_ALPN;
pub use dialer::{check_address, resolve};
pub use host::{HANDSHAKE_TIMEOUT, Host, HostConfig};
pub use lan::LanConfig;
pub use relay::RELAY_ALPN;
pub use router::{ProtocolHandler, Router};

use crate::sync::SyncError;

/// Whether an endpoint bound at `local` can send to `to`: one on IPv4 reaches IPv4 only (one on
/// `[::]` reaches both).
pub(crate) fn reaches(local: std::net::SocketAddr, to: std::net::SocketAddr) -> bool {
    local.is_ipv6() || to.is_ipv4()
}

/// Why a connection or session failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("sync: {0}")]
    Sync(#[from] SyncError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("stream: {0}")]
    Stream(String),
    #[error("STUN: {0}")]
    Stun(String),
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer stalled: nothing for {0:?}")]
    Timeout(std::time::Duration),
    #[error("the peer is not allowed")]
    NotAllowed,
    #[error("a node answers only a dial that names its device key (`--peer DEVICE`)")]
    NoKey,
    #[error(
        "refused at the handshake: the node there is not the device named, does not accept this device, or the two clocks differ by more than two hours"
    )]
    Unanswered,
    #[error("'{0}' is not an address that can be reached (HOST:PORT, a name or an IP address)")]
    Address(String),
    #[error("relay: {0}")]
    Relay(String),
    #[error("visible nearby: {0}")]
    Nearby(String),
}
