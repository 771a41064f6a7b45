//! Your devices: the trust chain (which devices speak for you, which are revoked), a one-time
//! code and QR that links a new device, and revoking a lost one (spec/devices.md).

use eframe::egui::{self, Color32, RichText};

use crate::model::Snapshot;

#[derive(Default)]
pub struct DevicesState {
    /// The link code shown, if any.
    pub code: Option<String>,
    pub qr: Option<(String, egui::TextureHandle)>,
    /// The device whose revocation awaits confirmation.
    pub confirm: Option<libra_engine::identity::DeviceId>,
    /// The recovery phrase, while shown.
    pub phrase: Option<String>,
    /// The recovery phrase typed to revoke from a device without the user key.
    pub revoke_phrase: String,
}

pub enum DevicesAction {
    Link,
    ShowPhrase,
    Backup,
    /// Revoke a device; with the recovery phrase on a device that lacks the user key.
    Revoke(libra_engine::identity::DeviceId, Option<String>),
}

pub fn ui(ui: &mut egui::Ui, snap: &Snapshot, state: &mut DevicesState) -> Option<DevicesAction> {
    let mut want = None;
    ui.label(RichText::new("Your devices").size(18.0).strong());
    ui.label(
        RichText::new(
            "Each device has its own key and log; your contacts see the whole list. A revoked device gets nothing new.",
        )
        .weak(),
    );
    egui::Grid::new("devices").num_columns(4).spacing([16.0, 6.0]).striped(true).show(ui, |ui| {
        for d in &snap.devices {
            ui.label(RichText::new(libra_engine::text::for_terminal(&d.name)).strong());
            ui.label(RichText::new(d.device.short()).monospace());
            // Provenance, from the logs (spec/devices.md, section 6): who added and who revoked.
            let name_of = |id: Option<&libra_engine::identity::DeviceId>| match id {
                None => "your user key".to_owned(),
                Some(id) => snap.devices.iter().find(|x| x.device == *id).map_or(id.short(), |x| x.name.clone()),
            };
            let added_by: Vec<String> = d.added_by.iter().map(|a| name_of(a.as_ref())).collect();
            let added = ui.label(format!("added {}", super::day_label(d.added_ms)));
            if !added_by.is_empty() {
                added.on_hover_text(format!("added by {}", added_by.join(", ")));
            }
            if d.revoked {
                let by: Vec<String> = d.revoked_by.iter().map(|r| name_of(Some(r))).collect();
                let when = d.revoked_ms.map(super::day_label).unwrap_or_default();
                ui.label(RichText::new("revoked").color(Color32::from_rgb(200, 60, 60)))
                    .on_hover_text(format!("revoked by {} {when}", by.join(", ")));
            } else if d.this_device {
                ui.label(RichText::new("this device").color(Color32::from_rgb(60, 140, 80)));
            } else {
                if state.confirm == Some(d.device) {
                    ui.horizontal(|ui| {
                        // Without the user key here, the recovery phrase signs the revocation.
                        if !snap.holds_user_key {
                            ui.add(
                                egui::TextEdit::singleline(&mut state.revoke_phrase)
                                    .hint_text("recovery phrase")
                                    .password(true)
                                    .desired_width(220.0),
                            );
                        }
                        let ready = snap.holds_user_key || !state.revoke_phrase.trim().is_empty();
                        let revoke =
                            egui::Button::new(RichText::new("Revoke for good").color(Color32::from_rgb(200, 60, 60)));
                        if ui.add_enabled(ready, revoke).clicked() {
                            let phrase = (!snap.holds_user_key).then(|| std::mem::take(&mut state.revoke_phrase));
                            want = Some(DevicesAction::Revoke(d.device, phrase));
                            state.confirm = None;
                        }
                        if ui.button("Cancel").clicked() {
                            state.confirm = None;
                            state.revoke_phrase.clear();
                        }
                    });
                } else if ui.button("Revoke…").on_hover_text("Lost or stolen: it can no longer read or write").clicked()
                {
                    state.confirm = Some(d.device);
                }
            }
            ui.end_row();
        }
    });
    ui.add_space(8.0);
    if !snap.holds_user_key {
        ui.label(
            RichText::new("Link new devices on the device that created your identity; revoking a lost one here needs your recovery phrase.")
                .weak(),
        );
        return want;
    }
    ui.horizontal(|ui| {
        if ui.button("Link a new device").clicked() {
            want = Some(DevicesAction::Link);
        }
        if ui
            .button("Back up…")
            .on_hover_text("An encrypted copy of your history in Documents; only your recovery phrase opens it")
            .clicked()
        {
            want = Some(DevicesAction::Backup);
        }
        let label = if state.phrase.is_some() { "Hide recovery phrase" } else { "Show recovery phrase" };
        if ui.button(label).clicked() && state.phrase.take().is_none() {
            want = Some(DevicesAction::ShowPhrase);
        }
    });
    if let Some(p) = &state.phrase {
        ui.label(RichText::new(p).monospace().size(15.0));
        ui.label(
            RichText::new("Write it on paper and keep it offline. It restores your identity on a new device and can revoke a lost one; whoever has it owns your identity.")
                .color(Color32::from_rgb(190, 120, 30)),
        );
    }
    if let Some(code) = state.code.clone() {
        ui.label("On the new device, scan this code in its app or run:");
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(format!("libra init --link {}…", &code[..code.len().min(40)])).monospace().weak());
            if ui.small_button("Copy code").clicked() {
                ui.ctx().copy_text(code.clone());
            }
        });
        ui.label(
            RichText::new("It works once, for 10 minutes, while this app runs. Whoever sees it can join your identity: show it to your own device only.")
                .color(Color32::from_rgb(190, 120, 30)),
        );
        let upper = code.to_ascii_uppercase();
        if state.qr.as_ref().is_none_or(|(t, _)| *t != upper)
            && let Some(tex) = super::widgets::qr_texture(ui.ctx(), &upper)
        {
            state.qr = Some((upper, tex));
        }
        if let Some((_, tex)) = &state.qr {
            ui.add(egui::Image::new(tex).fit_to_exact_size(egui::vec2(240.0, 240.0)));
        }
    }
    want
}
