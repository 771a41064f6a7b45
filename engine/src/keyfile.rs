//! The secret key file in the data directory, readable only by its owner.
//!
//! `identity.key` is JSON: `{"version":1,"user_secret":hex|null,"device_secret":hex,
//! "agreement_secret":hex}`. The user secret is absent on devices linked to an identity created
//! elsewhere. On Unix the file is created with mode 0600 in a 0700 directory; on Windows it
//! lives under the user's profile, which only that user can read.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::identity::{DeviceKeys, UserKeys};

pub const KEY_FILE: &str = "identity.key";

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("no identity in {0} (run `libra init`)")]
    Missing(PathBuf),
    #[error("an identity already exists in {0}")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600` on it")]
    TooOpen { path: PathBuf, mode: u32 },
}

#[derive(Serialize, Deserialize)]
struct KeyFileJson {
    version: u8,
    user_secret: Option<String>,
    device_secret: String,
    agreement_secret: String,
}

/// The secrets of this device.
pub struct Secrets {
    pub user: Option<UserKeys>,
    pub device: DeviceKeys,
}

fn path_of(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

/// Writes a new key file; refuses to overwrite one.
pub fn create(dir: &Path, secrets: &Secrets) -> Result<(), KeyFileError> {
    let path = path_of(dir);
    let io = |source| KeyFileError::Io { path: path.clone(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    restrict_dir(dir).map_err(io)?;
    let json = KeyFileJson {
        version: 1,
        user_secret: secrets.user.as_ref().map(|u| hex::encode(u.signing.to_bytes())),
        device_secret: hex::encode(secrets.device.signing.to_bytes()),
        agreement_secret: hex::encode(secrets.device.agreement.to_bytes()),
    };
    let text = serde_json::to_string_pretty(&json).map_err(|e| io(std::io::Error::other(e)))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(KeyFileError::Exists(path));
        }
        Err(e) => return Err(io(e)),
    };
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Whether a key file exists in `dir`.
pub fn exists(dir: &Path) -> bool {
    path_of(dir).exists()
}

/// Reads the key file.
pub fn load(dir: &Path) -> Result<Secrets, KeyFileError> {
    let path = path_of(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyFileError::Missing(dir.to_path_buf()));
        }
        Err(source) => return Err(KeyFileError::Io { path, source }),
    };
    check_mode(&path)?;
    let damaged = |reason: String| KeyFileError::Damaged { path: path.clone(), reason };
    let json: KeyFileJson = serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
    if json.version != 1 {
        return Err(damaged(format!("unknown version {}", json.version)));
    }
    let secret = |name: &str, h: &str| -> Result<[u8; 32], KeyFileError> {
        let bytes = hex::decode(h).map_err(|e| damaged(format!("{name}: {e}")))?;
        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| damaged(format!("{name} is not 32 bytes")))
    };
    let user = match &json.user_secret {
        Some(h) => Some(UserKeys::from_secret(secret("user_secret", h)?)),
        None => None,
    };
    let device = DeviceKeys::from_secrets(
        secret("device_secret", &json.device_secret)?,
        secret("agreement_secret", &json.agreement_secret)?,
    );
    Ok(Secrets { user, device })
}

#[cfg(unix)]
fn restrict_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn restrict_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn check_mode(path: &Path) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyFileError::Io { path: path.to_path_buf(), source })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen { path: path.to_path_buf(), mode: mode & 0o777 });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path) -> Result<(), KeyFileError> {
    Ok(())
}
