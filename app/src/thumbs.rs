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
    /// The decoding thread's queue, once started.
    worker: Option<Sender<(FileRef, PathBuf, egui::Context)>>,
}

impl Default for Thumbs {
    fn default() -> Thumbs {
        let (tx, rx) = channel();
        Thumbs { dir: None, cache: HashMap::new(), tx, rx, worker: None }
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
        // One picture decoded at a time, on one worker thread (a chat of many pictures must not
        // decode them all at once).
        let worker = self.worker.get_or_insert_with(|| {
            let (jobs, rx) = channel::<(FileRef, PathBuf, egui::Context)>();
            let done = self.tx.clone();
            std::thread::spawn(move || {
                for (f, dir, ctx) in rx {
                    let _ = done.send((f.root.0, make(&Blobs::new(&dir), &f)));
                    ctx.request_repaint();
                }
            });
            jobs
        });
        let _ = worker.send((f.clone(), dir, ctx.clone()));
        None
    }
}

fn make(blobs: &Blobs, f: &FileRef) -> Result<ColorImage, String> {
    let mut bytes = Vec::with_capacity(f.size as usize);
    blobs.read_into(f, &mut bytes).map_err(|e| e.to_string())?;
    // A small file can claim a huge picture: decoding is bounded, not only the file.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    limits.max_alloc = Some(160 << 20);
    let mut reader =
        image::ImageReader::new(std::io::Cursor::new(&bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    reader.limits(limits);
    let img = reader.decode().map_err(|e| e.to_string())?;
    let small = img.thumbnail(SIDE, SIDE).to_rgba8();
    let size = [small.width() as usize, small.height() as usize];
    Ok(ColorImage::from_rgba_unmultiplied(size, small.as_raw()))
}
