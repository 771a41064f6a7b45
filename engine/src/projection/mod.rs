//! Views folded from the logs. A projection is a pure fold: the same entries give the same state
//! whatever order the logs arrive in (within a log, entries always come in seq order).
//!
//! The store persists each view's state together with the log positions it reflects, in the same
//! write batch as the entries, so a restart resumes incrementally; a rebuild from the logs alone
//! must give exactly the same state.

mod trust;

pub use trust::{DeviceRecord, TrustView, UserRecord};

use serde::{Serialize, de::DeserializeOwned};

use crate::log::Entry;

/// A view over the logs.
pub trait Projection: Default + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug {
    /// Key under which the store keeps this view; changing the fold means changing the name.
    const NAME: &'static str;

    /// Folds one validated entry (with its payload) into the state. Returns whether the state
    /// changed. Must never fail: an entry the view cannot interpret is skipped.
    fn apply(&mut self, entry: &Entry) -> bool;
}
