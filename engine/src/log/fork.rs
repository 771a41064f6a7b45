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
