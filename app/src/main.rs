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
    // --tab and --open pick the first view (used by tools/screenshot.sh).
    let tab = arg("--tab");
    let open = arg("--open");
    eframe::run_native(
        "Libra",
        options,
        Box::new(move |_cc| {
            let mut app = LibraApp::new(dir, listen);
            app.show(tab.as_deref(), open.as_deref());
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the window could not be opened: {e}"))
}
