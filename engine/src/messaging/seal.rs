//! Sealing a message for many devices without naming them (spec/messaging.md, "Sealing").
//!
//! A fresh content key encrypts the plaintext once (XChaCha20-Poly1305). For every recipient
//! device an x25519 agreement with one ephemeral key derives a wrap key that encrypts the content
//! key into a 48-byte slot. Slots carry no recipient ids and are sorted by their bytes; their
//! count is padded to a power of two with random slots, so a carrier learns only a bound on the
//! number of recipients. A recipient tries every slot with its one derived wrap key.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::codec::{self, Blob, Bytes};

/// Most recipient slots in one sealed payload (after padding).
pub const MAX_SLOTS: usize = 256;
const WRAP_CONTEXT: &str = "libra-seal-v1 wrap";

/// The sealed payload, encoded as `[version, ephemeral key, slots, nonce, ciphertext]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub version: u8,
    pub ephemeral: Bytes<32>,
    pub slots: Vec<Bytes<48>>,
    pub nonce: Bytes<24>,
    pub ciphertext: Blob,
}

/// Why a sealed payload did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("not addressed to this device")]
    NotForUs,
    #[error("addressed to this device, but the content does not decrypt")]
    Corrupt,
    #[error("malformed sealed payload: {0}")]
    Malformed(String),
    #[error("{0} recipients exceed the limit of {MAX_SLOTS}")]
    TooManyRecipients(usize),
    #[error("a recipient key is not usable for agreement")]
    BadRecipientKey,
}

/// The randomness one sealing uses; passed in so vectors can fix it.
pub struct SealRandom {
    pub ephemeral: [u8; 32],
    pub content_key: [u8; 32],
    pub nonce: [u8; 24],
    /// Source of padding slots.
    pub padding: [u8; 32],
}

impl SealRandom {
    pub fn fresh() -> SealRandom {
        let r: [u8; 120] = crate::identity::random_bytes();
        let part = |at: usize| -> [u8; 32] { std::array::from_fn(|i| r[at + i]) };
        SealRandom {
            ephemeral: part(0),
            content_key: part(32),
            padding: part(64),
            nonce: std::array::from_fn(|i| r[96 + i]),
        }
    }
}

fn wrap_key(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(WRAP_CONTEXT);
    h.update(shared);
    h.update(ephemeral);
    h.update(recipient);
    *h.finalize().as_bytes()
}

/// Each wrap key is used exactly once (fresh ephemeral key per message), so a zero nonce is safe.
const SLOT_NONCE: [u8; 24] = [0; 24];

pub fn seal(plaintext: &[u8], aad: &[u8], recipients: &[[u8; 32]], rnd: &SealRandom) -> Result<Sealed, SealError> {
    let padded = recipients.len().max(1).next_power_of_two();
    if padded > MAX_SLOTS {
        return Err(SealError::TooManyRecipients(recipients.len()));
    }
    let eph = StaticSecret::from(rnd.ephemeral);
    let eph_pub = PublicKey::from(&eph).to_bytes();
    let mut slots = Vec::with_capacity(padded);
    for r in recipients {
        let shared = eph.diffie_hellman(&PublicKey::from(*r));
        if !shared.was_contributory() {
            return Err(SealError::BadRecipientKey);
        }
        let k = wrap_key(shared.as_bytes(), &eph_pub, r);
        let slot = XChaCha20Poly1305::new(&k.into())
            .encrypt(&XNonce::from(SLOT_NONCE), &rnd.content_key[..])
            .map_err(|_| SealError::Corrupt)?;
        slots.push(Bytes(<[u8; 48]>::try_from(slot.as_slice()).map_err(|_| SealError::Corrupt)?));
    }
    let mut filler = blake3::Hasher::new_derive_key("libra-seal-v1 padding");
    filler.update(&rnd.padding);
    let mut xof = filler.finalize_xof();
    while slots.len() < padded {
        let mut s = [0u8; 48];
        xof.fill(&mut s);
        slots.push(Bytes(s));
    }
    slots.sort();
    let ciphertext = XChaCha20Poly1305::new(&rnd.content_key.into())
        .encrypt(&XNonce::from(rnd.nonce), Payload { msg: plaintext, aad })
        .map_err(|_| SealError::Corrupt)?;
    Ok(Sealed { version: 1, ephemeral: Bytes(eph_pub), slots, nonce: Bytes(rnd.nonce), ciphertext: Blob(ciphertext) })
}

impl Sealed {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Sealed, SealError> {
        let s: Sealed = codec::decode(bytes).map_err(|e| SealError::Malformed(e.to_string()))?;
        if s.version != 1 {
            return Err(SealError::Malformed(format!("unknown version {}", s.version)));
        }
        if s.slots.is_empty() || s.slots.len() > MAX_SLOTS {
            return Err(SealError::Malformed(format!("{} slots", s.slots.len())));
        }
        Ok(s)
    }

    /// Opens the payload with this device's agreement key.
    pub fn open(&self, secret: &StaticSecret, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        self.open_with(&self.content_key(secret)?, aad)
    }

    /// The content key, if a slot is addressed to `secret`'s public key.
    pub fn content_key(&self, secret: &StaticSecret) -> Result<[u8; 32], SealError> {
        self.content_key_for(secret, &PublicKey::from(secret).to_bytes())
    }

    /// [`Sealed::content_key`] with the secret's public key known (`my_pub`): a reader that
    /// opens many payloads computes it once, not once per payload (it costs as much as the
    /// key agreement itself).
    pub fn content_key_for(&self, secret: &StaticSecret, my_pub: &[u8; 32]) -> Result<[u8; 32], SealError> {
        let shared = secret.diffie_hellman(&PublicKey::from(self.ephemeral.0));
        if !shared.was_contributory() {
            return Err(SealError::NotForUs);
        }
        let k = wrap_key(shared.as_bytes(), &self.ephemeral.0, my_pub);
        let wrap = XChaCha20Poly1305::new(&k.into());
        let content_key = self
            .slots
            .iter()
            .find_map(|s| wrap.decrypt(&XNonce::from(SLOT_NONCE), &s.0[..]).ok())
            .ok_or(SealError::NotForUs)?;
        <[u8; 32]>::try_from(content_key.as_slice()).map_err(|_| SealError::Corrupt)
    }

    /// Opens the content with a content key known from before (spec/devices.md, "Retention").
    pub fn open_with(&self, key: &[u8; 32], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        XChaCha20Poly1305::new(&(*key).into())
            .decrypt(&XNonce::from(self.nonce.0), Payload { msg: &self.ciphertext.0, aad })
            .map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(i: u8) -> (StaticSecret, [u8; 32]) {
        let s = StaticSecret::from([i; 32]);
        let p = PublicKey::from(&s).to_bytes();
        (s, p)
    }

    #[test]
    fn every_recipient_opens_others_do_not() {
        let devs: Vec<_> = (1..=5).map(device).collect();
        let pubs: Vec<[u8; 32]> = devs[..3].iter().map(|d| d.1).collect();
        let sealed = seal(b"hello", b"aad", &pubs, &SealRandom::fresh()).expect("seal");
        assert_eq!(sealed.slots.len(), 4, "3 recipients padded to 4 slots");
        let back = Sealed::decode(&sealed.encode()).expect("decode");
        for d in &devs[..3] {
            assert_eq!(back.open(&d.0, b"aad").expect("open"), b"hello");
            assert_eq!(back.open(&d.0, b"other aad"), Err(SealError::Corrupt));
        }
        for d in &devs[3..] {
            assert_eq!(back.open(&d.0, b"aad"), Err(SealError::NotForUs));
        }
    }

    #[test]
    fn a_fresh_seal_random_has_four_independent_parts() {
        // One draw of 120 bytes is cut in four: no part may repeat another's bytes.
        let r = SealRandom::fresh();
        let parts: [&[u8]; 4] = [&r.ephemeral, &r.content_key, &r.padding, &r.nonce];
        for (i, a) in parts.iter().enumerate() {
            for b in &parts[i + 1..] {
                assert_ne!(&a[..24], &b[..24]);
            }
        }
        assert_ne!(SealRandom::fresh().ephemeral, r.ephemeral);
    }

    #[test]
    fn the_slot_limit_is_the_specified_one() {
        // spec/messaging.md §4.4.
        assert_eq!(MAX_SLOTS, 256);
    }

    #[test]
    fn slots_are_padded_to_a_power_of_two_up_to_the_limit() {
        let pubs: Vec<[u8; 32]> = (0..=MAX_SLOTS).map(|i| device((i % 250) as u8 + 1).1).collect();
        for (n, slots) in [(0, 1), (1, 1), (2, 2), (3, 4), (5, 8), (MAX_SLOTS, MAX_SLOTS)] {
            let sealed = seal(b"x", b"", &pubs[..n], &SealRandom::fresh()).expect("seal");
            assert_eq!(sealed.slots.len(), slots, "{n} recipients");
            assert!(sealed.slots.windows(2).all(|w| w[0] <= w[1]), "slots sorted");
            assert_eq!(Sealed::decode(&sealed.encode()), Ok(sealed));
        }
        assert_eq!(seal(b"x", b"", &pubs, &SealRandom::fresh()), Err(SealError::TooManyRecipients(MAX_SLOTS + 1)));
    }

    #[test]
    fn fixed_randomness_seals_the_same_bytes_and_padding_follows_its_seed() {
        let rnd = |padding| SealRandom { ephemeral: [1; 32], content_key: [2; 32], nonce: [3; 24], padding };
        let to = [device(1).1];
        let a = seal(b"hello", b"aad", &to, &rnd([4; 32])).expect("seal");
        assert_eq!(seal(b"hello", b"aad", &to, &rnd([4; 32])), Ok(a.clone()));
        let b = seal(b"hello", b"aad", &to, &rnd([5; 32])).expect("seal");
        assert_eq!((&a.ephemeral, &a.nonce, &a.ciphertext), (&b.ephemeral, &b.nonce, &b.ciphertext));
        // One recipient, one slot, no padding: the slot does not depend on the padding seed.
        assert_eq!(a.slots, b.slots);
        let two = [device(1).1, device(2).1];
        let (a, b) =
            (seal(b"", b"", &two, &rnd([4; 32])).expect("seal"), seal(b"", b"", &two, &rnd([5; 32])).expect("seal"));
        assert_eq!(a.slots, b.slots, "two recipients fill both slots");
        let three = [device(1).1, device(2).1, device(3).1];
        let (a, b) = (
            seal(b"", b"", &three, &rnd([4; 32])).expect("seal"),
            seal(b"", b"", &three, &rnd([5; 32])).expect("seal"),
        );
        assert_ne!(a.slots, b.slots, "the fourth slot is padding");
        assert_eq!(a.content_key(&device(3).0), Ok([2; 32]));
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        let good = seal(b"x", b"", &[device(1).1], &SealRandom::fresh()).expect("seal");
        let with = |f: &dyn Fn(&mut Sealed)| {
            let mut s = good.clone();
            f(&mut s);
            Sealed::decode(&s.encode())
        };
        assert!(matches!(with(&|s| s.version = 2), Err(SealError::Malformed(_))));
        assert!(matches!(with(&|s| s.version = 0), Err(SealError::Malformed(_))));
        assert!(matches!(with(&|s| s.slots.clear()), Err(SealError::Malformed(_))));
        let full = with(&|s| s.slots = vec![Bytes([0; 48]); MAX_SLOTS]).expect("256 slots");
        assert_eq!(full.slots.len(), MAX_SLOTS);
        assert!(matches!(with(&|s| s.slots = vec![Bytes([0; 48]); MAX_SLOTS + 1]), Err(SealError::Malformed(_))));
        assert!(matches!(Sealed::decode(&[0x95, 0x01]), Err(SealError::Malformed(_))));
        // A low-order ephemeral key opens for nobody.
        let low = with(&|s| s.ephemeral = Bytes([0; 32])).expect("decodes");
        assert_eq!(low.open(&device(1).0, b""), Err(SealError::NotForUs));
    }

    #[test]
    fn low_order_recipient_keys_are_refused() {
        assert_eq!(seal(b"x", b"", &[[0u8; 32]], &SealRandom::fresh()), Err(SealError::BadRecipientKey));
    }
}
