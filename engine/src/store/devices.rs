//! Local device bookkeeping: which revocations of our own devices this device has already
//! rotated its agreement key for (spec/devices.md, "Rotation"). Never sent.

use std::collections::BTreeSet;

use super::{Store, StoreError};
use crate::identity::DeviceId;

const ROTATED_KEY: &[u8] = b"rotated-for";

impl Store {
    /// Own devices whose revocation this device has rotated its key for.
    pub fn rotated_for(&self) -> Result<BTreeSet<DeviceId>, StoreError> {
        let Some(v) = self.meta.get(ROTATED_KEY)? else { return Ok(BTreeSet::new()) };
        crate::codec::decode(&v).map_err(|e| StoreError::Corrupt(format!("rotated-for: {e}")))
    }

    pub fn set_rotated_for(&self, devices: &BTreeSet<DeviceId>) -> Result<(), StoreError> {
        self.sync.guard(self.meta.insert(ROTATED_KEY, crate::codec::encode(devices)))?;
        self.sync_now()
    }
}
