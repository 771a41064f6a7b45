//! Who the other person of a direct chat is: verified or not, the safety number to compare in
//! person, and a warning for a contact that introduced itself with one of our invites.

use eframe::egui::{self, Color32, RichText};

use super::chats::{ChatAction, ChatsState};
use crate::model::ContactInfo;

const WARN: Color32 = Color32::from_rgb(0xd0, 0x8a, 0x10);
const OK: Color32 = Color32::from_rgb(0x2e, 0x9e, 0x5b);

/// The trust line under a direct chat's title, and the verification panel when open.
pub fn header(ui: &mut egui::Ui, c: &ContactInfo, state: &mut ChatsState, actions: &mut Vec<ChatAction>) {
    if c.introduced {
        egui::Frame::new().fill(WARN.gamma_multiply(0.18)).corner_radius(6.0).inner_margin(6).show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new("New contact").strong().color(WARN));
                ui.label(format!(
                    "{} added itself with one of your invites: anyone you gave that invite to could be behind this name.",
                    c.short
                ));
                if ui.button("Accept").clicked() {
                    actions.push(ChatAction::Accept { user: c.user });
                }
            });
        });
    }
    ui.horizontal_wrapped(|ui| {
        if c.verified {
            ui.label(RichText::new("✔ Verified").color(OK).small());
        } else {
            let note = if c.collides { "Not verified — another contact has this name" } else { "Not verified" };
            ui.label(RichText::new(note).color(WARN).small());
        }
        ui.label(RichText::new(&c.short).small().weak().monospace());
        let label = if state.verifying { "Hide safety number" } else { "Safety number…" };
        if ui.small_button(label).clicked() {
            state.verifying = !state.verifying;
        }
    });
    if state.verifying {
        ui.add_space(4.0);
        ui.label(RichText::new("Compare this number with theirs, in person or on a call you trust:").small());
        let groups: Vec<&str> = c.safety_number.split(' ').collect();
        for row in groups.chunks(4) {
            ui.label(RichText::new(row.join("  ")).monospace().size(15.0));
        }
        ui.horizontal(|ui| {
            if c.verified {
                if ui.button("Mark as not verified").clicked() {
                    actions.push(ChatAction::Verify { user: c.user, verified: false });
                    state.verifying = false;
                }
            } else if ui.button("The numbers match: mark verified").clicked() {
                actions.push(ChatAction::Verify { user: c.user, verified: true });
                state.verifying = false;
            }
        });
        ui.add_space(4.0);
    }
}
