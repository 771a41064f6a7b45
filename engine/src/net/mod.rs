//! The network driver: QUIC (quinn) with TLS 1.3 raw public keys (rustls), carrying the sans-IO
//! sync session. One connection per peer, one bidirectional stream per session.
//!
//! **Invariant:** this module and `host` are the only ones that know tokio and quinn.

mod driver;
mod frames;
mod host;
pub mod tls;

pub use driver::Outcome;
pub use host::{Host, HostConfig, Limits};

use crate::store::StoreError;
use crate::sync::SyncError;

/// Why a connection or session failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("sync: {0}")]
    Sync(#[from] SyncError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("stream: {0}")]
    Stream(String),
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer stalled: nothing for {0:?}")]
    Timeout(std::time::Duration),
    #[error("peer stalled inside a frame for {0:?}")]
    StalledFrame(std::time::Duration),
    #[error("the peer is not allowed")]
    NotAllowed,
}
