//! The recovery phrase: the user key's secret in a form a person writes on paper and types
//! back (spec/devices.md, "Custody"). 32 secret bytes and 3 check bytes in base32 make 56
//! characters, shown as 14 groups of 4 joined by `-`. Whoever holds it holds the identity.

use crate::text::{base32, base32_decode};

/// Characters of a phrase without separators.
const CHARS: usize = 56;
const CHECK: usize = 3;
/// The checksum's domain separation.
pub const PHRASE_CONTEXT: &str = "libra recovery phrase v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhraseError {
    #[error("a recovery phrase has {CHARS} letters and digits (14 groups of 4), this has {0}")]
    WrongLength(usize),
    #[error("'{0}' cannot appear in a recovery phrase (letters a-z and digits 2-7 only)")]
    BadCharacter(char),
    #[error("the recovery phrase has a typo (its checksum does not match)")]
    Checksum,
}

impl PhraseError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongLength(_) => "wrong_length",
            Self::BadCharacter(_) => "bad_character",
            Self::Checksum => "checksum",
        }
    }
}

fn check(secret: &[u8; 32]) -> [u8; CHECK] {
    let h = blake3::derive_key(PHRASE_CONTEXT, secret);
    [h[0], h[1], h[2]]
}

/// The phrase of a user secret.
pub fn encode(secret: &[u8; 32]) -> String {
    let mut bytes = secret.to_vec();
    bytes.extend_from_slice(&check(secret));
    let text = base32(&bytes);
    text.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-")
}

/// The user secret of a phrase typed back: case, spaces, dashes and line breaks are ignored.
pub fn decode(phrase: &str) -> Result<[u8; 32], PhraseError> {
    let mut clean = String::with_capacity(CHARS);
    for c in phrase.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        let c = c.to_ascii_lowercase();
        if !(c.is_ascii_lowercase() || ('2'..='7').contains(&c)) {
            return Err(PhraseError::BadCharacter(c));
        }
        clean.push(c);
    }
    if clean.len() != CHARS {
        return Err(PhraseError::WrongLength(clean.len()));
    }
    let bytes = base32_decode(&clean).map_err(|_| PhraseError::Checksum)?;
    let secret: [u8; 32] = bytes[..32].try_into().map_err(|_| PhraseError::Checksum)?;
    if bytes[32..] != check(&secret) {
        return Err(PhraseError::Checksum);
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_catches_typos() {
        let secret = [7u8; 32];
        let p = encode(&secret);
        assert_eq!(p.len(), CHARS + 13);
        assert_eq!(decode(&p).expect("ok"), secret);
        assert_eq!(decode(&format!("  {}\n", p.to_uppercase().replace('-', " "))).expect("ok"), secret);
        let mut typo = p.clone().into_bytes();
        typo[5] = if typo[5] == b'a' { b'b' } else { b'a' };
        assert_eq!(decode(std::str::from_utf8(&typo).expect("ok")), Err(PhraseError::Checksum));
        assert_eq!(decode(&p[..20]), Err(PhraseError::WrongLength(16)));
        assert_eq!(decode(&p.replace('-', "1")), Err(PhraseError::BadCharacter('1')));
    }
}
