use crate::codec::CodecError;

/// Why an entry is rejected. Each reason has a stable code, used by the test vectors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    #[error("malformed entry: {0}")]
    Malformed(String),
    #[error("non-canonical encoding")]
    NonCanonical,
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    #[error("payload of {size} bytes exceeds the limit of {limit}")]
    Oversize { size: u64, limit: u32 },
    #[error("payload is {found} bytes, the header says {expected}")]
    PayloadSizeMismatch { expected: u32, found: u64 },
    #[error("payload hash does not match the header")]
    PayloadHashMismatch,
    #[error("signature does not verify")]
    BadSignature,
    #[error("expected seq {expected}, found {found}")]
    WrongSeq { expected: u64, found: u64 },
    #[error("prev does not link to the entry before")]
    PrevMismatch,
    #[error("timestamp {found} does not follow the previous entry's {previous}")]
    TimestampRegression { previous: u64, found: u64 },
    #[error("author equivocated: another entry with this seq exists")]
    Fork,
    #[error("log is frozen by a fork proof")]
    Forked,
    #[error("the device was revoked after its entry {last_seq}")]
    Revoked { last_seq: u64 },
    #[error("stamped {} s ahead of this device's clock (more than a day): held until then", ahead_ms / 1000)]
    Ahead { ahead_ms: u64 },
}

impl ValidationError {
    /// The stable code of this reason, as written in spec/log.md and the test vectors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownVersion(_) => "unknown_version",
            Self::Malformed(_) => "malformed",
            Self::NonCanonical => "non_canonical",
            Self::TrailingBytes(_) => "trailing_bytes",
            Self::Oversize { .. } => "oversize",
            Self::PayloadSizeMismatch { .. } => "payload_size_mismatch",
            Self::PayloadHashMismatch => "payload_hash_mismatch",
            Self::BadSignature => "bad_signature",
            Self::WrongSeq { .. } => "wrong_seq",
            Self::PrevMismatch => "prev_mismatch",
            Self::TimestampRegression { .. } => "timestamp_regression",
            Self::Fork => "fork",
            Self::Forked => "forked",
            Self::Revoked { .. } => "revoked",
            Self::Ahead { .. } => "ahead",
        }
    }
}

impl From<CodecError> for ValidationError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Malformed(m) => Self::Malformed(m),
            CodecError::TrailingBytes(n) => Self::TrailingBytes(n),
            CodecError::NonCanonical => Self::NonCanonical,
        }
    }
}
