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
    /// Someone new is visible nearby.
    Nearby,
    /// A file was asked for, or a download setting changed.
    Files,
    /// A download moved, finished or stopped short.
    Transfer,
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
    /// The relay dialer found no contact that could introduce or relay us to the peer.
    Unreachable {
        reason: String,
    },
}

/// Why a peer is not connected, as far as the dialers know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// The direct dialer (known addresses).
    pub dialer: Option<DialState>,
    /// The last failed attempt through contacts (punching, relaying).
    pub through_contacts: Option<String>,
}

impl Reach {
    /// Why a peer with record `r` is not connected: what the dialers reported, else what the
    /// node has to go on. One wording for every front end.
    pub fn explain(reach: Option<&Reach>, r: &crate::store::PeerRecord) -> String {
        if let Some(why) = reach.and_then(Reach::why) {
            return why;
        }
        if !r.allowed {
            "not allowed to connect".into()
        } else if r.dial_addresses().is_empty() {
            "no address known; waiting for a contact online to introduce or relay".into()
        } else {
            "not tried yet".into()
        }
    }

    /// One line for people: why the peer is not connected (`None`: nothing tried yet).
    pub fn why(&self) -> Option<String> {
        let direct = match &self.dialer {
            Some(DialState::Waiting { retry_ms, reason }) => {
                Some(format!("{reason}; retrying in {} s", retry_ms.div_ceil(1000)))
            }
            Some(DialState::Connecting) => Some("connecting".to_owned()),
            _ => None,
        };
        match (direct, &self.through_contacts) {
            (Some(d), Some(c)) => Some(format!("{d}; {c}")),
            (Some(d), None) => Some(d),
            (None, Some(c)) => Some(format!("no address known; {c}")),
            (None, None) => None,
        }
    }
}
