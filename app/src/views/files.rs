//! Files in a chat: the card a file message shows (name, size, state, progress with rate and
//! time left, Download / Save / Open), and the composer's attach row.

use std::path::PathBuf;

use eframe::egui::{self, Color32, RichText};

use super::chats::ChatAction;
use crate::model::{FileState, FileView};

/// A size for people.
pub fn size(n: u64) -> String {
    libra_engine::control::render::bytes(n)
}

/// The card of a message's file, inside its bubble.
pub fn card(
    ui: &mut egui::Ui,
    f: &FileView,
    thumb: Option<egui::TextureHandle>,
    text_color: Color32,
    actions: &mut Vec<ChatAction>,
) {
    if let Some(t) = thumb {
        // A picture: the thumbnail opens it.
        let size = t.size_vec2();
        let scale = (240.0 / size.x.max(size.y)).min(1.0);
        let img = egui::Image::new(&t).fit_to_exact_size(size * scale).corner_radius(6.0).sense(egui::Sense::click());
        if ui.add(img).on_hover_text("Open").clicked() {
            actions.push(ChatAction::SaveFile { file: f.file.clone(), open: true });
        }
    }
    let icon = if f.file.media_type.starts_with("image/") {
        "🖼"
    } else if f.file.media_type.starts_with("video/") {
        "🎞"
    } else if f.file.media_type.starts_with("audio/") {
        "🎵"
    } else {
        "📄"
    };
    egui::Frame::new().fill(Color32::from_black_alpha(35)).corner_radius(8.0).inner_margin(6).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(RichText::new(icon).size(22.0));
            ui.vertical(|ui| {
                // The name is the sender's choice: shown escaped, never as a path.
                let name = libra_engine::text::for_terminal(&f.file.name);
                ui.label(RichText::new(name).strong().color(text_color));
                let status = match f.state {
                    FileState::Complete => size(f.file.size),
                    FileState::Downloading { share, rate, eta } => format!(
                        "{} of {} · {}/s{}",
                        size((share * f.file.size as f64) as u64),
                        size(f.file.size),
                        size(rate as u64),
                        eta.map(|s| format!(" · {} left", super::duration(s))).unwrap_or_default()
                    ),
                    FileState::Waiting { share } => {
                        format!("{:.0} % of {} · waiting for a peer that has it", share * 100.0, size(f.file.size))
                    }
                    FileState::Missing => format!("{} · not downloaded", size(f.file.size)),
                };
                ui.label(RichText::new(status).small().color(text_color.gamma_multiply(0.8)));
                if let FileState::Downloading { share, .. } | FileState::Waiting { share } = f.state {
                    ui.add(egui::ProgressBar::new(share as f32).desired_width(200.0).desired_height(6.0));
                }
                ui.horizontal(|ui| match f.state {
                    FileState::Complete => {
                        if ui.small_button("Save").on_hover_text("Save a copy in your Downloads folder").clicked() {
                            actions.push(ChatAction::SaveFile { file: f.file.clone(), open: false });
                        }
                        if ui.small_button("Open").on_hover_text("Save to Downloads and open it").clicked() {
                            actions.push(ChatAction::SaveFile { file: f.file.clone(), open: true });
                        }
                    }
                    FileState::Missing if ui.small_button("Download").clicked() => {
                        actions.push(ChatAction::WantFile(f.file.clone()));
                    }
                    _ => {}
                });
            });
        });
    });
}

/// The attach row under the composer: a path to send (files can also be dropped on the
/// window).
pub fn attach_row(ui: &mut egui::Ui, path: &mut String, key: &str, actions: &mut Vec<ChatAction>) -> bool {
    let mut done = false;
    ui.horizontal(|ui| {
        ui.label("📎");
        ui.add(
            egui::TextEdit::singleline(path)
                .hint_text("path of a file to send (or drop files on the window)")
                .desired_width(ui.available_width() - 140.0),
        );
        let p = PathBuf::from(path.trim());
        let ok = p.is_file();
        if ui.add_enabled(ok, egui::Button::new("Send file")).clicked() {
            actions.push(ChatAction::SendFile { key: key.to_owned(), path: p });
            path.clear();
            done = true;
        }
        if ui.small_button("✕").on_hover_text("Close").clicked() {
            path.clear();
            done = true;
        }
    });
    done
}
