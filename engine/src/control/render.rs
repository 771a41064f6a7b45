//! Turning engine values into text and JSON for people and scripts.

use crate::identity::{DeviceId, UserId};
use crate::log::Entry;
use crate::payload::Payload;
use crate::projection::TrustView;
use crate::{clock, codec::Bytes};
use serde_json::{Value, json};

/// The text form of a log author: a user id, a device id, or raw hex if the trust view does not
/// know the key.
pub fn author(trust: &TrustView, key: &[u8; 32]) -> String {
    let user = UserId(Bytes(*key));
    if trust.users.get(&user).is_some_and(|u| !u.devices.is_empty() || u.name.is_some()) {
        return user.to_string();
    }
    let device = DeviceId(Bytes(*key));
    if trust.owner_of(&device).is_some() {
        return device.to_string();
    }
    hex::encode(key)
}

/// Milliseconds since the epoch as an RFC 3339 UTC time (JSON, logs).
pub fn time(ms: u64) -> String {
    clock::rfc3339(ms)
}

/// An RFC 3339 time (as [`time`] writes it) in this machine's local time zone, for people:
/// `2026-11-30 12:48:07`; what does not parse is shown as it is.
pub fn local(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => rfc3339.to_owned(),
    }
}

pub fn entry_json(e: &Entry, with_payload: bool) -> Value {
    let h = e.header();
    let mut v = json!({
        "seq": h.seq,
        "id": e.id.to_hex(),
        "prev": h.prev.map(|p| p.to_hex()),
        "timestamp": h.timestamp,
        "time": time(clock::physical_ms(h.timestamp)),
        "kind": h.kind,
        "kind_name": Payload::kind_name(h.kind),
        "payload_size": h.payload_size,
    });
    if with_payload {
        v["payload"] = match e.payload.as_deref().map(|p| Payload::decode(h.kind, p)) {
            Some(Ok(p)) => p.to_json(),
            Some(Err(err)) => json!({ "undecodable": err.to_string() }),
            None => Value::Null,
        };
    }
    v
}

/// A size for people: bytes, KiB, MiB, GiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 { format!("{v:.1} {}", UNITS[unit]) } else { format!("{v:.0} {}", UNITS[unit]) }
}

/// One entry of `log replay` (a row of [`entry_json`]) as a line of text. The payload is what
/// its author wrote: escaped for a terminal (JSON leaves DEL, C1 controls and bidi marks in).
pub fn entry_line(r: &serde_json::Value) -> String {
    format!(
        "{:>6}  {}  {}  {:<14} {}\n",
        r["seq"],
        &r["id"].as_str().unwrap_or("")[..16],
        local(r["time"].as_str().unwrap_or("")),
        r["kind_name"].as_str().unwrap_or(""),
        crate::text::for_terminal(&r["payload"].to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_line_escapes_what_its_author_wrote() {
        let r = serde_json::json!({
            "seq": 3, "id": "ab".repeat(32), "time": "2026-01-01T00:00:00.000Z", "kind_name": "profile",
            "payload": { "name": "Eve\u{202e}gnp.exe\u{7f}\u{9b}31m" },
        });
        let line = entry_line(&r);
        assert!(!line.contains('\u{202e}') && !line.contains('\u{7f}') && !line.contains('\u{9b}'), "{line}");
        assert!(line.contains("\\u{202e}"), "{line}");
    }
}
