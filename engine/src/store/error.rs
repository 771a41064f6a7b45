use std::path::PathBuf;

use crate::log::ValidationError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {0} is in use by another process (is `libra serve` or the app running?)")]
    Locked(PathBuf),
    #[error("the store at {path} has format {found:?}; this version reads {expected:?}")]
    WrongFormat { path: PathBuf, found: String, expected: &'static str },
    #[error("the store at {path} could not be opened: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("the store is damaged: {0}")]
    Corrupt(String),
    /// A block or file of the store failed its checksum or could not be decoded: damage on
    /// disk, not a bug. Named apart so the user is told what to do.
    #[error(
        "the store is damaged on disk ({0}); `libra store repair` rebuilds it from its logs and keeps the damaged one beside it"
    )]
    Damaged(String),
    /// The same, found while opening, in one keyspace's directory (`libra store repair` sets
    /// it aside and rebuilds its contents where the logs hold them).
    #[error(
        "the store at {path} could not be opened: it is damaged on disk ({what}, in {}); `libra store repair` rebuilds it from its logs and keeps the damaged one beside it",
        dir.display()
    )]
    DamagedKeyspace { path: PathBuf, dir: PathBuf, what: String },
    #[error("storage error: {0}")]
    Io(fjall::Error),
    #[error("file system error: {0}")]
    Fs(#[from] std::io::Error),
    #[error("refused: {0}")]
    Invalid(#[from] ValidationError),
}

impl From<fjall::Error> for StoreError {
    fn from(e: fjall::Error) -> StoreError {
        match damage(&e) {
            Some(what) => StoreError::Damaged(what),
            None => StoreError::Io(e),
        }
    }
}

impl StoreError {
    /// Whether this is damage on disk (what `libra store repair` is for).
    pub fn is_damage(&self) -> bool {
        matches!(self, StoreError::Damaged(_) | StoreError::DamagedKeyspace { .. })
            || matches!(self, StoreError::Open { reason, .. } if reason.starts_with(DAMAGE))
    }
}

/// How an open that failed on damage begins its reason.
pub(super) const DAMAGE: &str = "it is damaged on disk";

/// What is damaged, if `e` says the bytes on disk are not what was written (a checksum, a
/// block that does not decode), rather than an I/O failure or a bug.
pub(super) fn damage(e: &fjall::Error) -> Option<String> {
    use fjall::LsmError as L;
    Some(match e {
        fjall::Error::KeyspaceRecovery(_, inner) => return damage(inner),
        fjall::Error::Storage(L::ChecksumMismatch { .. }) => "a block does not match its checksum".into(),
        fjall::Error::Storage(L::Decompress(_)) | fjall::Error::Decompress(_) => "a block does not decompress".into(),
        fjall::Error::Storage(L::InvalidTag(_) | L::InvalidTrailer | L::InvalidHeader(_) | L::Utf8(_))
        | fjall::Error::InvalidTag(_)
        | fjall::Error::InvalidTrailer => "a block does not decode".into(),
        fjall::Error::Storage(L::InvalidVersion(_)) | fjall::Error::InvalidVersion(_) => {
            "a file has an unknown version".into()
        }
        fjall::Error::Storage(L::Unrecoverable) => "some of its files could not be recovered".into(),
        _ => return None,
    })
}
