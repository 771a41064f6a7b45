//! Small shared widgets: avatars, the QR code texture, the unread badge.

use eframe::egui::{self, Color32, RichText, Vec2};

/// A stable colour per name.
pub fn color_for(name: &str) -> Color32 {
    let h = name.bytes().fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    let palette = [
        Color32::from_rgb(0x5b, 0x8d, 0xef),
        Color32::from_rgb(0x43, 0xa0, 0x47),
        Color32::from_rgb(0xe0, 0x82, 0x3c),
        Color32::from_rgb(0xab, 0x47, 0xbc),
        Color32::from_rgb(0x26, 0xa6, 0x9a),
        Color32::from_rgb(0xd8, 0x4c, 0x5a),
    ];
    palette[(h as usize) % palette.len()]
}

/// A round avatar with the name's initial.
pub fn avatar(ui: &mut egui::Ui, name: &str, size: f32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(size), egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), size / 2.0, color_for(name));
    let initial: String = name.chars().next().map(|c| c.to_uppercase().collect()).unwrap_or_else(|| "?".into());
    ui.painter().text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        initial,
        egui::FontId::proportional(size * 0.45),
        Color32::WHITE,
    );
}

/// The unread count pill.
pub fn badge(ui: &mut egui::Ui, n: usize) {
    if n == 0 {
        return;
    }
    let text = if n > 99 { "99+".to_owned() } else { n.to_string() };
    egui::Frame::new()
        .fill(ui.visuals().selection.bg_fill)
        .corner_radius(9.0)
        .inner_margin(egui::Margin::symmetric(6, 1))
        .show(ui, |ui| ui.label(RichText::new(text).color(Color32::WHITE).small().strong()));
}

/// A QR code of `text` as a texture (nearest-neighbour so it stays sharp).
pub fn qr_texture(ctx: &egui::Context, text: &str) -> Option<egui::TextureHandle> {
    // Invites in upper case: QR's compact alphanumeric mode (parsing takes either case).
    let data = if text.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("libra:")) {
        text.to_ascii_uppercase()
    } else {
        text.to_owned()
    };
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::L).ok()?;
    let width = code.width();
    let quiet = 2;
    let size = width + 2 * quiet;
    let mut pixels = vec![Color32::WHITE; size * size];
    for (i, c) in code.to_colors().iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (x, y) = (i % width + quiet, i / width + quiet);
            pixels[y * size + x] = Color32::BLACK;
        }
    }
    let image = egui::ColorImage::new([size, size], pixels);
    Some(ctx.load_texture("invite-qr", image, egui::TextureOptions::NEAREST))
}

/// Adds system fonts (when present) as fallbacks after egui's own, so symbols and emoji that
/// egui's fonts lack still render. Best effort: missing files are skipped.
pub fn install_fallback_fonts(ctx: &egui::Context) {
    const CANDIDATES: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/noto/NotoSansSymbols2-Regular.ttf",
        "/usr/share/fonts/truetype/noto/NotoEmoji-Regular.ttf",
        "C:\\Windows\\Fonts\\seguisym.ttf",
        "C:\\Windows\\Fonts\\seguiemj.ttf",
        "/System/Library/Fonts/Apple Symbols.ttf",
    ];
    let mut fonts = egui::FontDefinitions::default();
    let mut added = false;
    for (i, path) in CANDIDATES.iter().enumerate() {
        if let Ok(bytes) = std::fs::read(path) {
            let name = format!("fallback-{i}");
            fonts.font_data.insert(name.clone(), std::sync::Arc::new(egui::FontData::from_owned(bytes)));
            for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
                fonts.families.entry(family).or_default().push(name.clone());
            }
            added = true;
        }
    }
    if added {
        ctx.set_fonts(fonts);
    }
}

/// A small online/offline dot.
pub fn status_dot(ui: &mut egui::Ui, online: bool) -> egui::Response {
    let (rect, resp) = ui.allocate_exact_size(Vec2::splat(12.0), egui::Sense::hover());
    let color = if online { Color32::from_rgb(0x4c, 0xc3, 0x5a) } else { Color32::from_gray(110) };
    ui.painter().circle_filled(rect.center(), 4.5, color);
    resp.on_hover_text(if online { "online" } else { "offline" })
}

/// Delivery ticks, drawn: one for sent, two for delivered, two in blue for read.
pub fn ticks(ui: &mut egui::Ui, d: libra_engine::store::Delivery) -> egui::Response {
    use libra_engine::store::Delivery;
    let (rect, resp) = ui.allocate_exact_size(egui::vec2(18.0, 10.0), egui::Sense::hover());
    // Read: bright blue and bolder; delivered: grey; sent: one grey tick.
    let (color, width) = match d {
        Delivery::Read => (Color32::from_rgb(0x4f, 0xc3, 0xff), 2.0),
        _ => (Color32::from_gray(190), 1.3),
    };
    let stroke = egui::Stroke::new(width, color);
    let tick = |dx: f32| {
        let o = rect.left_top() + egui::vec2(dx, 0.0);
        [o + egui::vec2(0.0, 5.0), o + egui::vec2(3.0, 8.5), o + egui::vec2(9.0, 1.0)]
    };
    let first = tick(1.0);
    ui.painter().line_segment([first[0], first[1]], stroke);
    ui.painter().line_segment([first[1], first[2]], stroke);
    if d != Delivery::Sent {
        let second = tick(6.0);
        ui.painter().line_segment([second[1], second[2]], stroke);
    }
    resp.on_hover_text(d.as_str())
}
