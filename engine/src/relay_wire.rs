//! The bytes of `libra/relay/1` requests and of the addresses passed for hole punching,
//! sans-IO (spec/connectivity.md, sections 3.1 and 4); the drivers in `net::relay` and
//! `net::punch` read and write them on QUIC streams.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const VERSION: u8 = 1;

/// What a request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// "Splice me to this device" (to the relay).
    Connect = 1,
    /// "This device reaches you through me" (from the relay to the target).
    Incoming = 2,
    /// "Introduce me to this device" (to the introducer).
    Punch = 3,
    /// "This device wants to reach you; here is its address" (from the introducer).
    PunchFrom = 4,
}

/// `version ‖ kind ‖ device key` (followed by an address for Punch-from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
    pub device: [u8; 32],
}

/// Why bytes are not a request or an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayWireError {
    #[error("unknown relay protocol version {0}")]
    Version(u8),
    #[error("unknown relay request kind {0}")]
    Kind(u8),
    #[error("unknown address family {0}")]
    Family(u8),
    #[error("an address of {0} bytes")]
    Length(usize),
    #[error("{0} local addresses (at most {MAX_LOCAL})")]
    TooMany(u8),
}

impl Request {
    pub const LEN: usize = 34;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = VERSION;
        out[1] = self.kind as u8;
        out[2..].copy_from_slice(&self.device);
        out
    }

    pub fn decode(b: &[u8; Self::LEN]) -> Result<Request, RelayWireError> {
        if b[0] != VERSION {
            return Err(RelayWireError::Version(b[0]));
        }
        let kind = match b[1] {
            1 => Kind::Connect,
            2 => Kind::Incoming,
            3 => Kind::Punch,
            4 => Kind::PunchFrom,
            k => return Err(RelayWireError::Kind(k)),
        };
        let mut device = [0u8; 32];
        device.copy_from_slice(&b[2..]);
        Ok(Request { kind, device })
    }
}

/// `family (4 | 6) ‖ IP (4 | 16 bytes) ‖ port u16 BE`.
pub fn encode_addr(a: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(19);
    match a.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&a.port().to_be_bytes());
    out
}

/// Bytes that follow the family byte: IP and port.
pub fn addr_rest_len(family: u8) -> Result<usize, RelayWireError> {
    match family {
        4 => Ok(4 + 2),
        6 => Ok(16 + 2),
        f => Err(RelayWireError::Family(f)),
    }
}

/// Exactly one encoded address.
pub fn decode_addr(b: &[u8]) -> Result<SocketAddr, RelayWireError> {
    let (&family, rest) = b.split_first().ok_or(RelayWireError::Length(0))?;
    if rest.len() != addr_rest_len(family)? {
        return Err(RelayWireError::Length(b.len()));
    }
    let (ip, port) = rest.split_at(rest.len() - 2);
    let ip = match family {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(ip).map_err(|_| RelayWireError::Length(b.len()))?)),
        _ => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).map_err(|_| RelayWireError::Length(b.len()))?)),
    };
    Ok(SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])))
}

/// At most this many local addresses in a list.
pub const MAX_LOCAL: usize = 8;

/// `count u8 ‖ count addresses`: the addresses a node listens at on its own networks (at most
/// [`MAX_LOCAL`]; more are left out).
pub fn encode_list(addrs: &[SocketAddr]) -> Vec<u8> {
    let addrs = &addrs[..addrs.len().min(MAX_LOCAL)];
    let mut out = vec![addrs.len() as u8];
    for a in addrs {
        out.extend_from_slice(&encode_addr(*a));
    }
    out
}

/// A list's count, checked.
pub fn list_count(count: u8) -> Result<usize, RelayWireError> {
    if usize::from(count) > MAX_LOCAL { Err(RelayWireError::TooMany(count)) } else { Ok(usize::from(count)) }
}

/// One address at the start of `b`, and the bytes it took.
fn addr_prefix(b: &[u8]) -> Result<(SocketAddr, usize), RelayWireError> {
    let family = *b.first().ok_or(RelayWireError::Length(0))?;
    let len = 1 + addr_rest_len(family)?;
    let bytes = b.get(..len).ok_or(RelayWireError::Length(b.len()))?;
    Ok((decode_addr(bytes)?, len))
}

/// A list at the start of `b`, and the bytes it took.
fn list_prefix(b: &[u8]) -> Result<(Vec<SocketAddr>, usize), RelayWireError> {
    let count = list_count(*b.first().ok_or(RelayWireError::Length(0))?)?;
    let (mut out, mut at) = (Vec::with_capacity(count), 1);
    for _ in 0..count {
        let (a, n) = addr_prefix(&b[at..])?;
        out.push(a);
        at += n;
    }
    Ok((out, at))
}

/// Exactly one list (the Punch request's tail, and the target's agreement after its 0).
pub fn decode_list(b: &[u8]) -> Result<Vec<SocketAddr>, RelayWireError> {
    let (list, n) = list_prefix(b)?;
    if n != b.len() {
        return Err(RelayWireError::Length(b.len()));
    }
    Ok(list)
}

/// What the introducer tells each side of a punch about the other (spec/connectivity.md,
/// section 4): where it sees the other (`seen`), where the other says it listens locally
/// (`local`), and where it sees the one it tells (`you`: that side's public, reflexive
/// address, as a STUN server would say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introduction {
    pub seen: SocketAddr,
    pub local: Vec<SocketAddr>,
    pub you: SocketAddr,
}

impl Introduction {
    /// `address(seen) ‖ list(local) ‖ address(you)`.
    pub fn encode(&self) -> Vec<u8> {
        [encode_addr(self.seen), encode_list(&self.local), encode_addr(self.you)].concat()
    }

    /// Exactly one introduction.
    pub fn decode(b: &[u8]) -> Result<Introduction, RelayWireError> {
        let (seen, n1) = addr_prefix(b)?;
        let (local, n2) = list_prefix(&b[n1..])?;
        let (you, n3) = addr_prefix(&b[n1 + n2..])?;
        if n1 + n2 + n3 != b.len() {
            return Err(RelayWireError::Length(b.len()));
        }
        Ok(Introduction { seen, local, you })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_addresses_round_trip_and_bad_ones_are_refused() {
        let r = Request { kind: Kind::PunchFrom, device: [7; 32] };
        assert_eq!(Request::decode(&r.encode()), Ok(r));
        let mut bad = r.encode();
        bad[0] = 2;
        assert_eq!(Request::decode(&bad), Err(RelayWireError::Version(2)));
        bad[0] = 1;
        bad[1] = 9;
        assert_eq!(Request::decode(&bad), Err(RelayWireError::Kind(9)));
        for a in ["10.88.0.3:7444", "[2001:db8::1]:65535"] {
            let a: SocketAddr = a.parse().expect("addr");
            assert_eq!(decode_addr(&encode_addr(a)), Ok(a));
        }
        assert_eq!(decode_addr(&[5, 1, 2]), Err(RelayWireError::Family(5)));
        assert_eq!(decode_addr(&[4, 1, 2, 3]), Err(RelayWireError::Length(4)));
        assert_eq!(decode_addr(&[]), Err(RelayWireError::Length(0)));
    }

    #[test]
    fn introductions_and_lists_round_trip_and_bad_ones_are_refused() {
        let a = |s: &str| s.parse::<SocketAddr>().expect("addr");
        let i = Introduction {
            seen: a("203.0.113.7:40001"),
            local: vec![a("192.168.20.2:7444"), a("[2001:db8::2]:7444")],
            you: a("198.51.100.9:51000"),
        };
        assert_eq!(Introduction::decode(&i.encode()), Ok(i.clone()));
        let empty = Introduction { local: vec![], ..i.clone() };
        assert_eq!(Introduction::decode(&empty.encode()), Ok(empty));
        let mut long = i.encode();
        long.push(0);
        assert_eq!(Introduction::decode(&long), Err(RelayWireError::Length(long.len())));
        let short = &i.encode()[..i.encode().len() - 1];
        assert!(Introduction::decode(short).is_err());
        // More than eight local addresses are left out when sent, and refused when read.
        let many: Vec<SocketAddr> = (0..12).map(|n| SocketAddr::from(([10, 0, 0, n], 7444))).collect();
        assert_eq!(decode_list(&encode_list(&many)), Ok(many[..MAX_LOCAL].to_vec()));
        assert_eq!(decode_list(&[9]), Err(RelayWireError::TooMany(9)));
        assert_eq!(decode_list(&[0]), Ok(vec![]));
        assert_eq!(decode_list(&[]), Err(RelayWireError::Length(0)));
    }
}
