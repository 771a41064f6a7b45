//! LAN discovery beacons, sans-IO (spec/connectivity.md, "LAN discovery"). A beacon says "a
//! Libra node listens on this port" to the local network and nothing a stranger can use: no
//! name, no key, no stable identifier. It carries one short tag per peer device the sender
//! would talk to (a contact's device or its own other device), keyed by the pair's static
//! Diffie-Hellman secret and the current time epoch, padded with random tags; only that peer
//! can compute the tag, and tags change every epoch.

use std::collections::HashMap;

use crate::identity::random_secret;

/// The first bytes of every beacon.
pub const MAGIC: [u8; 4] = *b"LBN1";
/// The UDP port beacons go to by default.
pub const DEFAULT_PORT: u16 = 7445;
/// How long one set of tags is used.
pub const EPOCH_SECS: u64 = 300;
/// Bytes of one tag.
pub const TAG_LEN: usize = 8;
/// Most tags in one beacon (a node with more peers sends several beacons).
pub const MAX_TAGS: usize = 64;
/// Tags are padded with random ones to a multiple of this, so a beacon tells the number of
/// peers only roughly.
pub const TAG_BUCKET: usize = 8;
/// The largest beacon: header and [`MAX_TAGS`] tags.
pub const MAX_BEACON: usize = HEADER + MAX_TAGS * TAG_LEN;
const HEADER: usize = 4 + 2 + 4 + 1;

const PAIR_CONTEXT: &str = "libra lan pair v1";

pub type Tag = [u8; TAG_LEN];

/// Why a datagram is not a beacon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BeaconError {
    #[error("not a Libra beacon")]
    Magic,
    #[error("beacon of {0} bytes does not match its tag count")]
    Length(usize),
    #[error("beacon with {0} tags exceeds the limit of {MAX_TAGS}")]
    TooManyTags(usize),
}

/// One beacon: the sender's QUIC port, the epoch its tags are for, and the tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    pub port: u16,
    pub epoch: u32,
    pub tags: Vec<Tag>,
}

impl Beacon {
    /// `MAGIC ‖ port u16 BE ‖ epoch u32 BE ‖ count u8 ‖ tags`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.tags.len() * TAG_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.push(u8::try_from(self.tags.len()).unwrap_or(u8::MAX));
        for t in &self.tags {
            out.extend_from_slice(t);
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Beacon, BeaconError> {
        if b.len() < HEADER || b[..4] != MAGIC {
            return Err(BeaconError::Magic);
        }
        let port = u16::from_be_bytes([b[4], b[5]]);
        let epoch = u32::from_be_bytes([b[6], b[7], b[8], b[9]]);
        let count = usize::from(b[10]);
        if count > MAX_TAGS {
            return Err(BeaconError::TooManyTags(count));
        }
        if b.len() != HEADER + count * TAG_LEN {
            return Err(BeaconError::Length(b.len()));
        }
        let tags = b[HEADER..].chunks_exact(TAG_LEN).map(|c| c.try_into().unwrap_or([0; TAG_LEN])).collect();
        Ok(Beacon { port, epoch, tags })
    }
}

/// The epoch of a wall-clock time.
pub fn epoch_of(wall_ms: u64, epoch_secs: u64) -> u32 {
    u32::try_from(wall_ms / 1000 / epoch_secs.max(1)).unwrap_or(u32::MAX)
}

/// The secret two devices share for discovery: their static X25519 agreement, bound to both
/// device keys (in byte order, so both sides derive the same).
pub fn pair_secret(
    own_agreement: &x25519_dalek::StaticSecret,
    own_device: &[u8; 32],
    peer_device: &[u8; 32],
    peer_agreement: &[u8; 32],
) -> [u8; 32] {
    let shared = own_agreement.diffie_hellman(&x25519_dalek::PublicKey::from(*peer_agreement));
    let (lo, hi) = if own_device <= peer_device { (own_device, peer_device) } else { (peer_device, own_device) };
    let mut h = blake3::Hasher::new_derive_key(PAIR_CONTEXT);
    h.update(shared.as_bytes());
    h.update(lo);
    h.update(hi);
    *h.finalize().as_bytes()
}

/// The tag `sender` puts in its beacons of `epoch` for the peer it shares `secret` with.
pub fn tag(secret: &[u8; 32], sender: &[u8; 32], epoch: u32) -> Tag {
    let mut h = blake3::Hasher::new_keyed(secret);
    h.update(b"beacon");
    h.update(sender);
    h.update(&epoch.to_be_bytes());
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(&h.finalize().as_bytes()[..TAG_LEN]);
    t
}

/// The peers a node talks to, each with the pair secret: what beacons are made and recognised
/// from.
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    pub own_device: [u8; 32],
    /// `(peer device, pair secret)`.
    pub peers: Vec<([u8; 32], [u8; 32])>,
    /// Secrets of our open invites (`short_invite::beacon_secret`): tags we send so that a
    /// holder of one finds us, and recognise nobody by.
    pub invites: Vec<[u8; 32]>,
}

impl Pairs {
    /// The beacons to send this epoch: every peer's tag, shuffled among random padding, at most
    /// [`MAX_TAGS`] per beacon. A node with no peers sends none.
    pub fn beacons(&self, port: u16, epoch: u32) -> Vec<Beacon> {
        let mut tags: Vec<Tag> =
            self.peers.iter().map(|(_, s)| s).chain(&self.invites).map(|s| tag(s, &self.own_device, epoch)).collect();
        if tags.is_empty() {
            return Vec::new();
        }
        let padded = tags.len().div_ceil(TAG_BUCKET) * TAG_BUCKET;
        while tags.len() < padded {
            let r = random_secret();
            tags.push(r[..TAG_LEN].try_into().unwrap_or([0; TAG_LEN]));
        }
        shuffle(&mut tags);
        tags.chunks(MAX_TAGS).map(|c| Beacon { port, epoch, tags: c.to_vec() }).collect()
    }

    /// The tags each peer sends in the epochs around `epoch` (clocks differ by up to an
    /// epoch), mapped to the peer.
    pub fn expected(&self, epoch: u32) -> HashMap<(u32, Tag), [u8; 32]> {
        let mut out = HashMap::new();
        for e in [epoch.saturating_sub(1), epoch, epoch.saturating_add(1)] {
            for (device, secret) in &self.peers {
                out.insert((e, tag(secret, device, e)), *device);
            }
        }
        out
    }
}

/// The peers a beacon comes from, as far as `expected` (from [`Pairs::expected`]) knows.
pub fn recognise(beacon: &Beacon, expected: &HashMap<(u32, Tag), [u8; 32]>) -> Vec<[u8; 32]> {
    let mut out: Vec<[u8; 32]> =
        beacon.tags.iter().filter_map(|t| expected.get(&(beacon.epoch, *t)).copied()).collect();
    out.sort();
    out.dedup();
    out
}

/// Fisher-Yates with fresh randomness: where a peer's tag sits says nothing.
fn shuffle(tags: &mut [Tag]) {
    let mut pool = Vec::new();
    for i in (1..tags.len()).rev() {
        if pool.len() < 4 {
            pool.extend_from_slice(&random_secret());
        }
        let r = u32::from_le_bytes([pool[0], pool[1], pool[2], pool[3]]);
        pool.drain(..4);
        let j = usize::try_from(r).unwrap_or(0) % (i + 1);
        tags.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(seed: u8) -> (x25519_dalek::StaticSecret, [u8; 32], [u8; 32]) {
        let secret = x25519_dalek::StaticSecret::from([seed; 32]);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        (secret, [seed; 32], public)
    }

    #[test]
    fn peers_recognise_each_other_and_strangers_see_noise() {
        let (sa, da, pa) = (device(1).0, device(1).1, device(1).2);
        let (sb, db, pb) = (device(2).0, device(2).1, device(2).2);
        let (sc, dc, pc) = (device(3).0, device(3).1, device(3).2);
        let ab = pair_secret(&sa, &da, &db, &pb);
        assert_eq!(ab, pair_secret(&sb, &db, &da, &pa), "both sides derive the same secret");
        let a = Pairs { own_device: da, peers: vec![(db, ab)], invites: Vec::new() };
        let b = Pairs { own_device: db, peers: vec![(da, ab)], invites: Vec::new() };
        let c = Pairs { own_device: dc, peers: vec![(da, pair_secret(&sc, &dc, &da, &pa))], invites: Vec::new() };
        let beacons = a.beacons(7444, 100);
        assert_eq!(beacons.len(), 1);
        let wire = beacons[0].encode();
        let got = Beacon::decode(&wire).expect("decode");
        assert_eq!(got, beacons[0]);
        assert_eq!(got.tags.len(), TAG_BUCKET, "padded");
        assert_eq!(recognise(&got, &b.expected(100)), vec![da]);
        assert_eq!(recognise(&got, &b.expected(101)), vec![da], "an epoch of clock skew");
        assert!(recognise(&got, &b.expected(103)).is_empty(), "old beacons are not replayed forever");
        assert!(recognise(&got, &c.expected(100)).is_empty(), "A does not talk to C");
        // The next epoch's beacon shares no tag with this one; neither carries a key.
        let next = a.beacons(7444, 101)[0].clone();
        assert!(next.tags.iter().all(|t| !got.tags.contains(t)));
        for k in [da, db, pa, pb] {
            assert!(!wire.windows(TAG_LEN).any(|w| w == &k[..TAG_LEN]));
        }
        let _ = pc;
    }

    #[test]
    fn bad_datagrams_are_refused() {
        assert_eq!(Beacon::decode(b"hello"), Err(BeaconError::Magic));
        let mut b = Beacon { port: 1, epoch: 2, tags: vec![[7; TAG_LEN]; 3] }.encode();
        b.pop();
        assert!(matches!(Beacon::decode(&b), Err(BeaconError::Length(_))));
        let mut b = Beacon { port: 1, epoch: 2, tags: vec![] }.encode();
        b[10] = 200;
        assert_eq!(Beacon::decode(&b), Err(BeaconError::TooManyTags(200)));
        let many =
            Pairs { own_device: [0; 32], peers: (0..100u8).map(|i| ([i; 32], [i; 32])).collect(), invites: Vec::new() };
        let bs = many.beacons(1, 1);
        assert_eq!(bs.iter().map(|b| b.tags.len()).sum::<usize>(), 104);
        assert!(bs.iter().all(|b| b.encode().len() <= MAX_BEACON));
    }
}
