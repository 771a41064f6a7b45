//! Preferences (kept locally).

use eframe::egui::{self, RichText};

use crate::settings::Settings;

/// Returns true when a setting changed (the app saves them).
pub fn ui(ui: &mut egui::Ui, s: &mut Settings, listening: Option<std::net::SocketAddr>) -> bool {
    let mut changed = false;
    ui.add_space(12.0);
    ui.label(RichText::new("Settings").size(18.0).strong());
    changed |=
        ui.checkbox(&mut s.notifications, "Notify me of new messages (not for the chat I am looking at)").changed();
    ui.add_enabled_ui(s.notifications, |ui| {
        changed |= ui
            .checkbox(&mut s.notification_preview, "Show the message's text in notifications (else only who wrote)")
            .changed();
    });
    changed |= ui
        .checkbox(&mut s.read_receipts, "Send read receipts (others see when you have read their messages)")
        .changed();
    changed |= ui
        .checkbox(
            &mut s.lan,
            "Find contacts and your devices on the local network (private beacons; takes effect on restart)",
        )
        .changed();
    changed |= ui
        .checkbox(
            &mut s.relay,
            "Relay for my contacts who cannot reach each other (encrypted end to end; you see only that they talk; on restart)",
        )
        .changed();
    changed |= ui
        .checkbox(
            &mut s.punch,
            "Connect directly through routers: contacts who ask through a mutual contact learn my public address (on restart)",
        )
        .changed();
    ui.add_space(8.0);
    ui.horizontal(|ui| {
        ui.label("Listen on");
        changed |= ui.add(egui::TextEdit::singleline(&mut s.listen).desired_width(160.0)).changed();
        ui.label(RichText::new("(takes effect on restart)").small().weak());
    });
    ui.horizontal(|ui| {
        ui.label("STUN server");
        changed |= ui
            .add(egui::TextEdit::singleline(&mut s.stun).hint_text("none").desired_width(200.0))
            .on_hover_text("HOST:PORT of a STUN server you run or trust (`libra stun serve`); it learns your public address. Several: separate with commas.")
            .changed();
        ui.label(RichText::new("(optional; on restart)").small().weak());
    });
    let bad: Vec<&str> = s
        .stun
        .split([',', ' '])
        .map(str::trim)
        .filter(|x| !x.is_empty() && libra_engine::net::check_address(x).is_err())
        .collect();
    if !bad.is_empty() {
        ui.label(
            RichText::new(format!("not HOST:PORT, left out: {}", bad.join(", ")))
                .small()
                .color(egui::Color32::LIGHT_RED),
        );
    }
    if let Some(a) = listening {
        ui.label(RichText::new(format!("Listening on {a}. Only your contacts' devices can connect.")).small().weak());
    }
    changed
}

/// Which files download by themselves (kept in the store, as `libra file auto` sets it);
/// returns a new limit in bytes when the user picks one.
pub fn downloads(ui: &mut egui::Ui, snap: &crate::model::Snapshot) -> Option<u64> {
    const CHOICES: [(u64, &str); 6] = [
        (0, "only when I ask"),
        (8 << 20, "up to 8 MiB"),
        (32 << 20, "up to 32 MiB"),
        (100 << 20, "up to 100 MiB"),
        (500 << 20, "up to 500 MiB"),
        (2 << 30, "up to 2 GiB"),
    ];
    let now = snap.auto_download;
    let label = CHOICES
        .iter()
        .find(|(b, _)| *b == now)
        .map_or_else(|| format!("up to {}", libra_engine::control::render::bytes(now)), |(_, l)| (*l).to_owned());
    let mut picked = None;
    ui.add_space(8.0);
    ui.horizontal(|ui| {
        ui.label("Download files by themselves:");
        egui::ComboBox::from_id_salt("auto-download").selected_text(label).show_ui(ui, |ui| {
            for (bytes, text) in CHOICES {
                if ui.selectable_label(bytes == now, text).clicked() && bytes != now {
                    picked = Some(bytes);
                }
            }
        });
    });
    ui.label(RichText::new("Larger files wait until you press Download.").small().weak());
    picked
}

/// Blocked contacts, each with Unblock; returns the one to unblock.
pub fn blocked(ui: &mut egui::Ui, snap: &crate::model::Snapshot) -> Option<libra_engine::identity::UserId> {
    if snap.blocked.is_empty() {
        return None;
    }
    let mut unblock = None;
    ui.add_space(12.0);
    ui.label(RichText::new("Blocked contacts").strong());
    for (u, name) in &snap.blocked {
        ui.horizontal(|ui| {
            ui.label(name);
            if ui.small_button("Unblock").clicked() {
                unblock = Some(*u);
            }
        });
    }
    unblock
}
