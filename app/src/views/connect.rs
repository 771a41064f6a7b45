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
    /// Bundle files: where to write one, for whom (None: every log), and one to read.
    pub export_path: String,
    pub export_for: Option<String>,
    pub import_path: String,
}

pub enum ConnectAction {
    AddContact(String),
    Connect {
        address: String,
        peer: String,
    },
    /// Be visible nearby for this many minutes (0: stop).
    Nearby {
        minutes: u32,
    },
    AddNearby(Box<libra_engine::nearby::Person>),
    /// Write a bundle for a contact (by name) or with every log.
    Export {
        path: String,
        for_contact: Option<String>,
    },
    Import {
        path: String,
    },
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
        ui.horizontal_wrapped(|ui| {
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
        for d in &snap.awaiting {
            ui.label(
                RichText::new(format!(
                    "Waiting to reach device {d}: a short invite (from a QR code) becomes a contact once Libra reaches that device, on this network or at the invite's address."
                ))
                .weak(),
            );
        }
        nearby(ui, snap, now_ms, &mut action);
        bundles(ui, snap, state, &mut action);
        ui.add_space(16.0);
        ui.label(RichText::new("Connect to an address").size(18.0).strong());
        ui.label(
            RichText::new(
                "For peers on your network or reachable directly. Only contacts' devices are accepted, and a \
                 device answers only those who name it.",
            )
                .weak(),
        );
        ui.horizontal_wrapped(|ui| {
            ui.add(egui::TextEdit::singleline(&mut state.address).hint_text("HOST:PORT").desired_width(180.0));
            ui.add(
                egui::TextEdit::singleline(&mut state.peer).hint_text("device id (ld…)").desired_width(260.0),
            );
            let ready = !state.address.trim().is_empty() && !state.peer.trim().is_empty();
            if ui.add_enabled(ready, egui::Button::new("Connect")).clicked() {
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
        // Wide tables scroll sideways rather than push columns off a small window.
        egui::ScrollArea::horizontal().id_salt("peers-scroll").show(ui, |ui| {
            egui::Grid::new("peers").striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
                for h in ["", "Peer", "Path", "Status", "Last seen", "Address (local)"] {
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
                    ui.label(&p.status).on_hover_text(format!("last sync {}", when(p.last_sync_ms, now_ms)));
                    // Online is seen now, whatever the record says (it is written when a session ends).
                    ui.label(if p.online { "now".to_owned() } else { when(p.last_seen_ms, now_ms) });
                    let address = ui.label(RichText::new(p.address.as_deref().unwrap_or("—")).monospace().small());
                    if let Some(at) = &p.sees_you_at {
                        address.on_hover_text(format!("{} sees you at {at}: your public address", p.name));
                    }
                    ui.end_row();
                }
            });
        });
        if let Some((at, server)) = &snap.public_address {
            ui.label(RichText::new(format!("The STUN server {server} sees you at {at} (your public address)")).small().weak());
        }
        // Our public address, as the contacts that introduced us saw it (a STUN answer from a
        // friend): tells the user whether they are behind a NAT.
        for p in snap.peers.iter().filter(|p| p.sees_you_at.is_some()) {
            let at = p.sees_you_at.as_deref().unwrap_or_default();
            ui.label(RichText::new(format!("{} sees you at {at} (your public address)", p.name)).small().weak());
        }
        // Why each offline peer is not connected, in words.
        for p in snap.peers.iter().filter(|p| !p.online) {
            if let Some(why) = &p.why {
                ui.label(RichText::new(format!("{} ({}): {why}", p.name, p.short)).small().weak());
            }
        }
    });
    action
}

/// Visible nearby: a switch with its countdown, and the people visible too, each with Add.
fn nearby(ui: &mut egui::Ui, snap: &Snapshot, now_ms: u64, action: &mut Option<ConnectAction>) {
    ui.add_space(16.0);
    ui.label(RichText::new("Visible nearby").size(18.0).strong());
    match snap.nearby.until_ms.filter(|u| *u > now_ms) {
        None => {
            ui.label(
                RichText::new(
                    "In the same room? Both turn this on to see each other here and add each other without typing. \
                     While on, your name and keys go to everyone on this network.",
                )
                .weak(),
            );
            if ui.button("Be visible nearby for 5 minutes").clicked() {
                *action = Some(ConnectAction::Nearby { minutes: 5 });
            }
        }
        Some(until) => {
            ui.horizontal(|ui| {
                let left = until.saturating_sub(now_ms).div_ceil(1000);
                ui.label(format!("Visible for {}:{:02} more.", left / 60, left % 60));
                if ui.button("Stop").clicked() {
                    *action = Some(ConnectAction::Nearby { minutes: 0 });
                }
            });
            if snap.nearby.people.is_empty() {
                ui.label(RichText::new("Nobody else is visible yet.").weak());
            }
            let known: Vec<&str> = snap.contacts.iter().map(|(_, n)| n.as_str()).collect();
            for p in &snap.nearby.people {
                ui.horizontal_wrapped(|ui| {
                    let short = p.user().short();
                    ui.label(RichText::new(libra_engine::text::for_terminal(&p.invite.card.name)).strong());
                    ui.label(RichText::new(&short).monospace().small());
                    let already = snap.contacts.iter().any(|(u, _)| *u == p.user());
                    if already {
                        ui.label(RichText::new("a contact").weak());
                    } else if ui
                        .button("Add")
                        .on_hover_text("Compare the short id with the one on their screen")
                        .clicked()
                    {
                        *action = Some(ConnectAction::AddNearby(Box::new(p.clone())));
                    }
                    if !already && known.iter().any(|n| n.eq_ignore_ascii_case(&p.invite.card.name)) {
                        ui.label(RichText::new("same name as a contact").color(ui.visuals().warn_fg_color));
                    }
                });
            }
        }
    }
}

/// Carrying logs by file (a USB stick): export for a contact or everything, import a file.
fn bundles(ui: &mut egui::Ui, snap: &Snapshot, state: &mut ConnectState, action: &mut Option<ConnectAction>) {
    ui.add_space(16.0);
    ui.label(RichText::new("Carry by file").size(18.0).strong());
    ui.label(
        RichText::new(
            "No network? Write a bundle for someone onto a USB stick; they import it, and their next bundle brings their answers and receipts back.",
        )
        .weak(),
    );
    ui.horizontal_wrapped(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut state.export_path)
                .hint_text("file to write, e.g. /media/usb/for-ben.libra")
                .desired_width(260.0),
        );
        let shown = state.export_for.clone().unwrap_or_else(|| "everything".into());
        egui::ComboBox::from_id_salt("export-for").selected_text(shown).show_ui(ui, |ui| {
            ui.selectable_value(&mut state.export_for, None, "everything");
            for (_, name) in &snap.contacts {
                ui.selectable_value(&mut state.export_for, Some(name.clone()), name);
            }
        });
        if ui.add_enabled(!state.export_path.trim().is_empty(), egui::Button::new("Export")).clicked() {
            *action = Some(ConnectAction::Export {
                path: state.export_path.trim().to_owned(),
                for_contact: state.export_for.clone(),
            });
        }
    });
    ui.horizontal_wrapped(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut state.import_path)
                .hint_text("bundle to import (or drop it on the window)")
                .desired_width(260.0),
        );
        if ui.add_enabled(!state.import_path.trim().is_empty(), egui::Button::new("Import")).clicked() {
            *action = Some(ConnectAction::Import { path: state.import_path.trim().to_owned() });
        }
    });
}
