//! Text forms of keys for people: lowercase RFC 4648 base32 with a typed prefix and a checksum.
//!
//! `lu…` is a user id, `ld…` a device id. The body is base32(key ‖ check) where
//! check = blake3("libra-id-v1" ‖ prefix ‖ key)[..3], so 35 bytes make exactly 56 characters
//! and a typo goes unnoticed with probability 2^-24. See spec/identity.md.

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const CHECK_LEN: usize = 3;

/// What kind of key a text id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    User,
    Device,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::User => "lu",
            IdKind::Device => "ld",
        }
    }
}

/// Why a text id was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("an id starts with 'lu' (user) or 'ld' (device)")]
    UnknownPrefix,
    #[error("an id has 58 characters, this has {0}")]
    WrongLength(usize),
    #[error("'{0}' is not a base32 character (a-z, 2-7)")]
    BadCharacter(char),
    #[error("checksum mismatch: the id was mistyped")]
    Checksum,
    #[error("{0} base32 characters cannot encode whole bytes (a character is missing or extra)")]
    ImpossibleLength(usize),
    #[error("expected a {expected} id")]
    WrongKind { expected: &'static str },
}

impl TextError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownPrefix => "unknown_prefix",
            Self::WrongLength(_) => "wrong_length",
            Self::BadCharacter(_) => "bad_character",
            Self::Checksum => "checksum",
            Self::ImpossibleLength(_) => "impossible_length",
            Self::WrongKind { .. } => "wrong_kind",
        }
    }
}

fn checksum(kind: IdKind, key: &[u8; 32]) -> [u8; CHECK_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(b"libra-id-v1");
    h.update(kind.prefix().as_bytes());
    h.update(key);
    let out = h.finalize();
    let mut c = [0u8; CHECK_LEN];
    c.copy_from_slice(&out.as_bytes()[..CHECK_LEN]);
    c
}

/// Base32 (RFC 4648 alphabet, lowercase, no padding).
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32 (RFC 4648 alphabet, lowercase, no padding). A length no encoding has (1, 3
/// or 6 characters past a multiple of 8) is refused; the unused low bits of the last character
/// are ignored (spec/identity.md, section 3).
pub fn base32_decode(text: &str) -> Result<Vec<u8>, TextError> {
    let n = text.chars().count();
    if matches!(n % 8, 1 | 3 | 6) {
        return Err(TextError::ImpossibleLength(n));
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.chars() {
        let v = match c {
            'a'..='z' => c as u32 - 'a' as u32,
            '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return Err(TextError::BadCharacter(c)),
        };
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// The full, checkable text form of a key.
pub fn encode_id(kind: IdKind, key: &[u8; 32]) -> String {
    let mut body = Vec::with_capacity(32 + CHECK_LEN);
    body.extend_from_slice(key);
    body.extend_from_slice(&checksum(kind, key));
    format!("{}{}", kind.prefix(), base32(&body))
}

/// Parses a text id of either kind.
pub fn decode_id(text: &str) -> Result<(IdKind, [u8; 32]), TextError> {
    let text = text.trim().to_ascii_lowercase();
    let kind = match text.get(..2) {
        Some("lu") => IdKind::User,
        Some("ld") => IdKind::Device,
        _ => return Err(TextError::UnknownPrefix),
    };
    let body = &text[2..];
    if body.len() != 56 {
        return Err(TextError::WrongLength(text.len()));
    }
    let bytes = base32_decode(body)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes[..32]);
    if bytes[32..] != checksum(kind, &key) {
        return Err(TextError::Checksum);
    }
    Ok((kind, key))
}

/// Parses a text id that must be of `kind`.
pub fn decode_id_of(kind: IdKind, text: &str) -> Result<[u8; 32], TextError> {
    match decode_id(text)? {
        (k, key) if k == kind => Ok(key),
        _ => Err(TextError::WrongKind {
            expected: match kind {
                IdKind::User => "user (lu…)",
                IdKind::Device => "device (ld…)",
            },
        }),
    }
}

/// The short form people compare aloud: the first 16 characters of the body in groups of four.
/// It identifies a key for comparison only; it is never parsed back.
pub fn short_id(kind: IdKind, key: &[u8; 32]) -> String {
    let full = encode_id(kind, key);
    let body = &full[2..18];
    format!("{}:{}-{}-{}-{}", kind.prefix(), &body[..4], &body[4..8], &body[8..12], &body[12..16])
}

/// Whether `c` would act on a terminal or hide itself instead of showing: control characters
/// (C0, DEL, C1: escapes, newlines, bells), bidirectional overrides and isolates, and
/// invisible characters that make lookalike names.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            | '\u{00ad}' | '\u{180e}' | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// Peer-chosen text (a name, a message) made safe to print on a terminal: every character
/// [`is_unsafe_char`] names is shown escaped (`\n`, `\u{202e}`), so a peer cannot move the
/// cursor, retitle the window, forge a line or reverse text. Human output only; JSON stays
/// exact.
pub fn for_terminal(s: &str) -> String {
    if !s.chars().any(is_unsafe_char) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_is_escaped() {
        assert_eq!(for_terminal("Bob"), "Bob");
        assert_eq!(for_terminal("a\nb"), "a\\nb");
        assert_eq!(for_terminal("\u{1b}]0;owned\u{7}"), "\\u{1b}]0;owned\\u{7}");
        assert_eq!(for_terminal("ab\u{202e}cd"), "ab\\u{202e}cd");
        assert_eq!(for_terminal("B\u{200b}ob"), "B\\u{200b}ob");
        assert_eq!(for_terminal("中文 👍"), "中文 👍");
    }

    #[test]
    fn rfc4648_base32() {
        // RFC 4648 section 10, lowercased, without padding.
        for (input, expect) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32(input.as_bytes()), expect);
            assert_eq!(base32_decode(expect).ok(), Some(input.as_bytes().to_vec()));
        }
        // No encoding is 1, 3 or 6 characters past a multiple of 8: a character was lost or added.
        for bad in ["m", "mzx", "mzxw6y", "mzxw6ytbo"] {
            assert_eq!(base32_decode(bad), Err(TextError::ImpossibleLength(bad.len())), "{bad}");
        }
    }

    #[test]
    fn id_round_trip_and_typos() {
        let key = [7u8; 32];
        let id = encode_id(IdKind::User, &key);
        assert_eq!(id.len(), 58);
        assert_eq!(decode_id(&id), Ok((IdKind::User, key)));
        assert_eq!(decode_id(&id.to_uppercase()), Ok((IdKind::User, key)));
        for i in 2..id.len() {
            let mut typo = id.clone().into_bytes();
            typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(typo).expect("ascii");
            assert!(decode_id(&typo).is_err(), "typo at {i} accepted");
        }
        assert_eq!(decode_id_of(IdKind::Device, &id), Err(TextError::WrongKind { expected: "device (ld…)" }));
        assert_eq!(decode_id("lx"), Err(TextError::UnknownPrefix));
        assert_eq!(decode_id("lu1"), Err(TextError::WrongLength(3)));
        assert!(short_id(IdKind::Device, &key).starts_with("ld:"));
    }
}
