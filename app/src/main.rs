//! `libra-app`: the desktop client. `--data DIR` (or LIBRA_DATA) picks the data directory;
//! the default is the platform's per-user data directory, shared with the `libra` CLI.

// No console window on Windows (the CLI, `libra`, stays a console program).
#![cfg_attr(windows, windows_subsystem = "windows")]

// glibc's malloc spent a quarter of the engine's writer thread consolidating freed memtable nodes
// at 300k messages; jemalloc does not (ARCHITECTURE.md, "Choices worth knowing").
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use eframe::egui;
use libra_app::LibraApp;

/// Libra: serverless, end-to-end encrypted messaging (the desktop app).
#[derive(Parser, Debug)]
#[command(name = "libra-app", version)]
struct Args {
    /// Data directory (default: the per-user data directory shared with the `libra` CLI).
    #[arg(long, env = "LIBRA_DATA")]
    data: Option<PathBuf>,
    /// Address to accept connections on (UDP), overriding the setting, e.g. 0.0.0.0:7444.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The view to open first: chats, connect, identity or settings.
    #[arg(long, value_parser = ["chats", "connect", "identity", "settings"])]
    tab: Option<String>,
    /// A chat to open first: a contact's name or short id (lu:…), or a group.
    #[arg(long)]
    open: Option<String>,
    /// Write the app's icon as a 256×256 PNG (or, for a FILE ending in .ico, a Windows icon)
    /// to FILE and exit (for packaging).
    #[arg(long, value_name = "FILE", hide = true)]
    write_icon: Option<PathBuf>,
    /// Print the milliseconds from start to the first presented frame that shows the opened
    /// chat's messages, then close (the start-up benchmark in a real window).
    #[arg(long, hide = true)]
    startup_probe: bool,
    /// With --startup-probe: stay open this long after the start before closing (so that the
    /// start-up acknowledgements are written, as in a real session).
    #[arg(long, hide = true, default_value_t = 0, value_name = "MS")]
    startup_probe_stay: u64,
}

/// The app, timed: once a frame has shown the opened chat's messages, the next frame (so that
/// one was presented) prints the time since `start` and closes the window.
struct Probe {
    app: LibraApp,
    start: std::time::Instant,
    stay: std::time::Duration,
    /// Since `start`: when the window and renderer were ready, and when the app had opened its
    /// store and built its first snapshot (ms).
    phases: (f64, f64),
    /// Frames drawn before the chat showed, and when the first of them began (ms).
    frames: u32,
    first_frame: f64,
    shown: bool,
    printed: bool,
}

impl eframe::App for Probe {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if self.frames == 0 {
            self.first_frame = self.start.elapsed().as_secs_f64() * 1e3;
        }
        if !self.printed {
            self.frames += 1;
        }
        if self.shown && !self.printed {
            let (window, app, first, frames) = (self.phases.0, self.phases.1, self.first_frame, self.frames);
            println!("phases-ms window {window:.1} app {app:.1} first-frame {first:.1} frames {frames}");
            println!("first-chat-frame-ms {:.1}", self.start.elapsed().as_secs_f64() * 1e3);
            self.printed = true;
        }
        if self.printed && self.start.elapsed() >= self.stay {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
        self.app.ui(ui, frame);
        self.shown = self.app.snap.open.as_ref().is_some_and(|o| !o.messages.is_empty());
        ui.ctx().request_repaint_after(std::time::Duration::from_millis(if self.printed { 50 } else { 0 }));
    }
}

fn data_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d);
    }
    directories::ProjectDirs::from("org", "Libra", "libra")
        .map(|p| p.data_dir().to_path_buf())
        .ok_or_else(|| anyhow::anyhow!("no home directory found; pass --data DIR"))
}

/// A Windows-subsystem program has no console of its own: started from a terminal, it writes
/// there, so `--help`, `--version` and errors are seen.
#[cfg(windows)]
#[allow(unsafe_code)]
fn attach_parent_console() {
    use windows_sys::Win32::System::Console::{ATTACH_PARENT_PROCESS, AttachConsole};
    // SAFETY: a constant argument; without a parent console the call fails and changes nothing.
    unsafe {
        AttachConsole(ATTACH_PARENT_PROCESS);
    }
}

fn main() -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    #[cfg(windows)]
    attach_parent_console();
    // An invalid argument (an unparsable --listen among them) is an error with usage, not ignored.
    let args = Args::parse();
    if let Some(path) = &args.write_icon {
        let bytes = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ico")) {
            libra_app::icon::ico()?
        } else {
            libra_app::icon::png(256)?
        };
        std::fs::write(path, bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        return Ok(());
    }
    let dir = data_dir(args.data)?;
    let icon = egui::IconData { rgba: libra_app::icon::rgba(64), width: 64, height: 64 };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1000.0, 680.0])
            .with_min_inner_size([640.0, 420.0])
            .with_title("Libra")
            .with_app_id("libra")
            .with_icon(std::sync::Arc::new(icon)),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    let (listen, tab, open, probe) = (args.listen, args.tab, args.open, args.startup_probe);
    let stay = std::time::Duration::from_millis(args.startup_probe_stay);
    eframe::run_native(
        "Libra",
        options,
        Box::new(move |_cc| {
            let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1e3;
            let window = ms(start);
            let mut app = LibraApp::new(dir, listen);
            app.show(tab.as_deref(), open.as_deref());
            if probe {
                let phases = (window, ms(start));
                return Ok(Box::new(Probe {
                    app,
                    start,
                    stay,
                    phases,
                    frames: 0,
                    first_frame: 0.0,
                    shown: false,
                    printed: false,
                }));
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the window could not be opened: {e}"))
}
