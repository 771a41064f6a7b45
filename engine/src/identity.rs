//! Identities: a user key, and per device an ed25519 signing key and an x25519 agreement key.
//!
//! The user key certifies each device with a [`DeviceCert`]; that certificate is the first link
//! of the device trust chain. The user's log is written only by the holder of the user key and
//! each device's log only by that device, so no log ever has two writers.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Bytes};
use crate::text::{self, IdKind};

/// Domain-separation prefix of a device certificate signature.
pub const CERT_CONTEXT: &[u8] = b"libra-device-cert-v1\0";
/// Longest device name a certificate may carry, in bytes.
pub const MAX_DEVICE_NAME: usize = 64;

/// A public ed25519 key identifying a user.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub Bytes<32>);

/// A public ed25519 key identifying a device (and its log).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceId(pub Bytes<32>);

macro_rules! id_text {
    ($t:ty, $kind:expr) => {
        impl $t {
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0.0
            }
            pub fn short(&self) -> String {
                text::short_id($kind, &self.0.0)
            }
            pub fn parse(s: &str) -> Result<Self, text::TextError> {
                text::decode_id_of($kind, s).map(|k| Self(Bytes(k)))
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&text::encode_id($kind, &self.0.0))
            }
        }
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.short())
            }
        }
    };
}
id_text!(UserId, IdKind::User);
id_text!(DeviceId, IdKind::Device);

/// Fills a fresh 32-byte secret from the operating system's generator.
pub fn random_secret() -> [u8; 32] {
    random_bytes()
}

/// Fills `N` fresh bytes from the operating system's generator, in one call (a message's seal
/// takes all it needs at once: a system call per part cost about a microsecond each).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut seed = [0u8; N];
    // Without an OS random source no key can be made safely; that is not recoverable.
    if let Err(e) = getrandom::fill(&mut seed) {
        panic!("the operating system's random generator failed: {e}");
    }
    seed
}

/// The user's identity key (held by the device that created the identity).
pub struct UserKeys {
    pub signing: SigningKey,
}

impl UserKeys {
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self { signing: SigningKey::from_bytes(&secret) }
    }
    pub fn generate() -> Self {
        Self::from_secret(random_secret())
    }
    pub fn id(&self) -> UserId {
        UserId(Bytes(self.signing.verifying_key().to_bytes()))
    }

    /// Certifies a device as belonging to this user.
    pub fn certify(&self, device: &DeviceKeys, name: &str, issued_ms: u64) -> DeviceCert {
        self.certify_key(device.id(), device.agreement_public(), name, issued_ms)
    }

    /// [`UserKeys::certify`] from the device's public keys (a device being linked keeps its
    /// secrets).
    pub fn certify_key(&self, device: DeviceId, agreement: [u8; 32], name: &str, issued_ms: u64) -> DeviceCert {
        let body = DeviceCertBody {
            version: 1,
            user: self.id(),
            device,
            agreement: Bytes(agreement),
            name: name.to_owned(),
            issued_ms,
        };
        let signature = self.signing.sign(&body.signing_input());
        DeviceCert { body, signature: Bytes(signature.to_bytes()) }
    }

    /// Revokes a device: entries it signs after `last_seq` are refused everywhere.
    pub fn revoke(&self, device: DeviceId, last_seq: u64, reason: &str, issued_ms: u64) -> Revocation {
        let body =
            RevocationBody { version: 1, user: self.id(), device, last_seq, issued_ms, reason: reason.to_owned() };
        let signature = self.signing.sign(&body.signing_input());
        Revocation { body, signature: Bytes(signature.to_bytes()) }
    }
}

/// One device's keys: ed25519 for signing its log, x25519 for key agreement.
pub struct DeviceKeys {
    pub signing: SigningKey,
    /// Private so that the public key below never falls out of step with it.
    agreement: x25519_dalek::StaticSecret,
    /// Derived once: every seal names it, and deriving costs a scalar multiplication.
    agreement_public: [u8; 32],
}

impl DeviceKeys {
    pub fn from_secrets(signing: [u8; 32], agreement: [u8; 32]) -> Self {
        let agreement = x25519_dalek::StaticSecret::from(agreement);
        let agreement_public = x25519_dalek::PublicKey::from(&agreement).to_bytes();
        Self { signing: SigningKey::from_bytes(&signing), agreement, agreement_public }
    }
    pub fn generate() -> Self {
        Self::from_secrets(random_secret(), random_secret())
    }
    pub fn id(&self) -> DeviceId {
        DeviceId(Bytes(self.signing.verifying_key().to_bytes()))
    }
    /// The x25519 secret this device opens with.
    pub fn agreement(&self) -> &x25519_dalek::StaticSecret {
        &self.agreement
    }
    pub fn agreement_public(&self) -> [u8; 32] {
        self.agreement_public
    }
    /// Puts a fresh agreement secret in place (a rotation); returns the old one.
    pub fn replace_agreement(&mut self, fresh: x25519_dalek::StaticSecret) -> x25519_dalek::StaticSecret {
        self.agreement_public = x25519_dalek::PublicKey::from(&fresh).to_bytes();
        std::mem::replace(&mut self.agreement, fresh)
    }
}

/// The signed part of a device certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCertBody {
    pub version: u8,
    pub user: UserId,
    pub device: DeviceId,
    pub agreement: Bytes<32>,
    pub name: String,
    pub issued_ms: u64,
}

impl DeviceCertBody {
    pub fn signing_input(&self) -> Vec<u8> {
        let mut out = CERT_CONTEXT.to_vec();
        codec::encode_into(self, &mut out);
        out
    }
}

/// A user's statement, signed with the user key, that a device key belongs to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCert {
    pub body: DeviceCertBody,
    pub signature: Bytes<64>,
}

/// Why a device certificate is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("unknown certificate version {0}")]
    UnknownVersion(u8),
    #[error("device name (or revocation reason) too long")]
    NameTooLong,
    #[error("the user key is not a valid ed25519 key")]
    BadUserKey,
    #[error("the user key's signature on the certificate does not verify")]
    BadSignature,
}

impl CertError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownVersion(_) => "unknown_version",
            Self::NameTooLong => "name_too_long",
            Self::BadUserKey => "bad_user_key",
            Self::BadSignature => "bad_signature",
        }
    }
}

impl DeviceCert {
    /// Checks the certificate's own signature (not whether the user log still lists it).
    pub fn verify(&self) -> Result<(), CertError> {
        let b = &self.body;
        verify_user_statement(b.version, b.name.len() <= MAX_DEVICE_NAME, &b.user, &b.signing_input(), &self.signature)
    }
}

/// Signing context of revocations (spec/devices.md).
pub const REVOKE_CONTEXT: &[u8] = b"libra-device-revoke-v1\0";
/// Longest revocation reason, in bytes.
pub const MAX_REASON: usize = 256;

/// The signed part of a revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationBody {
    pub version: u8,
    pub user: UserId,
    pub device: DeviceId,
    /// The device's last entry that stays valid; its later entries are refused.
    pub last_seq: u64,
    pub issued_ms: u64,
    pub reason: String,
}

impl RevocationBody {
    pub fn signing_input(&self) -> Vec<u8> {
        let mut out = REVOKE_CONTEXT.to_vec();
        codec::encode_into(self, &mut out);
        out
    }
}

/// A user's statement, signed with the user key, that a device no longer belongs to it. Like a
/// certificate it proves itself, so it counts in whichever log carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub body: RevocationBody,
    pub signature: Bytes<64>,
}

impl Revocation {
    pub fn verify(&self) -> Result<(), CertError> {
        let b = &self.body;
        verify_user_statement(b.version, b.reason.len() <= MAX_REASON, &b.user, &b.signing_input(), &self.signature)
    }
}

/// The checks of a statement signed by a user key, in spec order: version, text length, key,
/// signature (strict).
fn verify_user_statement(
    version: u8,
    text_fits: bool,
    user: &UserId,
    input: &[u8],
    signature: &Bytes<64>,
) -> Result<(), CertError> {
    if version != 1 {
        return Err(CertError::UnknownVersion(version));
    }
    if !text_fits {
        return Err(CertError::NameTooLong);
    }
    let key = VerifyingKey::from_bytes(user.as_bytes()).map_err(|_| CertError::BadUserKey)?;
    key.verify_strict(input, &Signature::from_bytes(&signature.0)).map_err(|_| CertError::BadSignature)
}

/// Domain separation of safety numbers (spec/identity.md, "Safety numbers").
pub const SAFETY_CONTEXT: &str = "libra safety number v1";
/// What a safety number's QR code holds: this, then the 60 digits without spaces.
pub const SAFETY_QR_PREFIX: &str = "libra-sn:";

/// The code two people compare to know they hold each other's real user keys: 60 decimal
/// digits in 12 groups of 5, the same on both sides. The keys are taken in byte order, so
/// neither side comes first; each group is 5 bytes of blake3 output, big-endian, mod 100 000
/// (the bias, about 2^-23, is immaterial).
pub fn safety_number(a: &UserId, b: &UserId) -> String {
    let (lo, hi) = if a.as_bytes() <= b.as_bytes() { (a, b) } else { (b, a) };
    let mut h = blake3::Hasher::new_derive_key(SAFETY_CONTEXT);
    h.update(lo.as_bytes());
    h.update(hi.as_bytes());
    let mut out = [0u8; 60];
    h.finalize_xof().fill(&mut out);
    out.chunks(5)
        .map(|c| {
            let n = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod safety_tests {
    use super::*;

    #[test]
    fn safety_numbers_are_symmetric_and_distinct() {
        let (a, b, c) = (UserId(Bytes([1; 32])), UserId(Bytes([2; 32])), UserId(Bytes([3; 32])));
        let ab = safety_number(&a, &b);
        assert_eq!(ab, safety_number(&b, &a));
        assert_ne!(ab, safety_number(&a, &c));
        assert_eq!(ab.len(), 12 * 5 + 11);
        assert!(ab.split(' ').all(|g| g.len() == 5 && g.bytes().all(|d| d.is_ascii_digit())));
    }
}
