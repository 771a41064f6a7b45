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
    /// Earlier agreement secrets of this device and those handed over by the device that linked
    /// it: kept to open history (spec/devices.md). Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    agreement_history: Vec<String>,
    /// When each of `agreement_history` stopped being current (ms); it is deleted
    /// [`crate::devices::KEEP_RETIRED_MS`] later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    agreement_retired_ms: Vec<u64>,
    /// [`checksum`] of the fields above: one changed digit is caught at load. Absent in files
    /// written before it existed (those are checked against the published keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksum: Option<String>,
}

const CHECKSUM_CONTEXT: &str = "libra key file checksum v1";

/// The checksum of a key file's fields (spec/identity.md, section 8): the first 16 bytes, in
/// hex, of blake3 derive_key over `version ‖ user flag (0/1) ‖ user secret ‖ device secret ‖
/// agreement secret ‖ u32 BE count ‖ each history secret ‖ u32 BE count ‖ each retirement
/// time as u64 BE`, each secret its 32 bytes (decoded from hex).
fn checksum(json: &KeyFileJson) -> Option<String> {
    let raw = |h: &str| hex::decode(h).ok().filter(|b| b.len() == 32);
    let mut h = blake3::Hasher::new_derive_key(CHECKSUM_CONTEXT);
    h.update(&[json.version]);
    match &json.user_secret {
        Some(u) => {
            h.update(&[1]);
            h.update(&raw(u)?);
        }
        None => {
            h.update(&[0]);
        }
    }
    h.update(&raw(&json.device_secret)?);
    h.update(&raw(&json.agreement_secret)?);
    h.update(&u32::try_from(json.agreement_history.len()).ok()?.to_be_bytes());
    for s in &json.agreement_history {
        h.update(&raw(s)?);
    }
    h.update(&u32::try_from(json.agreement_retired_ms.len()).ok()?.to_be_bytes());
    for t in &json.agreement_retired_ms {
        h.update(&t.to_be_bytes());
    }
    Some(hex::encode(&h.finalize().as_bytes()[..16]))
}

/// The secrets of this device.
pub struct Secrets {
    pub user: Option<UserKeys>,
    pub device: DeviceKeys,
    /// Agreement secrets that open history only (never sealed to again), newest first.
    pub history: Vec<x25519_dalek::StaticSecret>,
    /// When each of `history` was retired (ms), same order.
    pub retired_ms: Vec<u64>,
}

impl Secrets {
    pub fn new(user: Option<UserKeys>, device: DeviceKeys) -> Secrets {
        Secrets { user, device, history: Vec::new(), retired_ms: Vec::new() }
    }

    /// Secrets for history only, all retired at `now_ms` (handed over at linking or restored).
    pub fn with_history(mut self, history: Vec<x25519_dalek::StaticSecret>, now_ms: u64) -> Secrets {
        self.retired_ms = vec![now_ms; history.len()];
        self.history = history;
        self
    }

    /// Every agreement secret, the current one first.
    pub fn agreements(&self) -> Vec<x25519_dalek::StaticSecret> {
        std::iter::once(self.device.agreement().clone()).chain(self.history.iter().cloned()).collect()
    }

    /// The secret of an agreement public key, current or past.
    pub fn agreement_for(&self, public: &[u8; 32]) -> Option<x25519_dalek::StaticSecret> {
        self.agreements().into_iter().find(|s| x25519_dalek::PublicKey::from(s).as_bytes() == public)
    }
}

fn path_of(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

/// The text of the key file holding `secrets`.
pub fn to_json(secrets: &Secrets) -> Result<String, serde_json::Error> {
    let mut json = KeyFileJson {
        version: 1,
        user_secret: secrets.user.as_ref().map(|u| hex::encode(u.signing.to_bytes())),
        device_secret: hex::encode(secrets.device.signing.to_bytes()),
        agreement_secret: hex::encode(secrets.device.agreement().to_bytes()),
        agreement_history: secrets.history.iter().map(|s| hex::encode(s.to_bytes())).collect(),
        agreement_retired_ms: secrets.retired_ms.clone(),
        checksum: None,
    };
    json.checksum = checksum(&json);
    serde_json::to_string_pretty(&json)
}

fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // Windows: the equivalent of mode 0600, before a secret is written into it.
    #[cfg(windows)]
    crate::winsec::restrict_path(path, false)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Writes a new key file; refuses to overwrite one.
pub fn create(dir: &Path, secrets: &Secrets) -> Result<(), KeyFileError> {
    let path = path_of(dir);
    let io = |source| KeyFileError::Io { path: path.clone(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    restrict_dir(dir).map_err(io)?;
    let text = to_json(secrets).map_err(|e| io(std::io::Error::other(e)))?;
    match write_new(&path, &text) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(KeyFileError::Exists(path)),
        other => other.map_err(io),
    }
}

/// Replaces the key file (a rotated agreement key): written beside it, synced, renamed over it,
/// directory synced — a crash leaves the old file or the new one, never neither.
pub fn replace(dir: &Path, secrets: &Secrets) -> Result<(), KeyFileError> {
    let path = path_of(dir);
    let tmp = dir.join(format!("{KEY_FILE}.new"));
    let io = |source| KeyFileError::Io { path: path.clone(), source };
    let text = to_json(secrets).map_err(|e| io(std::io::Error::other(e)))?;
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, &text).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
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
    from_text(&text, &path)
}

/// A key file's text as [`load`] reads it (the published vectors check the format with it).
pub fn from_text(text: &str, path: &Path) -> Result<Secrets, KeyFileError> {
    let damaged = |reason: String| KeyFileError::Damaged { path: path.to_path_buf(), reason };
    let json: KeyFileJson = serde_json::from_str(text).map_err(|e| damaged(e.to_string()))?;
    if json.version != 1 {
        return Err(damaged(format!("unknown version {}", json.version)));
    }
    if let Some(want) = &json.checksum
        && checksum(&json).as_ref() != Some(want)
    {
        return Err(damaged("its checksum does not match (a secret in it was changed); restore it from a copy, or restore the identity with `libra init --restore`".into()));
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
    let mut history = Vec::new();
    for h in &json.agreement_history {
        history.push(x25519_dalek::StaticSecret::from(secret("agreement_history", h)?));
    }
    // A missing retirement time counts as now: kept for the whole window from this load.
    let mut retired_ms = json.agreement_retired_ms.clone();
    retired_ms.resize(history.len(), crate::clock::wall_ms());
    Ok(Secrets { user, device, history, retired_ms })
}

#[cfg(unix)]
fn restrict_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Windows: the user alone, passed on to everything created inside (the store, blobs).
#[cfg(windows)]
fn restrict_dir(dir: &Path) -> std::io::Result<()> {
    crate::winsec::restrict_path(dir, true)
}

#[cfg(not(any(unix, windows)))]
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
