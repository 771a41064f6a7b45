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
}
