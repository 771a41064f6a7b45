//! The knock (spec/sync.md, section 3.2a): the TLS server name a dialer sends proves that it
//! knows the device key it dials, so a node shows its key only to those who knew it already —
//! not to whoever scans its port. A second label proves an open invite, so a stranger whose
//! invite was used up, revoked or expired is refused at the handshake.
//!
//! Both proofs are MACs over a random nonce and the hour, so an eavesdropper can neither link
//! two knocks to one node nor replay one after a few hours.

use std::fmt::Write as _;

/// Length of an epoch: a knock is valid for the hour it was made in, give or take
/// [`SKEW_EPOCHS`] hours of clock difference.
pub const EPOCH_SECS: u64 = 3600;
pub const SKEW_EPOCHS: u64 = 2;
/// The top-level label of every knock.
pub const SUFFIX: &str = "libra";

const KEY_CONTEXT: &str = "libra knock v1";
const INVITE_CONTEXT: &str = "libra invite knock v1";

/// Why a server name is not a knock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnockError {
    #[error("not three labels ending in .libra")]
    Shape,
    #[error("a label is not lowercase hex of the right length")]
    Hex,
}

/// A parsed knock: `hex(nonce ‖ key tag) . hex(invite tag) . libra`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knock {
    pub nonce: [u8; 8],
    pub key_tag: [u8; 16],
    /// An open invite's tag, or random bytes when the dialer holds none (the same length, so a
    /// knock does not tell an onlooker whether its sender holds an invite).
    pub invite_tag: [u8; 16],
}

/// The hour of `unix_ms`.
pub fn epoch_of(unix_ms: u64) -> u64 {
    unix_ms / 1000 / EPOCH_SECS
}

fn mac(context: &str, material: &[u8], nonce: &[u8; 8], epoch: u64) -> [u8; 16] {
    let key = blake3::derive_key(context, material);
    let mut h = blake3::Hasher::new_keyed(&key);
    h.update(nonce);
    h.update(&epoch.to_be_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// The tag proving knowledge of the device key `server`.
pub fn key_tag(server: &[u8; 32], nonce: &[u8; 8], epoch: u64) -> [u8; 16] {
    mac(KEY_CONTEXT, server, nonce, epoch)
}

/// The tag proving an invite token.
pub fn invite_tag(token: &[u8; 16], nonce: &[u8; 8], epoch: u64) -> [u8; 16] {
    mac(INVITE_CONTEXT, token, nonce, epoch)
}

fn hex_into(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

fn unhex<const N: usize>(b: &[u8]) -> Result<[u8; N], KnockError> {
    if b.len() != 2 * N {
        return Err(KnockError::Hex);
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(KnockError::Hex),
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    Ok(out)
}

impl Knock {
    /// A knock for `server` at `epoch`, with `invite`'s tag if the dialer holds one; `random`
    /// gives the nonce (8 bytes) and the filler of the invite label (16 bytes).
    pub fn new(server: &[u8; 32], invite: Option<&[u8; 16]>, epoch: u64, random: [u8; 24]) -> Knock {
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&random[..8]);
        let mut filler = [0u8; 16];
        filler.copy_from_slice(&random[8..]);
        Knock {
            nonce,
            key_tag: key_tag(server, &nonce, epoch),
            invite_tag: invite.map_or(filler, |t| invite_tag(t, &nonce, epoch)),
        }
    }

    /// The server name to send: 48 + 32 hex digits in two labels, then `libra`.
    pub fn server_name(&self) -> String {
        let mut s = String::with_capacity(88);
        hex_into(&mut s, &self.nonce);
        hex_into(&mut s, &self.key_tag);
        s.push('.');
        hex_into(&mut s, &self.invite_tag);
        s.push('.');
        s.push_str(SUFFIX);
        s
    }

    /// Reads a server name. Case matters: a knock is lowercase, as written.
    pub fn parse(name: &str) -> Result<Knock, KnockError> {
        let mut labels = name.split('.');
        let (Some(first), Some(second), Some(SUFFIX), None) =
            (labels.next(), labels.next(), labels.next(), labels.next())
        else {
            return Err(KnockError::Shape);
        };
        // Bytes, not characters: a name may hold anything, and slicing text inside a character
        // would panic (found by the fuzzer).
        let first = first.as_bytes();
        if first.len() != 48 {
            return Err(KnockError::Hex);
        }
        let nonce = unhex::<8>(&first[..16])?;
        let key_tag = unhex::<16>(&first[16..])?;
        let invite_tag = unhex::<16>(second.as_bytes())?;
        Ok(Knock { nonce, key_tag, invite_tag })
    }

    fn epochs(now: u64) -> impl Iterator<Item = u64> {
        now.saturating_sub(SKEW_EPOCHS)..=now.saturating_add(SKEW_EPOCHS)
    }

    /// Whether the knock proves `server`'s key within [`SKEW_EPOCHS`] of `now` (an epoch).
    pub fn proves_key(&self, server: &[u8; 32], now: u64) -> bool {
        Knock::epochs(now).any(|e| key_tag(server, &self.nonce, e) == self.key_tag)
    }

    /// The token among `open` whose invite the knock proves, if any.
    pub fn proven_invite<'a>(&self, open: impl IntoIterator<Item = &'a [u8; 16]>, now: u64) -> Option<[u8; 16]> {
        open.into_iter().find(|t| Knock::epochs(now).any(|e| invite_tag(t, &self.nonce, e) == self.invite_tag)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: [u8; 32] = [7; 32];

    #[test]
    fn a_knock_round_trips_and_proves_only_its_key_and_hour() {
        let k = Knock::new(&SERVER, None, 100, [1; 24]);
        let name = k.server_name();
        assert_eq!(name.len(), 48 + 1 + 32 + 1 + 5);
        assert!(rustls::pki_types::ServerName::try_from(name.as_str()).is_ok(), "a valid DNS name");
        let p = Knock::parse(&name).expect("parse");
        assert_eq!(p, k);
        assert!(p.proves_key(&SERVER, 100));
        assert!(p.proves_key(&SERVER, 102) && p.proves_key(&SERVER, 98), "two hours of skew");
        assert!(!p.proves_key(&SERVER, 103) && !p.proves_key(&SERVER, 97), "not three");
        assert!(!p.proves_key(&[8; 32], 100), "another key");
        assert_eq!(p.proven_invite(&[[5; 16]], 100), None, "the filler proves no invite");
    }

    #[test]
    fn an_invite_knock_names_its_token() {
        let k = Knock::new(&SERVER, Some(&[5; 16]), 100, [2; 24]);
        let open = [[4; 16], [5; 16]];
        assert_eq!(k.proven_invite(&open, 101), Some([5; 16]));
        assert_eq!(k.proven_invite(&open[..1], 101), None, "a used or revoked invite");
        assert!(k.proves_key(&SERVER, 100), "it still proves the key");
    }

    #[test]
    fn two_knocks_share_nothing_an_onlooker_can_see() {
        let a = Knock::new(&SERVER, None, 100, [1; 24]).server_name();
        let b = Knock::new(&SERVER, None, 100, [3; 24]).server_name();
        assert!(a.split('.').zip(b.split('.')).take(2).all(|(x, y)| x != y));
    }

    #[test]
    fn malformed_names_are_refused() {
        let good = Knock::new(&SERVER, None, 1, [1; 24]).server_name();
        for bad in [
            "libra".to_owned(),
            "localhost".to_owned(),
            good.to_uppercase(),
            good.replace(".libra", ".example"),
            format!("x.{good}"),
            good[1..].to_owned(),
            good.replacen('0', "g", 1),
            // Multi-byte characters across the nonce's end (a fuzzer's crash, now a case).
            "111;11111111111\u{2de}babababababababab\u{8}\0\0WabLbababab.!.libra".to_owned(),
        ] {
            assert!(Knock::parse(&bad).is_err(), "{bad}");
        }
    }
}
