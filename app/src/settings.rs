//! Local preferences, kept in `settings.json` in the data directory (never in a log).

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// A desktop notification when a message arrives (not for the chat being looked at), and
    /// a request for attention (taskbar / dock) while the window is unfocused.
    pub notifications: bool,
    /// Show the message's text in notifications (else only who wrote).
    pub notification_preview: bool,
    /// Tell senders when you have read their messages.
    pub read_receipts: bool,
    /// Where to accept connections (only allowed devices get past the handshake).
    pub listen: String,
    /// Find contacts and own devices on the local network by private beacons.
    pub lan: bool,
    /// Relay end-to-end encrypted sessions between two of our contacts who cannot reach each
    /// other.
    pub relay: bool,
    /// Let a contact who asks through a mutual contact learn our public address, to connect
    /// directly through both NATs (hole punching).
    pub punch: bool,
    /// STUN servers to ask for our public address (`HOST:PORT`, separated by spaces or
    /// commas; empty: none, the default). The server learns that address.
    pub stun: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            notifications: true,
            notification_preview: true,
            read_receipts: false,
            listen: "0.0.0.0:7444".into(),
            lan: true,
            relay: false,
            punch: true,
            stun: String::new(),
        }
    }
}

impl Settings {
    pub fn load(dir: &Path) -> Settings {
        std::fs::read_to_string(dir.join("settings.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// The STUN servers set, each a well-formed `HOST:PORT` (others are left out).
    pub fn stun_servers(&self) -> Vec<String> {
        self.stun
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty() && libra_engine::net::check_address(s).is_ok())
            .map(str::to_owned)
            .collect()
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("settings.json"), serde_json::to_string_pretty(self).unwrap_or_default())
    }
}
