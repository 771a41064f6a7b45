//! Connecting: add a contact from an invite, connect to an address, and the peers with their
//! online and sync state (addresses are shown here, locally, and nowhere else).

use eframe::egui::{self, RichText};

use super::when;
use crate::model::Snapshot;

#[derive(Default)]
pub struct ConnectState {
    pub invite: String,
    pub qr_path: String,
    pub address: String,
    pub peer: String,
    pub error: Option<String>,
}

pub enum ConnectAction {
    AddContact(String),
    Connect { address: String, peer: String },
}

pub fn ui(ui: &mut egui::Ui, snap: &Snapshot, state: &mut ConnectState, now_ms: u64) -> Option<ConnectAction> {
    let mut action = None;
    egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
        ui.add_space(12.0);
        ui.label(RichText::new("Add a contact").size(18.0).strong());
        ui.label(RichText::new("Paste an invite (it starts with libra:).").weak());
        ui.add(
            egui::TextEdit::multiline(&mut state.invite)
                .hint_text("libra:…")
                .desired_rows(3)
                .desired_width(f32::INFINITY),
        );
        if ui.add_enabled(!state.invite.trim().is_empty(), egui::Button::new("Add contact")).clicked() {
            action = Some(ConnectAction::AddContact(state.invite.trim().to_owned()));
        }
        ui.horizontal(|ui| {
            ui.label("…or read it from a QR code image (PNG):");
            ui.add(egui::TextEdit::singleline(&mut state.qr_path).hint_text("path to image").desired_width(260.0));
            if ui.add_enabled(!state.qr_path.trim().is_empty(), egui::Button::new("Read")).clicked() {
                match crate::qr_import::invite_from_png(std::path::Path::new(state.qr_path.trim())) {
                    Ok(text) => state.invite = text,
                    Err(e) => state.error = Some(e),
                }
            }
        });
        if let Some(e) = &state.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        ui.add_space(16.0);
        ui.label(RichText::new("Connect to an address").size(18.0).strong());
        ui.label(
            RichText::new("For peers on your network or reachable directly. Only contacts' devices are accepted.")
                .weak(),
        );
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut state.address).hint_text("HOST:PORT").desired_width(180.0));
            ui.add(
                egui::TextEdit::singleline(&mut state.peer).hint_text("device id (ld…), optional").desired_width(260.0),
            );
            if ui.add_enabled(!state.address.trim().is_empty(), egui::Button::new("Connect")).clicked() {
                action = Some(ConnectAction::Connect {
                    address: state.address.trim().to_owned(),
                    peer: state.peer.trim().to_owned(),
                });
            }
        });
        ui.add_space(16.0);
        ui.label(RichText::new("Peers").size(18.0).strong());
        if snap.peers.is_empty() {
            ui.label(RichText::new("No peers yet. Add a contact to let their devices sync with you.").weak());
        }
        egui::Grid::new("peers").striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
            for h in ["", "Peer", "Path", "Status", "Last seen", "Last sync", "Address (local)"] {
                ui.label(RichText::new(h).small().weak());
            }
            ui.end_row();
            for p in &snap.peers {
                super::widgets::status_dot(ui, p.online);
                ui.label(format!("{}  {}", p.name, p.short));
                match (&p.path, &p.why) {
                    (Some(path), _) => ui.label(path),
                    (None, Some(why)) => ui.label(RichText::new("unreachable").weak()).on_hover_text(why),
                    (None, None) => ui.label("—"),
                };
                ui.label(&p.status);
                ui.label(when(p.last_seen_ms, now_ms));
                ui.label(when(p.last_sync_ms, now_ms));
                ui.label(RichText::new(p.address.as_deref().unwrap_or("—")).monospace().small());
                ui.end_row();
            }
        });
        // Why each offline peer is not connected, in words.
        for p in snap.peers.iter().filter(|p| !p.online) {
            if let Some(why) = &p.why {
                ui.label(RichText::new(format!("{} ({}): {why}", p.name, p.short)).small().weak());
            }
        }
    });
    action
}
