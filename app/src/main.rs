//! Libra's desktop client. For now: first-run onboarding and the identity view; chats, peers and
//! the connection view arrive with messaging and sync.

use std::path::PathBuf;

use eframe::egui;
use libra_engine::node::Node;

fn data_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::args().skip_while(|a| a != "--data").nth(1) {
        return Ok(PathBuf::from(d));
    }
    if let Ok(d) = std::env::var("LIBRA_DATA") {
        return Ok(PathBuf::from(d));
    }
    directories::ProjectDirs::from("org", "Libra", "libra")
        .map(|p| p.data_dir().to_path_buf())
        .ok_or_else(|| anyhow::anyhow!("no home directory found; pass --data DIR"))
}

enum Screen {
    Onboarding { name: String, error: Option<String> },
    Home(Box<Node>),
    Failed(String),
}

struct LibraApp {
    dir: PathBuf,
    screen: Screen,
}

impl LibraApp {
    fn new(dir: PathBuf) -> Self {
        let screen = if libra_engine::keyfile::exists(&dir) {
            match Node::open(&dir) {
                Ok(node) => Screen::Home(Box::new(node)),
                Err(e) => Screen::Failed(e.to_string()),
            }
        } else {
            Screen::Onboarding { name: String::new(), error: None }
        };
        LibraApp { dir, screen }
    }
}

fn id_row(ui: &mut egui::Ui, label: &str, full: &str, short: &str) {
    ui.label(egui::RichText::new(label).strong());
    ui.horizontal(|ui| {
        ui.monospace(short);
        if ui.button("Copy").on_hover_text(full).clicked() {
            ui.ctx().copy_text(full.to_owned());
        }
    });
    ui.label(egui::RichText::new(full).monospace().small().weak());
    ui.add_space(8.0);
}

impl eframe::App for LibraApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let mut next = None;
        egui::CentralPanel::default().show(ui, |ui| {
            ui.add_space(24.0);
            ui.vertical_centered(|ui| ui.heading(egui::RichText::new("Libra").size(32.0)));
            ui.add_space(16.0);
            match &mut self.screen {
                Screen::Onboarding { name, error } => {
                    ui.vertical_centered(|ui| {
                        ui.label("Welcome. Choose the name your contacts will see.");
                        ui.label(
                            egui::RichText::new("Your keys are created on this computer and never leave it.").weak(),
                        );
                        ui.add_space(12.0);
                        let edit = ui.add(egui::TextEdit::singleline(name).hint_text("Your name").desired_width(260.0));
                        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                        ui.add_space(8.0);
                        let create = ui.add_enabled(!name.trim().is_empty(), egui::Button::new("Create identity"));
                        if (create.clicked() || enter) && !name.trim().is_empty() {
                            match Node::init(&self.dir, name.trim()) {
                                Ok(node) => next = Some(Screen::Home(Box::new(node))),
                                Err(e) => *error = Some(e.to_string()),
                            }
                        }
                        if let Some(e) = error {
                            ui.colored_label(ui.visuals().error_fg_color, e.as_str());
                        }
                    });
                }
                Screen::Home(node) => {
                    let name = node.name().unwrap_or_else(|| "(no name)".into());
                    ui.vertical_centered(|ui| ui.label(egui::RichText::new(name).size(22.0).strong()));
                    ui.add_space(16.0);
                    if let Some(user) = node.user_id() {
                        id_row(ui, "User id", &user.to_string(), &user.short());
                    }
                    let dev = node.device_id();
                    id_row(ui, "This device", &dev.to_string(), &dev.short());
                    ui.separator();
                    ui.label(format!(
                        "{} logs, {} entries in {}",
                        node.store.heads().count(),
                        node.store.entry_count(),
                        node.dir.display()
                    ));
                }
                Screen::Failed(e) => {
                    ui.colored_label(ui.visuals().error_fg_color, format!("Libra could not open its data: {e}"));
                }
            }
        });
        if let Some(s) = next {
            self.screen = s;
        }
    }
}

fn main() -> anyhow::Result<()> {
    let dir = data_dir()?;
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([720.0, 520.0]).with_title("Libra"),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    eframe::run_native("Libra", options, Box::new(move |_cc| Ok(Box::new(LibraApp::new(dir)))))
        .map_err(|e| anyhow::anyhow!("the window could not be opened: {e}"))
}
