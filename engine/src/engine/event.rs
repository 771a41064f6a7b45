//! What the engine tells front ends and drivers.

/// Something changed. Events are hints to refresh: a subscriber that lags re-reads the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Entries became durable; each log with its head now.
    Stored { logs: Vec<([u8; 32], u64)> },
    /// Who may connect or see which logs changed (allow-list, contacts, grants, invites).
    Interest,
    /// A peer connected or disconnected.
    Peer { device: [u8; 32], online: bool },
    /// A dialer's state for a peer device.
    Dial { device: [u8; 32], state: DialState },
    /// The network driver's state.
    Network(NetStatus),
    /// A write failed (the engine reopens the store and keeps serving reads), or writing works
    /// again.
    Storage { ok: bool, detail: String },
}

/// Whether the node is reachable, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetStatus {
    Listening(std::net::SocketAddr),
    Offline(String),
}

/// What a dialer is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialState {
    Connecting,
    /// Waiting before the next attempt, with why the last one ended.
    Waiting {
        retry_ms: u64,
        reason: String,
    },
    /// Cancelled.
    Stopped,
}
