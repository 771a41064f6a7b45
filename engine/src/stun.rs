//! STUN binding (RFC 8489, the part a client and a plain server need), sans-IO: a node may ask
//! a STUN server the user chose for its public address, and `libra stun serve` answers such
//! requests for whoever runs their own (spec/connectivity.md, section 4.3). Nothing here is
//! used unless the user names a server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Every STUN message carries it at bytes 4..8 (RFC 8489, section 5).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// The largest message this reads: a binding answer is well under 100 bytes; servers add a
/// few attributes (software name, integrity, fingerprint).
pub const MAX_MESSAGE: usize = 1280;
const HEADER: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;
const MAPPED_ADDRESS: u16 = 0x0001;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ERROR_CODE: u16 = 0x0009;

/// A transaction id: a request's answer carries the same 12 bytes.
pub type TxId = [u8; 12];

/// Why bytes are not the STUN message expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    #[error("not a STUN message")]
    NotStun,
    #[error("STUN message of {0} bytes exceeds the limit of {MAX_MESSAGE}")]
    TooLong(usize),
    #[error("STUN message of {0} bytes does not match its length field")]
    Length(usize),
    #[error("a STUN attribute runs past the end of the message")]
    Attribute,
    #[error("STUN message type {0:#06x} is not the one expected")]
    Type(u16),
    #[error("the STUN server refused: error {0}")]
    Refused(u16),
    #[error("the STUN answer holds no address")]
    NoAddress,
    #[error("the STUN answer's address family {0} is unknown")]
    Family(u8),
}

/// A binding request: a header only.
pub fn binding_request(tx: &TxId) -> [u8; HEADER] {
    let mut out = [0u8; HEADER];
    out[..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    out[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out[8..].copy_from_slice(tx);
    out
}

/// Whether a datagram is a STUN message at all: the two top bits clear (a QUIC packet's fixed
/// bit is set), the magic cookie, and a length field that matches. Cheap: it runs on every
/// datagram the node's socket receives.
pub fn is_stun(b: &[u8]) -> bool {
    b.len() >= HEADER
        && b.len() <= MAX_MESSAGE
        && b[0] & 0xc0 == 0
        && b[4..8] == MAGIC_COOKIE.to_be_bytes()
        && usize::from(u16::from_be_bytes([b[2], b[3]])) + HEADER == b.len()
}

/// A well-formed message: its type, transaction id, and attributes (type, value).
struct Message<'a> {
    kind: u16,
    tx: TxId,
    attrs: Vec<(u16, &'a [u8])>,
}

fn header(b: &[u8]) -> Result<Message<'_>, StunError> {
    if b.len() > MAX_MESSAGE {
        return Err(StunError::TooLong(b.len()));
    }
    if b.len() < HEADER || b[0] & 0xc0 != 0 || b[4..8] != MAGIC_COOKIE.to_be_bytes() {
        return Err(StunError::NotStun);
    }
    let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    if len + HEADER != b.len() || len % 4 != 0 {
        return Err(StunError::Length(b.len()));
    }
    let kind = u16::from_be_bytes([b[0], b[1]]);
    let mut tx = [0u8; 12];
    tx.copy_from_slice(&b[8..HEADER]);
    let mut attrs = Vec::new();
    let mut rest = &b[HEADER..];
    while !rest.is_empty() {
        let [t0, t1, l0, l1, ..] = *rest else { return Err(StunError::Attribute) };
        let alen = usize::from(u16::from_be_bytes([l0, l1]));
        let padded = alen.next_multiple_of(4);
        let value = rest.get(4..4 + alen).ok_or(StunError::Attribute)?;
        attrs.push((u16::from_be_bytes([t0, t1]), value));
        rest = rest.get(4 + padded..).ok_or(StunError::Attribute)?;
    }
    Ok(Message { kind, tx, attrs })
}

/// The transaction id of a binding request (attributes are ignored: a plain binding server
/// needs none).
pub fn parse_request(b: &[u8]) -> Result<TxId, StunError> {
    let Message { kind, tx, .. } = header(b)?;
    if kind != BINDING_REQUEST {
        return Err(StunError::Type(kind));
    }
    Ok(tx)
}

/// A binding answer's transaction id and the address the server saw the request come from
/// (XOR-MAPPED-ADDRESS, or the older MAPPED-ADDRESS; attributes this does not know, such as a
/// software name, integrity and fingerprint, are stepped over).
pub fn parse_response(b: &[u8]) -> Result<(TxId, SocketAddr), StunError> {
    let Message { kind, tx, attrs } = header(b)?;
    match kind {
        BINDING_SUCCESS => {}
        BINDING_ERROR => {
            let code = attrs
                .iter()
                .find(|(t, v)| *t == ERROR_CODE && v.len() >= 4)
                .map_or(0, |(_, v)| u16::from(v[2] & 0x07) * 100 + u16::from(v[3]));
            return Err(StunError::Refused(code));
        }
        other => return Err(StunError::Type(other)),
    }
    let xored = attrs.iter().find(|(t, _)| *t == XOR_MAPPED_ADDRESS);
    let plain = attrs.iter().find(|(t, _)| *t == MAPPED_ADDRESS);
    let addr = match (xored, plain) {
        (Some((_, v)), _) => address(v, Some(&tx))?,
        (None, Some((_, v))) => address(v, None)?,
        (None, None) => return Err(StunError::NoAddress),
    };
    Ok((tx, addr))
}

/// `0 ‖ family ‖ port ‖ address`, XORed with the cookie (and the transaction id) when `tx`.
fn address(v: &[u8], tx: Option<&TxId>) -> Result<SocketAddr, StunError> {
    let [_, family, p0, p1, ref ip @ ..] = *v else { return Err(StunError::Attribute) };
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut port = u16::from_be_bytes([p0, p1]);
    if tx.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let mut key = [0u8; 16];
    if let Some(tx) = tx {
        key[..4].copy_from_slice(&cookie);
        key[4..].copy_from_slice(tx);
    }
    let ip = match (family, ip.len()) {
        (1, 4) => {
            let mut b: [u8; 4] = [ip[0], ip[1], ip[2], ip[3]];
            b.iter_mut().zip(key).for_each(|(x, k)| *x ^= k);
            IpAddr::V4(Ipv4Addr::from(b))
        }
        (2, 16) => {
            let mut b = [0u8; 16];
            b.copy_from_slice(ip);
            b.iter_mut().zip(key).for_each(|(x, k)| *x ^= k);
            IpAddr::V6(Ipv6Addr::from(b)).to_canonical()
        }
        (1 | 2, _) => return Err(StunError::Attribute),
        (f, _) => return Err(StunError::Family(f)),
    };
    Ok(SocketAddr::new(ip, port))
}

/// A binding answer telling the requester `seen` (an IPv4 client of a dual-stack server is
/// told its IPv4 address).
pub fn binding_success(tx: &TxId, seen: SocketAddr) -> Vec<u8> {
    let ip = seen.ip().to_canonical();
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&cookie);
    key[4..].copy_from_slice(tx);
    let (family, mut raw): (u8, Vec<u8>) = match ip {
        IpAddr::V4(a) => (1, a.octets().to_vec()),
        IpAddr::V6(a) => (2, a.octets().to_vec()),
    };
    raw.iter_mut().zip(key).for_each(|(x, k)| *x ^= k);
    let value_len = 4 + raw.len();
    let mut out = Vec::with_capacity(HEADER + 4 + value_len);
    out.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    out.extend_from_slice(&u16::try_from(4 + value_len).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&cookie);
    out.extend_from_slice(tx);
    out.extend_from_slice(&XOR_MAPPED_ADDRESS.to_be_bytes());
    out.extend_from_slice(&u16::try_from(value_len).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&[0, family]);
    out.extend_from_slice(&(seen.port() ^ (MAGIC_COOKIE >> 16) as u16).to_be_bytes());
    out.extend_from_slice(&raw);
    out
}

/// RFC 5769, section 2.2: a real server's answer (transaction id `b7e7a701bc34d686fa87dfae`)
/// with a software name, XOR-MAPPED-ADDRESS 192.0.2.1:32853, integrity and fingerprint.
pub const RFC5769_IPV4: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf,
    0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20,
    0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd,
    0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04,
    0xc0, 0x7d, 0x4c, 0x96,
];

/// RFC 5769, section 2.3: the same with XOR-MAPPED-ADDRESS
/// [2001:db8:1234:5678:11:2233:4455:6677]:32853.
pub const RFC5769_IPV6: [u8; 92] = [
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf,
    0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20,
    0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe,
    0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c,
    0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
];

#[cfg(test)]
mod tests {
    use super::*;

    const TX: TxId = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

    #[test]
    fn a_real_servers_answer_is_read_and_ours_round_trips() {
        assert!(is_stun(&RFC5769_IPV4));
        assert_eq!(parse_response(&RFC5769_IPV4), Ok((TX, "192.0.2.1:32853".parse().expect("addr"))));
        let v6 = "[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().expect("addr");
        assert_eq!(parse_response(&RFC5769_IPV6), Ok((TX, v6)));
        for seen in ["203.0.113.9:40000", "[2001:db8::7]:1", "[::ffff:198.51.100.2]:9"] {
            let seen: SocketAddr = seen.parse().expect("addr");
            let answer = binding_success(&TX, seen);
            assert!(is_stun(&answer));
            let want = SocketAddr::new(seen.ip().to_canonical(), seen.port());
            assert_eq!(parse_response(&answer), Ok((TX, want)));
        }
        let req = binding_request(&TX);
        assert!(is_stun(&req));
        assert_eq!(parse_request(&req), Ok(TX));
        assert_eq!(parse_response(&req), Err(StunError::Type(BINDING_REQUEST)));
        assert_eq!(parse_request(&RFC5769_IPV4), Err(StunError::Type(BINDING_SUCCESS)));
    }

    #[test]
    fn damaged_answers_are_errors_not_addresses() {
        for cut in 0..RFC5769_IPV4.len() {
            assert!(parse_response(&RFC5769_IPV4[..cut]).is_err(), "cut at {cut}");
        }
        let mut quic = RFC5769_IPV4;
        quic[0] |= 0x40;
        assert!(!is_stun(&quic) && parse_response(&quic) == Err(StunError::NotStun));
        let mut overrun = RFC5769_IPV4;
        overrun[23] = 0x40; // the software attribute claims more than the message holds
        assert_eq!(parse_response(&overrun), Err(StunError::Attribute));
        let mut family = binding_success(&TX, "192.0.2.1:1".parse().expect("addr"));
        family[25] = 3;
        assert_eq!(parse_response(&family), Err(StunError::Family(3)));
        let mut refused = binding_request(&TX).to_vec();
        refused[..2].copy_from_slice(&BINDING_ERROR.to_be_bytes());
        refused[3] = 8;
        refused.extend_from_slice(&[0x00, 0x09, 0x00, 0x04, 0, 0, 4, 20]);
        assert_eq!(parse_response(&refused), Err(StunError::Refused(420)));
        assert_eq!(parse_response(&vec![0u8; MAX_MESSAGE + 1]), Err(StunError::TooLong(MAX_MESSAGE + 1)));
    }
}
