//! Start-up with a store of N messages (default 100,000) to the first rendered chat, against
//! the 300 ms target: open the node, start the engine, build the first snapshot with that chat
//! open, and render a frame of the real app (egui_kittest, no GPU).
//!
//!     cargo bench -p libra-app --bench startup -- [--messages N]

mod common;

use std::time::Instant;

use eframe::egui;
use libra_app::LibraApp;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let n = arg("--messages", 100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let da = common::ann_with_messages(dir.path(), n);
    println!("seeded {n} messages in {:.1?}", t.elapsed());

    let t = Instant::now();
    let mut harness = egui_kittest::Harness::builder()
        .with_size(egui::vec2(1000.0, 680.0))
        .with_accessibility_check(false)
        .build_eframe(|_cc| {
            let mut app = LibraApp::new(da.clone(), Some("127.0.0.1:0".parse().expect("addr")));
            app.show(None, Some("Ben"));
            app
        });
    let opened = t.elapsed();
    let mut frames = 0;
    loop {
        harness.step();
        frames += 1;
        if harness.state().snap.open.as_ref().is_some_and(|o| !o.messages.is_empty()) {
            harness.step();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(t.elapsed().as_secs() < 60, "no chat rendered");
    }
    let first = t.elapsed();
    let snap_us = harness.state().snap.built_us;
    println!(
        "startup with {n} messages: first rendered chat after {:.1} ms (target ≤ 300 ms) {}; node open + engine start {:.1} ms, first snapshot built in {:.1} ms, {frames} frames",
        first.as_secs_f64() * 1e3,
        if first.as_millis() <= 300 { "PASS" } else { "FAIL" },
        opened.as_secs_f64() * 1e3,
        snap_us as f64 / 1e3
    );
}
