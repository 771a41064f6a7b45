//! "Visible nearby", sans-IO (spec/connectivity.md, section 2.7): for a few minutes the user
//! chose, a node announces an invite to the local network and lists the people whose nodes do
//! the same, so two people in one room add each other without typing. Both must have turned
//! it on; adding someone is the ordinary add-contact step, and their side shows us as new
//! until they accept.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::codec;
use crate::identity::UserId;
use crate::messenger::Invite;

/// The first bytes of every announcement (beacons start with `LBN1`).
pub const MAGIC: [u8; 4] = *b"LBV1";
/// The largest announcement: one datagram that fits an Ethernet frame with room to spare.
pub const MAX_ANNOUNCEMENT: usize = 1400;
const HEADER: usize = 4 + 2 + 2;
/// How long the user may stay visible at once, and the default.
pub const MAX_MINUTES: u32 = 30;
pub const DEFAULT_MINUTES: u32 = 5;
/// How many people one node lists at most (the oldest seen go first).
pub const MAX_PEOPLE: usize = 64;
/// How many people one nearby invite may introduce.
pub const INVITE_USES: u32 = 16;

/// Why a datagram is not an announcement, or cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NearbyError {
    #[error("not a Libra nearby announcement")]
    Magic,
    #[error("announcement of {0} bytes does not match its length field")]
    Length(usize),
    #[error("announcement of {0} bytes exceeds the limit of {MAX_ANNOUNCEMENT}")]
    TooLong(usize),
    #[error("the announced invite is not valid: {0}")]
    Invite(String),
    #[error("stay visible for 1 to {MAX_MINUTES} minutes, not {0}")]
    Minutes(u32),
}

/// `MAGIC ‖ port u16 BE ‖ length u16 BE ‖ invite` (the invite's canonical bytes, no address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The UDP port of the sender's QUIC endpoint.
    pub port: u16,
    pub invite: Vec<u8>,
}

impl Announcement {
    pub fn new(port: u16, invite: &Invite) -> Result<Announcement, NearbyError> {
        let mut bare = invite.clone();
        bare.address = None; // the receiver sees where the datagram came from
        let a = Announcement { port, invite: codec::encode(&bare) };
        let n = HEADER + a.invite.len();
        if n > MAX_ANNOUNCEMENT { Err(NearbyError::TooLong(n)) } else { Ok(a) }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.invite.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&u16::try_from(self.invite.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&self.invite);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Announcement, NearbyError> {
        if b.len() < HEADER || b[..4] != MAGIC {
            return Err(NearbyError::Magic);
        }
        if b.len() > MAX_ANNOUNCEMENT {
            return Err(NearbyError::TooLong(b.len()));
        }
        let port = u16::from_be_bytes([b[4], b[5]]);
        let len = usize::from(u16::from_be_bytes([b[6], b[7]]));
        if b.len() != HEADER + len {
            return Err(NearbyError::Length(b.len()));
        }
        Ok(Announcement { port, invite: b[HEADER..].to_vec() })
    }

    /// The invite, checked as any invite is, with the address it was announced from (the
    /// datagram's source with the announced port; a link-local IPv6 source keeps its scope).
    pub fn invite_from(&self, from: SocketAddr) -> Result<Invite, NearbyError> {
        let mut inv = Invite::from_bytes(&self.invite).map_err(|e| NearbyError::Invite(e.to_string()))?;
        if inv.token.is_none() {
            return Err(NearbyError::Invite("no introduction token".into()));
        }
        let mut at = from;
        at.set_port(self.port);
        inv.address = Some(at.to_string());
        Ok(inv)
    }
}

/// Someone whose node announced itself nearby.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Their invite, with the address it came from.
    pub invite: Invite,
    pub seen_ms: u64,
}

impl Person {
    pub fn user(&self) -> UserId {
        self.invite.user()
    }
}

/// The state of a node while visible nearby.
#[derive(Debug, Clone)]
pub struct Nearby {
    pub until_ms: u64,
    /// The id of the invite announced (revoked when this ends).
    pub invite_id: String,
    own_user: UserId,
    datagram: Vec<u8>,
    people: BTreeMap<UserId, Person>,
}

impl Nearby {
    pub fn new(own_user: UserId, announcement: &Announcement, invite_id: String, until_ms: u64) -> Nearby {
        Nearby { until_ms, invite_id, own_user, datagram: announcement.encode(), people: BTreeMap::new() }
    }

    pub fn active(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }

    /// What to broadcast while active.
    pub fn datagram(&self, now_ms: u64) -> Option<&[u8]> {
        self.active(now_ms).then_some(&self.datagram[..])
    }

    /// A datagram from `from`: returns the person it announces if it is a new one (ours and
    /// invalid ones are ignored). One announcement reaches us on every path (broadcast and
    /// IPv6 multicast): the best address to dial back is kept, not the last one heard.
    pub fn receive(&mut self, bytes: &[u8], from: SocketAddr, now_ms: u64) -> Result<Option<Person>, NearbyError> {
        if !self.active(now_ms) {
            return Ok(None);
        }
        let mut inv = Announcement::decode(bytes)?.invite_from(from)?;
        let user = inv.user();
        if user == self.own_user {
            return Ok(None);
        }
        if let Some(old) = self.people.get(&user) {
            let same_invite = Invite { address: old.invite.address.clone(), ..inv.clone() } == old.invite;
            if same_invite && reach(old.invite.address.as_deref()) > reach(inv.address.as_deref()) {
                inv.address.clone_from(&old.invite.address);
            }
        }
        let person = Person { invite: inv, seen_ms: now_ms };
        let new = self.people.insert(user, person.clone()).is_none_or(|old| old.invite != person.invite);
        if self.people.len() > MAX_PEOPLE
            && let Some(oldest) = self.people.iter().min_by_key(|(_, p)| p.seen_ms).map(|(u, _)| *u)
        {
            self.people.remove(&oldest);
        }
        Ok(new.then_some(person))
    }

    /// The people seen, most recently seen first.
    pub fn people(&self) -> Vec<Person> {
        let mut v: Vec<Person> = self.people.values().cloned().collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.seen_ms));
        v
    }
}

/// How well an announced address serves to dial back: IPv4 (any endpoint reaches it), then a
/// routable IPv6 address, then a link-local one (reachable through one interface only).
fn reach(address: Option<&str>) -> u8 {
    match address.and_then(|a| a.parse::<SocketAddr>().ok()) {
        Some(SocketAddr::V4(_)) => 3,
        Some(SocketAddr::V6(a)) if a.ip().segments()[0] & 0xffc0 != 0xfe80 => 2,
        Some(SocketAddr::V6(_)) => 1,
        None => 0,
    }
}

/// Checks a number of minutes the user asked to stay visible.
pub fn check_minutes(minutes: u32) -> Result<u32, NearbyError> {
    if minutes == 0 || minutes > MAX_MINUTES { Err(NearbyError::Minutes(minutes)) } else { Ok(minutes) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Node;

    #[test]
    fn announcements_round_trip_and_people_are_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = Node::init(&dir.path().join("a"), "Ann").expect("init");
        let mut b = Node::init(&dir.path().join("b"), "Ben").expect("init");
        let ia = a.invite(Some("1.2.3.4:5".into()), 1).expect("invite");
        let ib = b.invite(None, 1).expect("invite");
        let ann = Announcement::new(7444, &ia).expect("fits");
        let bytes = ann.encode();
        assert!(bytes.len() <= MAX_ANNOUNCEMENT);
        assert_eq!(Announcement::decode(&bytes), Ok(ann.clone()));
        let ip: SocketAddr = "192.168.1.7:50000".parse().expect("addr");
        let got = ann.invite_from(ip).expect("invite");
        assert_eq!(got.address.as_deref(), Some("192.168.1.7:7444"), "the typed address is not announced");
        let mut at_b = Nearby::new(ib.user(), &Announcement::new(7444, &ib).expect("fits"), "x".into(), 1000);
        let seen = at_b.receive(&bytes, ip, 10).expect("ok").expect("new");
        assert_eq!(seen.user(), ia.user());
        assert_eq!(at_b.receive(&bytes, ip, 20), Ok(None), "the same person again is not new");
        assert_eq!(at_b.people().len(), 1);
        // The same announcement heard over IPv6 multicast too: the IPv4 address stays (an
        // IPv4-only endpoint could not dial the other), and a link-local one keeps its scope.
        let v6: SocketAddr = "[fe80::7%3]:50000".parse().expect("addr");
        assert_eq!(at_b.receive(&bytes, v6, 25), Ok(None));
        assert_eq!(at_b.people()[0].invite.address.as_deref(), Some("192.168.1.7:7444"));
        assert_eq!(at_b.people()[0].seen_ms, 25);
        let mut only_v6 = Nearby::new(ib.user(), &Announcement::new(7444, &ib).expect("fits"), "x".into(), 1000);
        let seen = only_v6.receive(&bytes, v6, 10).expect("ok").expect("new");
        assert_eq!(seen.invite.address.as_deref(), Some("[fe80::7%3]:7444"));
        assert!(crate::net::check_address("[fe80::7%3]:7444").is_ok(), "dialable as stored");
        assert!(only_v6.receive(&bytes, ip, 20).expect("ok").is_some(), "a better address is news");
        assert_eq!(only_v6.people()[0].invite.address.as_deref(), Some("192.168.1.7:7444"));
        // Our own announcement, a broken one, and anything after the window are ignored.
        let own = Announcement::new(7444, &ib).expect("fits").encode();
        assert_eq!(at_b.receive(&own, ip, 30), Ok(None));
        assert!(at_b.receive(&bytes[..bytes.len() - 1], ip, 30).is_err());
        let mut forged = bytes.clone();
        let last = forged.len() - 20;
        forged[last] ^= 1;
        assert!(at_b.receive(&forged, ip, 30).is_err(), "a tampered certificate");
        assert_eq!(at_b.receive(&bytes, ip, 1000), Ok(None));
        assert!(at_b.datagram(1000).is_none());
        assert_eq!(check_minutes(0), Err(NearbyError::Minutes(0)));
        assert_eq!(check_minutes(31), Err(NearbyError::Minutes(31)));
    }
}
