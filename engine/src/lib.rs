//! Libra's engine: signed, hash-chained, append-only logs; their on-disk store; the projections
//! (views) folded from them.
//!
//! The protocol core (`codec`, `identity`, `clock`, `log`, `projection`, `vectors`) is sans-IO: plain
//! functions and values over bytes, with time passed in. Only `store` and `keyfile` touch the
//! disk. See ARCHITECTURE.md for the map and spec/ for the formats.
// Denied, not forbidden: `winsec` alone allows it, for Windows access control through FFI.
#![deny(unsafe_code)]

pub mod backup;
pub mod blob;
pub mod bundle;
pub mod clock;
pub mod codec;
pub mod contacts;
pub mod control;
pub mod devices;
pub mod discovery;
pub mod engine;
pub mod identity;
pub mod interest_cache;
pub mod keyfile;
pub mod knock;
pub mod link;
pub mod log;
pub mod messaging;
pub mod messenger;
pub mod nearby;
pub mod net;
pub mod node;
pub mod par;
pub mod payload;
pub mod phrase;
pub mod projection;
pub mod relay_wire;
pub mod short_invite;
pub mod store;
pub mod stun;
pub mod sync;
pub mod testkit;
pub mod text;
pub mod vectors;
pub mod winsec;

pub use identity::{DeviceCert, DeviceKeys, UserKeys};
pub use log::{Entry, EntryId, Header, SignedHeader};
pub use store::Store;
