//! Payload kinds and their canonical formats.
//!
//! Kinds 1–15 are identity and trust, 16–63 messaging (later), 64–127 files and blobs (later).
//! A node stores and forwards entries of kinds it does not know; only projections interpret them.

use serde::{Deserialize, Serialize};

use crate::codec::Bytes;
use crate::codec::{self, CodecError};
use crate::identity::{DeviceCert, DeviceId, Revocation};

pub const KIND_PROFILE: u16 = 1;
pub const KIND_DEVICE_CERT: u16 = 2;
pub const KIND_DEVICE_HELLO: u16 = 3;
pub const KIND_DEVICE_REVOKE: u16 = 4;
/// Any log: a revocation signed by the user key (spec/devices.md).
pub const KIND_REVOCATION: u16 = 5;
/// Device log: the device's new agreement key (rotation, spec/devices.md).
pub const KIND_AGREEMENT: u16 = 6;
/// Everything people say and do: a sealed `messaging::Body` (spec/messaging.md).
pub const KIND_SEALED: u16 = 16;

/// Longest display name, in bytes.
pub const MAX_NAME: usize = 64;

/// User log: the user's display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
}

/// User log: the user adds a device to its trust chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCertPayload {
    pub cert: DeviceCert,
}

/// Device log, seq 1: the device binds its log to its user by carrying its certificate, so a
/// device log can be placed in the trust chain without the user log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHello {
    pub cert: DeviceCert,
}

/// User log: the user removes a device from its trust chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRevoke {
    pub device: DeviceId,
    pub reason: String,
}

/// Any log: the user revokes a device, with its own signature, so the statement counts
/// wherever it is carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationPayload {
    pub revocation: Revocation,
}

/// Device log: from this entry on, messages to this device are sealed to `agreement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementKey {
    pub agreement: Bytes<32>,
}

/// A payload decoded by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Profile(Profile),
    DeviceCert(DeviceCertPayload),
    DeviceHello(DeviceHello),
    DeviceRevoke(DeviceRevoke),
    Revocation(RevocationPayload),
    Agreement(AgreementKey),
    /// A kind this version does not interpret; stored and forwarded as bytes.
    Unknown(u16),
}

impl Payload {
    pub fn kind(&self) -> u16 {
        match self {
            Payload::Profile(_) => KIND_PROFILE,
            Payload::DeviceCert(_) => KIND_DEVICE_CERT,
            Payload::DeviceHello(_) => KIND_DEVICE_HELLO,
            Payload::DeviceRevoke(_) => KIND_DEVICE_REVOKE,
            Payload::Revocation(_) => KIND_REVOCATION,
            Payload::Agreement(_) => KIND_AGREEMENT,
            Payload::Unknown(k) => *k,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Payload::Profile(p) => codec::encode(p),
            Payload::DeviceCert(p) => codec::encode(p),
            Payload::DeviceHello(p) => codec::encode(p),
            Payload::DeviceRevoke(p) => codec::encode(p),
            Payload::Revocation(p) => codec::encode(p),
            Payload::Agreement(p) => codec::encode(p),
            Payload::Unknown(_) => Vec::new(),
        }
    }

    pub fn decode(kind: u16, bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(match kind {
            KIND_PROFILE => Payload::Profile(codec::decode(bytes)?),
            KIND_DEVICE_CERT => Payload::DeviceCert(codec::decode(bytes)?),
            KIND_DEVICE_HELLO => Payload::DeviceHello(codec::decode(bytes)?),
            KIND_DEVICE_REVOKE => Payload::DeviceRevoke(codec::decode(bytes)?),
            KIND_REVOCATION => Payload::Revocation(codec::decode(bytes)?),
            KIND_AGREEMENT => Payload::Agreement(codec::decode(bytes)?),
            k => Payload::Unknown(k),
        })
    }

    pub fn kind_name(kind: u16) -> &'static str {
        match kind {
            KIND_PROFILE => "profile",
            KIND_DEVICE_CERT => "device_cert",
            KIND_DEVICE_HELLO => "device_hello",
            KIND_DEVICE_REVOKE => "device_revoke",
            KIND_REVOCATION => "revocation",
            KIND_AGREEMENT => "agreement",
            KIND_SEALED => "sealed",
            _ => "unknown",
        }
    }

    /// A JSON rendering for audit output.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let cert_json = |c: &DeviceCert| {
            json!({
                "user": c.body.user.to_string(),
                "device": c.body.device.to_string(),
                "agreement_key": hex::encode(c.body.agreement.0),
                "name": c.body.name,
                "issued_ms": c.body.issued_ms,
                "signature_valid": c.verify().is_ok(),
            })
        };
        match self {
            Payload::Profile(p) => json!({ "name": p.name }),
            Payload::DeviceCert(p) => cert_json(&p.cert),
            Payload::DeviceHello(p) => cert_json(&p.cert),
            Payload::DeviceRevoke(p) => {
                json!({ "device": p.device.to_string(), "reason": p.reason })
            }
            Payload::Revocation(p) => {
                let b = &p.revocation.body;
                json!({
                    "user": b.user.to_string(),
                    "device": b.device.to_string(),
                    "last_seq": b.last_seq,
                    "issued_ms": b.issued_ms,
                    "reason": b.reason,
                    "signature_valid": p.revocation.verify().is_ok(),
                })
            }
            Payload::Agreement(p) => json!({ "agreement_key": hex::encode(p.agreement.0) }),
            Payload::Unknown(k) => json!({ "unknown_kind": k }),
        }
    }
}
