//! First run: choose a name and create the identity, join one from another device with the
//! link code it shows, or restore it from the recovery phrase (and a backup) after losing
//! every device.

use eframe::egui::{self, RichText};

#[derive(Default)]
pub struct Onboarding {
    pub name: String,
    pub error: Option<String>,
    /// The link code being typed or pasted.
    pub code: String,
    /// A link under way.
    pub linking: bool,
    /// The recovery phrase being typed, and the backup file to restore, if any.
    pub phrase: String,
    pub backup: String,
    /// A restore under way, and whether its form is open.
    pub restoring: bool,
    pub show_restore: bool,
}

pub enum Choice {
    Create(String),
    Link(String),
    /// The phrase, and the path of a backup file (may be empty).
    Restore(String, String),
}

/// Draws the onboarding form; returns what the user chose.
pub fn ui(ui: &mut egui::Ui, state: &mut Onboarding) -> Option<Choice> {
    let mut chosen = None;
    ui.vertical_centered(|ui| {
        ui.add_space(ui.available_height() * 0.18);
        ui.label(RichText::new("Libra").size(40.0).strong());
        ui.add_space(6.0);
        ui.label(RichText::new("Private messages, no servers.").size(16.0).weak());
        ui.add_space(28.0);
        ui.label("Choose the name your contacts will see.");
        ui.add_space(8.0);
        let edit = ui.add(
            egui::TextEdit::singleline(&mut state.name).hint_text("Your name").desired_width(280.0).char_limit(64),
        );
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.add_space(12.0);
        let ready = !state.name.trim().is_empty();
        let create = ui.add_enabled(ready, egui::Button::new(RichText::new("Create identity").size(15.0)).min_size(egui::vec2(160.0, 32.0)));
        if ready && (create.clicked() || enter) {
            chosen = Some(Choice::Create(state.name.trim().to_owned()));
        }
        ui.add_space(22.0);
        ui.label("Already use Libra on another device? On it, open Identity → Link a new device, and paste its code here:");
        ui.add_space(6.0);
        ui.add(egui::TextEdit::singleline(&mut state.code).hint_text("libra-link:…").desired_width(380.0));
        let can = !state.code.trim().is_empty() && !state.linking;
        if ui.add_enabled(can, egui::Button::new(if state.linking { "Linking…" } else { "Link this device" })).clicked() {
            chosen = Some(Choice::Link(state.code.trim().to_owned()));
        }
        ui.add_space(12.0);
        let toggle = if state.show_restore { "Hide restoring" } else { "Lost every device? Restore from your recovery phrase…" };
        if ui.link(toggle).clicked() {
            state.show_restore = !state.show_restore;
        }
        if state.show_restore {
            ui.label("This makes a new device of your identity (never a copy of the old one). With a backup file, your contacts and history come back too.");
            ui.add(
                egui::TextEdit::multiline(&mut state.phrase)
                    .hint_text("your recovery phrase: xxxx-xxxx-…")
                    .desired_rows(2)
                    .desired_width(380.0),
            );
            ui.add(
                egui::TextEdit::singleline(&mut state.backup)
                    .hint_text("backup file (optional), e.g. ~/Documents/libra-backup.bin")
                    .desired_width(380.0),
            );
            let can = !state.phrase.trim().is_empty() && !state.restoring;
            if ui.add_enabled(can, egui::Button::new(if state.restoring { "Restoring…" } else { "Restore" })).clicked() {
                chosen = Some(Choice::Restore(state.phrase.trim().to_owned(), state.backup.trim().to_owned()));
            }
        }
        ui.add_space(18.0);
        ui.label(
            RichText::new("Your keys are made on this computer and never leave it. Everything you write is stored here, encrypted for the people you write to.")
                .small()
                .weak(),
        );
        if let Some(e) = &state.error {
            ui.add_space(8.0);
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
    });
    chosen
}
