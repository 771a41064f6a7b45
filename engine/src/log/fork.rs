//! Fork proofs: two valid signed headers by one author with the same seq and different ids.
//! Anyone can check one with nothing but the two headers.

use serde::{Deserialize, Serialize};

use super::entry::{Entry, SignedHeader};
use super::validate::verify_signature;
use crate::codec::{self, Blob};

/// Evidence that an author signed two different entries at the same position of its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkProof {
    /// Signed header bytes of the entry kept (the first one this node stored).
    pub first: Blob,
    /// Signed header bytes of the conflicting entry.
    pub second: Blob,
}

/// Why two headers do not prove a fork.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForkError {
    #[error("a header does not decode: {0}")]
    Decode(String),
    #[error("the headers have different authors")]
    DifferentAuthors,
    #[error("the headers have different seqs")]
    DifferentSeqs,
    #[error("the headers are the same entry")]
    SameEntry,
    #[error("a signature does not verify")]
    BadSignature,
}

impl ForkError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Decode(_) => "malformed",
            Self::DifferentAuthors => "different_authors",
            Self::DifferentSeqs => "different_seqs",
            Self::SameEntry => "same_entry",
            Self::BadSignature => "bad_signature",
        }
    }
}

impl ForkProof {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ForkError> {
        codec::decode(bytes).map_err(|e| ForkError::Decode(e.to_string()))
    }

    /// Checks the proof and returns the author and seq it convicts.
    pub fn verify(&self) -> Result<([u8; 32], u64), ForkError> {
        let load = |b: &Blob| Entry::from_parts(b.0.clone(), None).map_err(|e| ForkError::Decode(e.to_string()));
        let (a, b) = (load(&self.first)?, load(&self.second)?);
        if a.header().author != b.header().author {
            return Err(ForkError::DifferentAuthors);
        }
        if a.header().seq != b.header().seq {
            return Err(ForkError::DifferentSeqs);
        }
        if a.id == b.id {
            return Err(ForkError::SameEntry);
        }
        verify_signature(&a).and_then(|()| verify_signature(&b)).map_err(|_| ForkError::BadSignature)?;
        Ok((a.header().author.0, a.header().seq))
    }

    pub fn headers(&self) -> Result<(SignedHeader, SignedHeader), ForkError> {
        let d = |b: &Blob| SignedHeader::decode(&b.0).map_err(|e| ForkError::Decode(e.to_string()));
        Ok((d(&self.first)?, d(&self.second)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::sign_entry;
    use ed25519_dalek::SigningKey;

    fn proof(a: &Entry, b: &Entry) -> ForkProof {
        ForkProof { first: Blob(a.signed_bytes.clone()), second: Blob(b.signed_bytes.clone()) }
    }

    #[test]
    fn two_signed_headers_at_one_seq_convict_their_author() {
        let k = SigningKey::from_bytes(&[3; 32]);
        let author = k.verifying_key().to_bytes();
        let a = sign_entry(&k, None, 1_000, 99, b"left".to_vec());
        let b = sign_entry(&k, None, 1_000, 99, b"right".to_vec());
        let p = proof(&a, &b);
        assert_eq!(p.verify(), Ok((author, 1)));
        assert_eq!(ForkProof::decode(&p.encode()), Ok(p.clone()));
        assert_eq!(p.headers(), Ok((a.signed.clone(), b.signed.clone())));
        // At seq 2 as well (a different prev does not matter).
        let a2 = sign_entry(&k, Some((1, a.id)), 2_000, 99, b"x".to_vec());
        let b2 = sign_entry(&k, Some((1, b.id)), 2_000, 99, b"x".to_vec());
        assert_eq!(proof(&a2, &b2).verify(), Ok((author, 2)));

        let other = sign_entry(&SigningKey::from_bytes(&[4; 32]), None, 1_000, 99, b"right".to_vec());
        assert_eq!(proof(&a, &other).verify(), Err(ForkError::DifferentAuthors));
        assert_eq!(proof(&a, &a2).verify(), Err(ForkError::DifferentSeqs));
        assert_eq!(proof(&a, &a).verify(), Err(ForkError::SameEntry));
        let mut signed = b.signed.clone();
        signed.signature.0[7] ^= 1;
        let forged = ForkProof { first: Blob(a.signed_bytes.clone()), second: Blob(signed.encode()) };
        assert_eq!(forged.verify(), Err(ForkError::BadSignature));
        let garbage = ForkProof { first: Blob(vec![0xc1]), second: Blob(b.signed_bytes.clone()) };
        assert!(matches!(garbage.verify(), Err(ForkError::Decode(_))));
        assert!(matches!(ForkProof::decode(&[0x92, 0xc1]), Err(ForkError::Decode(_))));

        let codes: Vec<&str> = [
            ForkError::Decode(String::new()),
            ForkError::DifferentAuthors,
            ForkError::DifferentSeqs,
            ForkError::SameEntry,
            ForkError::BadSignature,
        ]
        .iter()
        .map(ForkError::code)
        .collect();
        // The codes the fork vectors carry (spec/log.md).
        assert_eq!(codes, ["malformed", "different_authors", "different_seqs", "same_entry", "bad_signature"]);
    }
}
