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
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
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
