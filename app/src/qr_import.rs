//! Reading an invite from a QR code image (PNG): decode, convert to grey, find the code.

use std::path::Path;

/// Largest image accepted, in pixels (a photo of a screen is well below).
const MAX_PIXELS: u64 = 40_000_000;

pub fn invite_from_png(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| format!("not a PNG image: {e}"))?;
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    if (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(format!("image of {w}×{h} pixels is too large"));
    }
    let size = reader.output_buffer_size().ok_or("image too large")?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| format!("cannot read the image: {e}"))?;
    let channels = info.color_type.samples();
    let grey = |x: usize, y: usize| -> u8 {
        let i = (y * info.line_size) + x * channels;
        match channels {
            1 | 2 => buf[i],
            _ => ((u16::from(buf[i]) * 3 + u16::from(buf[i + 1]) * 6 + u16::from(buf[i + 2])) / 10) as u8,
        }
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, grey);
    for grid in img.detect_grids() {
        if let Ok((_, text)) = grid.decode()
            && text.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("libra:"))
        {
            return Ok(text);
        }
    }
    Err("no Libra invite QR code found in the image".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_a_generated_code() {
        let text = "libra:mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpjqwe";
        let code = qrcode::QrCode::new(text.as_bytes()).expect("qr");
        let (w, scale, quiet) = (code.width(), 6, 4);
        let size = (w + 2 * quiet) * scale;
        let mut pixels = vec![255u8; size * size];
        for (i, c) in code.to_colors().iter().enumerate() {
            if *c == qrcode::Color::Dark {
                let (x, y) = ((i % w + quiet) * scale, (i / w + quiet) * scale);
                for dy in 0..scale {
                    for dx in 0..scale {
                        pixels[(y + dy) * size + x + dx] = 0;
                    }
                }
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("invite.png");
        let file = std::fs::File::create(&path).expect("create");
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), size as u32, size as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.write_header().expect("header").write_image_data(&pixels).expect("write");
        assert_eq!(invite_from_png(&path).as_deref(), Ok(text));
        std::fs::write(&path, b"not a png").expect("write");
        assert!(invite_from_png(&path).is_err());
    }
}
