//! Libra's icon, drawn in code: a white balance on a teal rounded square. One source for the
//! window and taskbar icon and for the PNG the packages install (`libra-app --write-icon`).

/// The icon as straight RGBA, `size`×`size`, antialiased by 4×4 supersampling.
pub fn rgba(size: u32) -> Vec<u8> {
    const BACKGROUND: [f32; 3] = [31.0, 111.0, 120.0];
    const SAMPLES: u32 = 4;
    let n = SAMPLES * SAMPLES;
    let mut out = Vec::with_capacity((size * size * 4) as usize);
    for py in 0..size {
        for px in 0..size {
            let (mut inside, mut white) = (0u32, 0u32);
            for sy in 0..SAMPLES {
                for sx in 0..SAMPLES {
                    let x = (px as f32 + (sx as f32 + 0.5) / SAMPLES as f32) / size as f32;
                    let y = (py as f32 + (sy as f32 + 0.5) / SAMPLES as f32) / size as f32;
                    if rounded_square(x, y) {
                        inside += 1;
                        white += u32::from(balance(x, y));
                    }
                }
            }
            if inside == 0 {
                out.extend_from_slice(&[0, 0, 0, 0]);
                continue;
            }
            // Colour over the covered part only; coverage becomes alpha.
            let w = white as f32 / inside as f32;
            for c in BACKGROUND {
                out.push((c + (255.0 - c) * w).round() as u8);
            }
            out.push((255 * inside / n) as u8);
        }
    }
    out
}

fn rounded_square(x: f32, y: f32) -> bool {
    let r = 0.2;
    let (cx, cy) = (x.clamp(r, 1.0 - r), y.clamp(r, 1.0 - r));
    (x - cx).powi(2) + (y - cy).powi(2) <= r * r
}

fn rect(x: f32, y: f32, x0: f32, x1: f32, y0: f32, y1: f32) -> bool {
    (x0..=x1).contains(&x) && (y0..=y1).contains(&y)
}

/// Within `w` of the segment from `a` to `b`.
fn line(x: f32, y: f32, a: (f32, f32), b: (f32, f32), w: f32) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let t = (((x - a.0) * dx + (y - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    (x - a.0 - t * dx).powi(2) + (y - a.1 - t * dy).powi(2) <= w * w
}

/// The lower half of a disc: a pan.
fn pan(x: f32, y: f32, cx: f32, cy: f32, r: f32) -> bool {
    y >= cy && (x - cx).powi(2) + (y - cy).powi(2) <= r * r
}

fn balance(x: f32, y: f32) -> bool {
    let post = rect(x, y, 0.475, 0.525, 0.26, 0.78);
    let foot = rect(x, y, 0.33, 0.67, 0.76, 0.81);
    let beam = rect(x, y, 0.17, 0.83, 0.285, 0.325);
    let knob = (x - 0.5).powi(2) + (y - 0.25).powi(2) <= 0.045f32.powi(2);
    let strings = [(0.22, 0.12), (0.22, 0.32), (0.78, 0.68), (0.78, 0.88)]
        .iter()
        .any(|&(top, bottom)| line(x, y, (top, 0.31), (bottom, 0.56), 0.011));
    post || foot || beam || knob || strings || pan(x, y, 0.22, 0.56, 0.12) || pan(x, y, 0.78, 0.56, 0.12)
}

/// The icon as a PNG file's bytes.
pub fn png(size: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, size, size);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&rgba(size))?;
    }
    Ok(bytes)
}

/// The icon as a Windows `.ico` file (one 256×256 image stored as PNG, which Windows Vista and
/// later read): what the build embeds in `libra-app.exe` (`app/assets/libra.ico`, build.rs).
pub fn ico() -> Result<Vec<u8>, png::EncodingError> {
    let png = png(256)?;
    let len = u32::try_from(png.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(22 + png.len());
    // ICONDIR: reserved, type 1 (icon), one image.
    out.extend_from_slice(&[0, 0, 1, 0, 1, 0]);
    // ICONDIRENTRY: 0 means 256 for width and height; no palette; 1 plane, 32 bits; size; offset.
    out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 32, 0]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&22u32.to_le_bytes());
    out.extend_from_slice(&png);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_has_a_transparent_corner_a_teal_field_and_a_white_post() {
        let size = 64;
        let px = rgba(size);
        let at = |x: u32, y: u32| &px[((y * size + x) * 4) as usize..][..4];
        assert_eq!(px.len(), (size * size * 4) as usize);
        assert_eq!(at(0, 0)[3], 0, "the corner is cut");
        assert_eq!(at(6, 32), &[31, 111, 120, 255], "the field");
        assert_eq!(at(32, 40), &[255, 255, 255, 255], "the post");
        let decoded = png::Decoder::new(std::io::Cursor::new(png(size).expect("png"))).read_info().expect("decodes");
        assert_eq!((decoded.info().width, decoded.info().height), (size, size));
    }

    /// The .ico the Windows build embeds is the icon drawn here (regenerate it with
    /// `libra-app --write-icon app/assets/libra.ico` after changing the drawing).
    #[test]
    fn the_committed_ico_is_the_drawn_icon() {
        let committed =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/libra.ico")).expect("assets/libra.ico");
        assert_eq!(committed, ico().expect("ico"));
        assert_eq!(&committed[..6], &[0, 0, 1, 0, 1, 0]);
    }
}
