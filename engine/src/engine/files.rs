//! Files on the engine: sending one (the file is encrypted into the blob store before the
//! message joins a write group), asking for one, and the progress of downloads that the
//! network driver reports (spec/blobs.md).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::{Engine, EngineError, Event};
use crate::blob::FileRef;
use crate::log::{Entry, EntryId};
use crate::messaging::Body;
use crate::messenger::ChatTarget;
use crate::store::blobs::{BlobState, Blobs};

/// A download as the driver reports it (sizes are of the encrypted blob).
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// Blob bytes verified (including earlier sessions).
    pub have: u64,
    pub size: u64,
    /// Bytes per second over this attempt.
    pub rate: f64,
    /// Peers serving it now.
    pub sources: usize,
}

impl Transfer {
    /// Seconds left at the current rate.
    pub fn eta_secs(&self) -> Option<u64> {
        (self.rate > 1.0).then(|| ((self.size - self.have.min(self.size)) as f64 / self.rate) as u64)
    }
}

#[derive(Default)]
pub(crate) struct Transfers {
    pub(crate) now: BTreeMap<[u8; 32], Transfer>,
    /// When each blob was last tried, so a blob nobody serves is not asked for in a loop.
    pub(crate) tried: BTreeMap<[u8; 32], Instant>,
    /// Sources that sent a piece of a blob that did not verify, and when.
    pub(crate) bad: BTreeMap<([u8; 32], [u8; 32]), Instant>,
}

/// How long a source that sent a bad piece is not asked for that blob again.
const BAD_SOURCE_FOR: std::time::Duration = std::time::Duration::from_secs(600);

impl Engine {
    /// The blob store of this node.
    pub fn blobs(&self) -> Blobs {
        Blobs::new(self.dir())
    }

    /// Sends the file at `path` to `chat` with a caption. The file is encrypted into the blob
    /// store first (streamed, on the caller's thread), then the message is sealed and appended
    /// like any other; members fetch the blob from whoever has it.
    pub fn send_file(
        &self,
        chat: &ChatTarget,
        path: &Path,
        text: &str,
        reply_to: Option<EntryId>,
    ) -> Result<(Entry, FileRef), EngineError> {
        // Checked before the work of encrypting: the caption and the chat.
        crate::node::Node::text_body(chat, text, reply_to)?;
        self.read(|n| n.check_writable(chat))??;
        let blobs = self.blobs();
        let file = blobs.import(path)?;
        let body = Body::File { chat: chat.chat, text: text.to_owned(), reply_to, file: file.clone() };
        let sealed = self.read(|n| n.seal_plan(&chat.users)).and_then(|p| Ok(p?.seal(&body)?));
        let payload = match sealed {
            Ok(p) => p,
            Err(e) => {
                // No message refers to the blob: it would only take space. (After an append
                // was tried the entry may exist, so the blob stays.)
                let _ = blobs.remove(&file.root.0);
                return Err(e);
            }
        };
        let entry = self.write(move |n| n.append_sealed(payload))??;
        Ok((entry, file))
    }

    /// Asks for a file whatever its size: its download starts (or resumes) as soon as a peer
    /// that has it is connected.
    pub fn want_file(&self, file: &FileRef) -> Result<BlobState, EngineError> {
        let blobs = self.blobs();
        let state = blobs.state(&file.root.0);
        if state == BlobState::Missing {
            match blobs.begin(&file.root.0, file.blob_size()) {
                // Being written already (a download or an import): asked for enough.
                Ok(_) | Err(crate::blob::BlobError::Busy) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Ok(mut t) = self.shared.transfers.lock() {
            t.tried.remove(&file.root.0);
        }
        self.emit(Event::Files);
        Ok(blobs.state(&file.root.0))
    }

    /// Tells the fetcher to look at the files again (a setting changed).
    pub fn files_changed(&self) {
        self.emit(Event::Files);
    }

    /// Downloads under way.
    pub fn transfers(&self) -> BTreeMap<[u8; 32], Transfer> {
        self.shared.transfers.lock().map(|t| t.now.clone()).unwrap_or_default()
    }

    /// The driver's report on a download (`None` once it ended).
    pub(crate) fn transfer_update(&self, root: [u8; 32], t: Option<Transfer>) {
        let ended = t.is_none();
        if let Ok(mut all) = self.shared.transfers.lock() {
            match t {
                Some(t) => {
                    all.now.insert(root, t);
                }
                None => {
                    all.now.remove(&root);
                    all.tried.insert(root, Instant::now());
                }
            }
        }
        // A download that ended frees a place: the fetcher looks again (`Files`).
        self.emit(if ended { Event::Files } else { Event::Transfer });
    }

    /// Forgets when downloads ended short (a new source appeared).
    pub(crate) fn transfer_retry_all(&self) {
        if let Ok(mut t) = self.shared.transfers.lock() {
            t.tried.clear();
        }
    }

    /// `device` sent a piece that did not verify, of the blob (at the size a message claims)
    /// that `root` names.
    pub(crate) fn transfer_bad_source(&self, root: [u8; 32], device: [u8; 32]) {
        if let Ok(mut t) = self.shared.transfers.lock() {
            t.bad.retain(|_, at| at.elapsed() < BAD_SOURCE_FOR);
            t.bad.insert((root, device), Instant::now());
        }
    }

    pub(crate) fn transfer_is_bad(&self, root: &[u8; 32], device: &[u8; 32]) -> bool {
        self.shared
            .transfers
            .lock()
            .is_ok_and(|t| t.bad.get(&(*root, *device)).is_some_and(|at| at.elapsed() < BAD_SOURCE_FOR))
    }

    /// When a download of `root` last ended short.
    pub(crate) fn transfer_tried(&self, root: &[u8; 32]) -> Option<Instant> {
        self.shared.transfers.lock().ok().and_then(|t| t.tried.get(root).copied())
    }
}
