//! Restoring from the recovery phrase on the onboarding screen (spec/devices.md, section 5): a
//! new device of the same identity, with the history when a backup file is given. Decrypting
//! and importing a backup takes a while, so it runs on a thread of its own; the UI polls.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libra_engine::node::Node;

/// A restore under way.
pub struct Restoring(Arc<Mutex<Option<Result<Node, String>>>>);

impl Restoring {
    /// The result, once there is one.
    pub fn take(&self) -> Option<Result<Node, String>> {
        self.0.lock().ok().and_then(|mut r| r.take())
    }
}

/// Restores into `dir` from `phrase` (and the backup at `backup`, if not empty).
pub fn restore(dir: &Path, phrase: &str, backup: &str) -> Result<Node, String> {
    let secret = libra_engine::phrase::decode(phrase).map_err(|e| format!("recovery phrase: {e}"))?;
    let backup = backup.trim();
    if backup.is_empty() {
        return Node::init_restored(dir, secret, Vec::new()).map_err(|e| e.to_string());
    }
    let (engine, _) =
        libra_engine::control::backup::restore(dir, secret, Path::new(backup)).map_err(|e| format!("{e:#}"))?;
    engine.shutdown();
    Node::open(dir).map_err(|e| e.to_string())
}

/// [`restore`] on a thread of its own.
pub fn start(dir: PathBuf, phrase: String, backup: String, ctx: eframe::egui::Context) -> Restoring {
    let slot = Arc::new(Mutex::new(None));
    let out = slot.clone();
    std::thread::spawn(move || {
        let result = restore(&dir, &phrase, &backup);
        if let Ok(mut s) = out.lock() {
            *s = Some(result);
        }
        ctx.request_repaint();
    });
    Restoring(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phrase_restores_the_identity_as_a_new_device_and_a_typo_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let first = Node::init(&dir.path().join("old"), "Ann").expect("init");
        let phrase = first.recovery_phrase().expect("phrase");
        let restored = restore(&dir.path().join("new"), &phrase, "").expect("restore");
        assert_eq!(restored.user_id(), first.user_id(), "the same identity");
        assert_ne!(restored.device_id(), first.device_id(), "a new device key, never the old one");
        // One letter changed, always to another one (a phrase starting with `z` made no typo).
        let mut typo = phrase.clone().into_bytes();
        typo[0] = if typo[0] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).expect("ascii");
        assert!(restore(&dir.path().join("typo"), &typo, "").is_err());
        let missing = restore(&dir.path().join("nofile"), &phrase, "/nonexistent/backup");
        assert!(missing.is_err_and(|e| e.contains("nonexistent")), "a missing backup names the file");
    }
}
