//! Who you are: name, ids in their checkable form, and your invite as text and QR code.

use eframe::egui::{self, RichText};

use super::widgets::avatar;
use crate::model::Snapshot;

pub struct IdentityState {
    pub invite: Option<String>,
    pub include_address: bool,
    pub address: String,
    /// How many people the next invite may introduce.
    pub uses: u32,
    /// The new name being typed (None: not renaming).
    pub renaming: Option<String>,
    pub qr: Option<(String, egui::TextureHandle)>,
    pub devices: super::devices::DevicesState,
}

impl Default for IdentityState {
    fn default() -> Self {
        IdentityState {
            invite: None,
            include_address: false,
            address: String::new(),
            uses: 1,
            renaming: None,
            qr: None,
            devices: Default::default(),
        }
    }
}

pub enum IdentityAction {
    /// A new invite (with an address only if the user chose to).
    NewInvite {
        address: Option<String>,
        uses: u32,
    },
    Revoke(String),
    /// Change our own display name.
    Rename(String),
    Devices(super::devices::DevicesAction),
}

pub fn ui(ui: &mut egui::Ui, snap: &Snapshot, state: &mut IdentityState) -> Option<IdentityAction> {
    let mut want = None;
    egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
        ui.add_space(12.0);
        ui.horizontal(|ui| {
            avatar(ui, &snap.me.name, 56.0);
            ui.vertical(|ui| {
                match &mut state.renaming {
                    None => {
                        ui.horizontal(|ui| {
                            ui.label(RichText::new(&snap.me.name).size(22.0).strong());
                            if ui.small_button("Change name…").clicked() {
                                state.renaming = Some(snap.me.name.clone());
                            }
                        });
                    }
                    Some(name) => {
                        let mut done = false;
                        ui.horizontal(|ui| {
                            ui.add(egui::TextEdit::singleline(name).desired_width(220.0));
                            if ui.add_enabled(!name.trim().is_empty(), egui::Button::new("Save name")).clicked() {
                                want = Some(IdentityAction::Rename(name.trim().to_owned()));
                                done = true;
                            }
                            if ui.button("Cancel").clicked() {
                                done = true;
                            }
                        });
                        if done {
                            state.renaming = None;
                        }
                    }
                }
                ui.label(RichText::new("Your identity lives on this device. New invites carry your new name.").weak());
                if let Some(ms) = snap.me.clock_ahead_ms {
                    ui.colored_label(ui.visuals().warn_fg_color, libra_engine::control::clock_ahead_text(ms));
                }
            });
        });
        ui.add_space(16.0);
        id_row(ui, "User id", &snap.me.user_short, &snap.me.user_id);
        id_row(ui, "This device", &snap.me.device_short, &snap.me.device_id);
        ui.add_space(16.0);
        ui.separator();
        if let Some(a) = super::devices::ui(ui, snap, &mut state.devices) {
            want = Some(IdentityAction::Devices(a));
        }
        ui.add_space(16.0);
        ui.separator();
        ui.label(RichText::new("Invite").size(18.0).strong());
        ui.label(RichText::new("Give this to someone so they can add you. It carries your name and device keys — no address unless you include one.").weak());
        ui.horizontal_wrapped(|ui| {
            ui.checkbox(&mut state.include_address, "Include an address to reach me:");
            ui.add_enabled(state.include_address, egui::TextEdit::singleline(&mut state.address).hint_text("HOST:PORT").desired_width(180.0));
        });
        ui.horizontal_wrapped(|ui| {
            ui.label("It may introduce");
            ui.add(egui::DragValue::new(&mut state.uses).range(1..=100));
            ui.label(if state.uses == 1 { "person (single use), for 7 days." } else { "people, for 7 days." });
        });
        if ui.button(if state.invite.is_some() { "New invite" } else { "Create invite" }).clicked() {
            let address = state.include_address.then(|| state.address.trim().to_owned()).filter(|a| !a.is_empty());
            want = Some(IdentityAction::NewInvite { address, uses: state.uses });
        }
        if let Some(text) = state.invite.clone() {
            ui.add_space(8.0);
            ui.horizontal_wrapped(|ui| {
                if ui.button("Copy invite").clicked() {
                    ui.ctx().copy_text(text.clone());
                }
                ui.label(RichText::new(format!("{}…", &text[..text.len().min(48)])).monospace().weak());
            });
            if state.qr.as_ref().is_none_or(|(t, _)| *t != text)
                && let Some(tex) = super::widgets::qr_texture(ui.ctx(), &text)
            {
                state.qr = Some((text.clone(), tex));
            }
            if let Some((_, tex)) = &state.qr {
                ui.add_space(8.0);
                ui.add(egui::Image::new(tex).fit_to_exact_size(egui::vec2(260.0, 260.0)));
            }
        }
        open_invites(ui, snap, &mut want);
    });
    want
}

/// Invites still open, each with a button that withdraws it.
fn open_invites(ui: &mut egui::Ui, snap: &Snapshot, want: &mut Option<IdentityAction>) {
    if snap.invites.is_empty() {
        return;
    }
    ui.add_space(12.0);
    ui.label(RichText::new("Open invites").strong());
    for (id, uses, expires) in &snap.invites {
        ui.horizontal(|ui| {
            ui.label(RichText::new(id).monospace());
            let days = expires.saturating_sub(libra_engine::clock::wall_ms()) / 86_400_000;
            ui.label(format!(
                "{uses} use{} left, expires in {} day{}",
                if *uses == 1 { "" } else { "s" },
                days,
                if days == 1 { "" } else { "s" }
            ));
            if ui.small_button("Revoke").on_hover_text("Nobody can introduce themselves with it any more").clicked() {
                *want = Some(IdentityAction::Revoke(id.clone()));
            }
        });
    }
}

fn id_row(ui: &mut egui::Ui, label: &str, short: &str, full: &str) {
    ui.horizontal(|ui| {
        ui.label(RichText::new(label).strong());
        ui.label(RichText::new(short).monospace());
        if ui.small_button("Copy").on_hover_text(full).clicked() {
            ui.ctx().copy_text(full.to_owned());
        }
    });
    ui.label(RichText::new(full).monospace().small().weak());
    ui.add_space(6.0);
}
