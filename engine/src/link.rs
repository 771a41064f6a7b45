//! Linking a new device (spec/devices.md, "Linking"), sans-IO: the one-time code a device
//! holding the user key shows, and the two messages of `libra/link/1`.
//!
//! The code carries the linking device's key (the new device pins it in the TLS handshake, so
//! nobody in between can answer) and a one-time secret (the new device proves it holds the code,
//! bound to its own TLS key, so a code seen over someone's shoulder is useless once used).

use serde::{Deserialize, Serialize};

use crate::codec::{self, Bytes, CodecError};
use crate::identity::{DeviceCert, DeviceId, MAX_DEVICE_NAME, UserId};
use crate::text::{base32, base32_decode};

pub const LINK_ALPN: &[u8] = b"libra/link/1";
/// What a link code's text starts with.
pub const CODE_PREFIX: &str = "libra-link:";
/// How long a code stays usable.
pub const LINK_VALIDITY_MS: u64 = 10 * 60 * 1000;
/// Most addresses in a code, and bytes in one.
pub const MAX_ADDRESSES: usize = 8;
pub const MAX_ADDRESS: usize = 255;
/// Most past agreement secrets handed to a new device.
pub const MAX_HISTORY: usize = 64;
/// Largest request and grant frames.
pub const MAX_REQUEST: usize = 1024;
pub const MAX_GRANT: usize = 16 * 1024;
const CHECK: usize = 3;
const CHECK_CONTEXT: &str = "libra link code v1";
const PROOF_CONTEXT: &[u8] = b"libra-link-v1 request\0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("not a link code (it starts with {CODE_PREFIX})")]
    NotACode,
    #[error("the link code was mistyped or cut off")]
    Checksum,
    #[error("the link code is damaged: {0}")]
    Malformed(String),
    #[error("unknown link code version {0}")]
    UnknownVersion(u8),
    #[error("the link code has too many or too long addresses")]
    Addresses,
    #[error("the link code expired; make a new one with `libra device link`")]
    Expired,
    #[error("the device refused to link this one: {0}")]
    Refused(String),
    #[error("the certificate the device sent does not certify this device")]
    BadCert,
}

impl From<CodecError> for LinkError {
    fn from(e: CodecError) -> Self {
        LinkError::Malformed(e.to_string())
    }
}

/// What a link code holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCode {
    pub version: u8,
    pub user: UserId,
    /// The device that links: the new device accepts no other key in the handshake.
    pub device: DeviceId,
    pub secret: Bytes<32>,
    pub addresses: Vec<String>,
    pub expires_ms: u64,
}

fn check(bytes: &[u8]) -> [u8; CHECK] {
    let h = blake3::derive_key(CHECK_CONTEXT, bytes);
    [h[0], h[1], h[2]]
}

impl LinkCode {
    pub fn to_text(&self) -> String {
        let mut bytes = codec::encode(self);
        let c = check(&bytes);
        bytes.extend_from_slice(&c);
        format!("{CODE_PREFIX}{}", base32(&bytes))
    }

    /// Parses and checks a code typed or scanned; `now_ms` refuses an expired one.
    pub fn parse(text: &str, now_ms: u64) -> Result<LinkCode, LinkError> {
        let t = text.trim().to_ascii_lowercase();
        let body = t.strip_prefix(CODE_PREFIX).ok_or(LinkError::NotACode)?;
        let bytes = base32_decode(body).map_err(|_| LinkError::Checksum)?;
        if bytes.len() <= CHECK {
            return Err(LinkError::Checksum);
        }
        let (msg, c) = bytes.split_at(bytes.len() - CHECK);
        if c != check(msg) {
            return Err(LinkError::Checksum);
        }
        let code: LinkCode = codec::decode(msg)?;
        if code.version != 1 {
            return Err(LinkError::UnknownVersion(code.version));
        }
        if code.addresses.len() > MAX_ADDRESSES || code.addresses.iter().any(|a| a.len() > MAX_ADDRESS) {
            return Err(LinkError::Addresses);
        }
        if code.expires_ms <= now_ms {
            return Err(LinkError::Expired);
        }
        Ok(code)
    }
}

/// The new device's request: its agreement key and name, and proof that it holds the code,
/// bound to the device key it authenticated with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRequest {
    pub version: u8,
    pub proof: Bytes<32>,
    pub agreement: Bytes<32>,
    pub name: String,
}

/// The proof of a request: keyed by the code's secret over both device keys, the agreement key
/// and the name.
pub fn proof(secret: &[u8; 32], linker: &DeviceId, new: &DeviceId, agreement: &[u8; 32], name: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(secret);
    h.update(PROOF_CONTEXT);
    h.update(linker.as_bytes());
    h.update(new.as_bytes());
    h.update(agreement);
    h.update(name.as_bytes());
    *h.finalize().as_bytes()
}

/// Whether `request`, from the TLS-authenticated `new` device, proves `secret`
/// (constant-time).
pub fn proves(request: &LinkRequest, secret: &[u8; 32], linker: &DeviceId, new: &DeviceId) -> bool {
    let want = proof(secret, linker, new, &request.agreement.0, &request.name);
    blake3::Hash::from(want) == blake3::Hash::from(request.proof.0)
}

/// The answer: the new device's certificate, the user's name, and the agreement secrets that
/// open the history this device can read (its current one first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkGrant {
    pub version: u8,
    /// Empty when refused.
    pub refusal: String,
    pub cert: Option<DeviceCert>,
    pub user_name: String,
    pub history: Vec<Bytes<32>>,
}

impl LinkGrant {
    pub fn refused(reason: &str) -> LinkGrant {
        LinkGrant { version: 1, refusal: reason.to_owned(), cert: None, user_name: String::new(), history: vec![] }
    }

    /// Checks a grant received by `device` (holding `agreement`) for the code's user; returns
    /// the certificate.
    pub fn check(&self, code: &LinkCode, device: &DeviceId, agreement: &[u8; 32]) -> Result<DeviceCert, LinkError> {
        if self.version != 1 {
            return Err(LinkError::UnknownVersion(self.version));
        }
        if !self.refusal.is_empty() {
            return Err(LinkError::Refused(crate::text::for_terminal(&self.refusal)));
        }
        if self.history.len() > MAX_HISTORY {
            return Err(LinkError::Malformed("too many history keys".into()));
        }
        let cert = self.cert.clone().ok_or(LinkError::BadCert)?;
        let b = &cert.body;
        if cert.verify().is_err() || b.user != code.user || b.device != *device || b.agreement.0 != *agreement {
            return Err(LinkError::BadCert);
        }
        Ok(cert)
    }
}

/// A device name for a request: at most [`MAX_DEVICE_NAME`] bytes, cut at a character boundary.
pub fn clip_name(name: &str) -> String {
    let mut end = name.len().min(MAX_DEVICE_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{DeviceKeys, UserKeys};

    fn code() -> LinkCode {
        LinkCode {
            version: 1,
            user: UserKeys::from_secret([1; 32]).id(),
            device: DeviceKeys::from_secrets([2; 32], [3; 32]).id(),
            secret: Bytes([4; 32]),
            addresses: vec!["192.0.2.1:7000".into()],
            expires_ms: 1000,
        }
    }

    #[test]
    fn codes_round_trip_and_refuse_damage() {
        let c = code();
        let text = c.to_text();
        assert_eq!(LinkCode::parse(&text, 999).expect("ok"), c);
        assert_eq!(LinkCode::parse(&text.to_uppercase(), 999).expect("ok"), c);
        assert_eq!(LinkCode::parse(&text, 1000), Err(LinkError::Expired));
        let mut bad = text.clone().into_bytes();
        let i = CODE_PREFIX.len() + 10;
        bad[i] = if bad[i] == b'a' { b'b' } else { b'a' };
        assert_eq!(LinkCode::parse(std::str::from_utf8(&bad).expect("ok"), 0), Err(LinkError::Checksum));
        assert_eq!(LinkCode::parse(&text[..text.len() - 3], 0), Err(LinkError::Checksum));
        assert_eq!(LinkCode::parse("libra:abc", 0), Err(LinkError::NotACode));
    }

    #[test]
    fn proofs_bind_both_devices() {
        let c = code();
        let new = DeviceKeys::from_secrets([5; 32], [6; 32]);
        let agreement = new.agreement_public();
        let req = LinkRequest {
            version: 1,
            proof: Bytes(proof(&c.secret.0, &c.device, &new.id(), &agreement, "phone")),
            agreement: Bytes(agreement),
            name: "phone".into(),
        };
        assert!(proves(&req, &c.secret.0, &c.device, &new.id()));
        assert!(!proves(&req, &[9; 32], &c.device, &new.id()));
        let other = DeviceKeys::from_secrets([7; 32], [8; 32]).id();
        assert!(!proves(&req, &c.secret.0, &c.device, &other));
        let renamed = LinkRequest { name: "laptop".into(), ..req };
        assert!(!proves(&renamed, &c.secret.0, &c.device, &new.id()));
    }

    #[test]
    fn grants_must_certify_the_requester() {
        let c = code();
        let user = UserKeys::from_secret([1; 32]);
        let new = DeviceKeys::from_secrets([5; 32], [6; 32]);
        let cert = user.certify(&new, "phone", 5);
        let grant = LinkGrant {
            version: 1,
            refusal: String::new(),
            cert: Some(cert.clone()),
            user_name: "A".into(),
            history: vec![],
        };
        assert_eq!(grant.check(&c, &new.id(), &new.agreement_public()).expect("ok"), cert);
        let other = DeviceKeys::from_secrets([7; 32], [8; 32]);
        assert_eq!(grant.check(&c, &other.id(), &other.agreement_public()), Err(LinkError::BadCert));
        let stranger = UserKeys::from_secret([9; 32]).certify(&new, "phone", 5);
        let forged = LinkGrant { cert: Some(stranger), ..grant };
        assert_eq!(forged.check(&c, &new.id(), &new.agreement_public()), Err(LinkError::BadCert));
        assert!(matches!(LinkGrant::refused("no").check(&c, &new.id(), &[0; 32]), Err(LinkError::Refused(_))));
    }
}
