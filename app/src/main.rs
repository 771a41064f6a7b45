//! `libra-app`: the desktop client. `--data DIR` (or LIBRA_DATA) picks the data directory;
//! the default is the platform's per-user data directory, shared with the `libra` CLI.

use std::path::PathBuf;

use eframe::egui;
use libra_app::LibraApp;

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn data_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = arg("--data").or_else(|| std::env::var("LIBRA_DATA").ok()) {
        return Ok(PathBuf::from(d));
    }
    directories::ProjectDirs::from("org", "Libra", "libra")
        .map(|p| p.data_dir().to_path_buf())
        .ok_or_else(|| anyhow::anyhow!("no home directory found; pass --data DIR"))
}

fn main() -> anyhow::Result<()> {
    let dir = data_dir()?;
    let listen = arg("--listen").and_then(|a| a.parse().ok());
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1000.0, 680.0])
            .with_min_inner_size([640.0, 420.0])
            .with_title("Libra"),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    eframe::run_native("Libra", options, Box::new(move |_cc| Ok(Box::new(LibraApp::new(dir, listen)))))
        .map_err(|e| anyhow::anyhow!("the window could not be opened: {e}"))
}
