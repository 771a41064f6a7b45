//! Sync: range-based set reconciliation of log heads, then delta transfer (spec/sync.md).
//!
//! **Invariant:** sans-IO. `Session` is the reconciliation state machine over `Message`s;
//! `Conn` is the whole protocol of one connection over bytes (framing, introductions,
//! interest, parking, transfer, live push), with writes as effects. Drivers (`crate::net`
//! for QUIC and any byte stream) only move bytes. Nothing here reads a clock or a socket.

mod conn;
mod framing;
mod headset;
#[doc(hidden)]
pub mod hostile;
mod interest;
mod local;
pub mod memory;
mod session;
pub mod sketch;
mod wire;

pub use conn::{Conn, Effect, End, INGEST_BATCH, Ingested, LINK_GRACE, Limits, Outcome, PARK_LIMIT, misbehaviour};
pub use framing::FrameDecoder;
pub use headset::{AUTHOR_PREFIX, Bound, FP_LEN, HeadItem, HeadSet, ID_PREFIX};
pub use interest::{GRANT_CONTEXT, GRANT_TAG, MAX_GRANTS, grant_tag, interest_set, offer_set};
pub use local::{ChangePoint, Local, LocalError, LogSet, Offer};
pub use session::{
    BUCKETS, LIST_THRESHOLD, LogIndex, MAX_ROUNDS, PLACE_DEPTH, SKETCH_MIN, Session, SessionStats, Transfer,
};
pub use wire::{ALPN, Item, MAX_FRAME, MAX_ITEMS, MAX_RANGES, MAX_SINCE, MAX_WANTS, Message, Range, RangeBody, frame};

/// Why a sync session ended badly. Every variant closes that session only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("frame of {0} bytes exceeds the limit")]
    FrameTooLarge(usize),
    #[error("limit exceeded: {0}")]
    LimitExceeded(&'static str),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("peer sent an invalid entry: {0}")]
    InvalidEntry(String),
    #[error("peer closed the session ({code}): {reason}")]
    PeerClosed { code: u16, reason: String },
    #[error("the peer is neither allowed nor introduced by a valid invite")]
    NotAllowed,
    /// Not the peer's fault: a local read failed (code 100, like any local error).
    #[error("local store: {0}")]
    Local(String),
}

impl SyncError {
    /// The code sent in a `Close` message (spec/sync.md, "Error codes").
    pub fn code(&self) -> u16 {
        match self {
            SyncError::Malformed(_) => 1,
            SyncError::FrameTooLarge(_) => 2,
            SyncError::LimitExceeded(_) => 3,
            SyncError::Protocol(_) => 4,
            SyncError::InvalidEntry(_) => 5,
            SyncError::PeerClosed { code, .. } => *code,
            SyncError::NotAllowed => 6,
            SyncError::Local(_) => 100,
        }
    }
}
