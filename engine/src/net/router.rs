//! Dispatches accepted QUIC connections by ALPN to registered protocol handlers (as iroh's
//! `Router` does). A new protocol (blobs, device linking, relay) is a new handler.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::tls;

/// A protocol served on this node's endpoint.
pub trait ProtocolHandler: Send + Sync + 'static {
    /// Handles one connection that negotiated this handler's ALPN; runs until it ends.
    fn accept(&self, conn: quinn::Connection) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

#[derive(Default, Clone)]
pub struct Router {
    handlers: BTreeMap<Vec<u8>, Arc<dyn ProtocolHandler>>,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Serves `alpn` with `handler` (replacing any earlier one).
    pub fn register(mut self, alpn: &[u8], handler: Arc<dyn ProtocolHandler>) -> Router {
        self.handlers.insert(alpn.to_vec(), handler);
        self
    }

    /// The protocols offered in the TLS handshake.
    pub fn alpns(&self) -> Vec<Vec<u8>> {
        self.handlers.keys().cloned().collect()
    }

    /// Hands a connection to the handler of its protocol; one without a known ALPN is closed.
    pub async fn dispatch(&self, conn: quinn::Connection) {
        let handler = tls::alpn_of(&conn).and_then(|a| self.handlers.get(&a).cloned());
        match handler {
            Some(h) => h.accept(conn).await,
            None => conn.close(1u32.into(), b"unknown protocol"),
        }
    }
}
