//! The log: entries, their canonical bytes, and the pure rules that validate a chain.
//!
//! **Invariant:** nothing here does I/O or reads a clock; the store calls in with bytes.

mod entry;
mod error;
mod fork;
mod validate;

pub use entry::{
    ENTRY_CONTEXT, Entry, EntryId, FORMAT_VERSION, Header, MAX_PAYLOAD, MAX_SIGNED_HEADER, SignedHeader, sign_entry,
};
pub use error::ValidationError;
pub use fork::{ForkError, ForkProof};
pub use validate::{
    ChainPoint, check_link, check_payload, suspicious_r, validate_batch, validate_next, validate_run, verify_many,
    verify_many_strict, verify_signature,
};
