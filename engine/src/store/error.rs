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
    #[error("storage error: {0}")]
    Io(#[from] fjall::Error),
    #[error("file system error: {0}")]
    Fs(#[from] std::io::Error),
    #[error("refused: {0}")]
    Invalid(#[from] ValidationError),
}
