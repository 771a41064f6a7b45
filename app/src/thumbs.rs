//! Thumbnails of pictures in chats: a downloaded PNG or JPEG is decrypted and scaled on a
//! thread of its own, then kept as a texture while the app runs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};

use eframe::egui::{self, ColorImage, TextureHandle};
use libra_engine::blob::FileRef;
use libra_engine::store::blobs::{BlobState, Blobs};

/// Larger pictures get no thumbnail (decoding holds the whole picture in memory).
const MAX_SOURCE: u64 = 24 << 20;
/// The longest side of a thumbnail, in pixels.
const SIDE: u32 = 320;

enum Thumb {
    Loading,
    Ready(TextureHandle),
    Failed,
}

type Done = ([u8; 32], Result<ColorImage, String>);

pub struct Thumbs {
    /// The data directory, once the engine runs.
    pub dir: Option<PathBuf>,
    cache: HashMap<[u8; 32], Thumb>,
    tx: Sender<Done>,
    rx: Receiver<Done>,
}

impl Default for Thumbs {
    fn default() -> Thumbs {
        let (tx, rx) = channel();
        Thumbs { dir: None, cache: HashMap::new(), tx, rx }
    }
}

impl Thumbs {
    /// The thumbnail of `f` if it is ready; starts making it if it could be.
    pub fn get(&mut self, ctx: &egui::Context, f: &FileRef) -> Option<TextureHandle> {
        while let Ok((root, made)) = self.rx.try_recv() {
            let t = match made {
                Ok(img) => Thumb::Ready(ctx.load_texture(hex::encode(&root[..8]), img, egui::TextureOptions::LINEAR)),
                Err(e) => {
                    tracing::info!(error = %e, "no thumbnail");
                    Thumb::Failed
                }
            };
            self.cache.insert(root, t);
        }
        match self.cache.get(&f.root.0) {
            Some(Thumb::Ready(t)) => return Some(t.clone()),
            Some(_) => return None,
            None => {}
        }
        let dir = self.dir.clone()?;
        let picture = matches!(f.media_type.as_str(), "image/png" | "image/jpeg");
        if !picture || f.size > MAX_SOURCE || Blobs::new(&dir).state(&f.root.0) != BlobState::Complete {
            return None;
        }
        self.cache.insert(f.root.0, Thumb::Loading);
        let (tx, f, ctx) = (self.tx.clone(), f.clone(), ctx.clone());
        std::thread::spawn(move || {
            let _ = tx.send((f.root.0, make(&Blobs::new(&dir), &f)));
            ctx.request_repaint();
        });
        None
    }
}

fn make(blobs: &Blobs, f: &FileRef) -> Result<ColorImage, String> {
    let mut bytes = Vec::with_capacity(f.size as usize);
    blobs.read_into(f, &mut bytes).map_err(|e| e.to_string())?;
    let img = image::load_from_memory(&bytes).map_err(|e| e.to_string())?;
    let small = img.thumbnail(SIDE, SIDE).to_rgba8();
    let size = [small.width() as usize, small.height() as usize];
    Ok(ColorImage::from_rgba_unmultiplied(size, small.as_raw()))
}
