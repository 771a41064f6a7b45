//! The blob store: encrypted files as content-addressed blobs in `<data>/blobs/`, each as
//! `<root>.data` (the ciphertext, sparse while it downloads), `<root>.obao` (its bao-tree
//! outboard in pre-order) and `<root>.have` (the verified chunk ranges). A range is recorded in
//! `.have` only after the data and hashes under it are synced, so after a crash the store
//! claims nothing it does not hold.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::io::sync::OutboardMut;
use bao_tree::{BaoTree, ChunkNum, ChunkRanges};

use crate::blob::{
    self, BLOCK, BlobError, FileRef, MAX_FILE, Part, Request, Status, Verified, chunk_ranges_of, pairs_of,
    verified_bytes,
};
use crate::codec::{self, Bytes};

/// Room left free on the disk beyond a download's own size.
pub const DISK_MARGIN: u64 = 64 << 20;

/// Where a blob stands here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobState {
    Missing,
    /// Bytes verified so far.
    Partial(u64),
    Complete,
}

impl BlobState {
    /// The state a record ([`Blobs::have`]) describes.
    pub fn of(record: Option<&(u64, Vec<(u64, u64)>)>) -> BlobState {
        match record {
            None => BlobState::Missing,
            Some((size, have)) if is_complete(*size, have) => BlobState::Complete,
            Some((size, have)) => BlobState::Partial(verified_bytes(have, *size)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    /// The blob store of the data directory `data_dir` (created on first write).
    pub fn new(data_dir: &Path) -> Blobs {
        Blobs { dir: data_dir.join("blobs") }
    }

    fn path(&self, root: &[u8; 32], ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", hex::encode(root)))
    }

    /// Encrypts the file at `src` under a fresh key into a complete blob; returns the
    /// reference its message carries. Streams: memory stays at one segment whatever the size.
    pub fn import(&self, src: &Path) -> Result<FileRef, BlobError> {
        let name = src.file_name().and_then(|n| n.to_str()).map(str::to_owned).ok_or(BlobError::BadName)?;
        blob::check_name(&name)?;
        let input = File::open(src)?;
        let size = input.metadata()?.len();
        if size > MAX_FILE {
            return Err(BlobError::TooLarge(size));
        }
        self.check_space(blob::blob_size(size) * 2)?;
        fs::create_dir_all(&self.dir)?;
        let key = crate::identity::random_secret();
        let tmp = self.dir.join(format!("import-{}.tmp", hex::encode(&crate::identity::random_secret()[..8])));
        let result = self.import_into(&tmp, &key, size, input);
        let _ = fs::remove_file(&tmp);
        let _ = fs::remove_file(tmp.with_extension("obao.tmp"));
        let root = result?;
        let file = FileRef {
            media_type: blob::media_type_of(&name).to_string(),
            name,
            size,
            root: Bytes(root),
            key: Bytes(key),
        };
        file.check()?;
        Ok(file)
    }

    fn import_into(&self, tmp: &Path, key: &[u8; 32], size: u64, input: File) -> Result<[u8; 32], BlobError> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(tmp)?);
        blob::encrypt_stream(key, size, BufReader::with_capacity(1 << 20, input), &mut out)?;
        let data = out.into_inner().map_err(|e| e.into_error())?;
        data.sync_all()?;
        let blob_size = blob::blob_size(size);
        let ob_tmp = tmp.with_extension("obao.tmp");
        let tree = BaoTree::new(blob_size, BLOCK);
        let mut ob = PreOrderOutboard { root: blake3::Hash::from_bytes([0; 32]), tree, data: File::create(&ob_tmp)? };
        let root = bao_tree::io::sync::outboard(BufReader::with_capacity(1 << 20, File::open(tmp)?), tree, &mut ob)?;
        ob.sync()?;
        let root = *root.as_bytes();
        fs::rename(&ob_tmp, self.path(&root, "obao"))?;
        fs::rename(tmp, self.path(&root, "data"))?;
        sync_dir(Some(&self.dir));
        write_have(&self.path(&root, "have"), blob_size, &[(0, ChunkNum::chunks(blob_size).0.max(1))])?;
        Ok(root)
    }

    /// The verified ranges of a blob (none if it is not here or its record is damaged).
    pub fn have(&self, root: &[u8; 32]) -> Option<(u64, Vec<(u64, u64)>)> {
        let bytes = fs::read(self.path(root, "have")).ok()?;
        codec::decode::<(u64, Vec<(u64, u64)>)>(&bytes).ok()
    }

    pub fn state(&self, root: &[u8; 32]) -> BlobState {
        BlobState::of(self.have(root).as_ref())
    }

    /// Opens a download of the blob `root` of `size` bytes, resuming what is verified. Refused
    /// when the disk lacks the room.
    pub fn begin(&self, root: &[u8; 32], size: u64) -> Result<Partial, BlobError> {
        if size > blob::blob_size(MAX_FILE) {
            return Err(BlobError::TooLarge(size));
        }
        // One writer per blob (a download and a bundle import of the same file would each
        // record only their own ranges); released when the `Partial` is dropped.
        let claim = Claim::take(&self.dir, root).ok_or(BlobError::Busy)?;
        let have = match self.have(root) {
            Some((s, have)) if s == size => have,
            // A verified last chunk proves the blob's size (other pieces do not: sizes in one
            // power-of-two band share most of the tree): a message that claims another size
            // for the same root is then wrong, not the record. Without it, the new size starts over.
            Some((s, have)) if size_proven(s, &have) => {
                return Err(BlobError::Verify(format!("this blob is {s} bytes, not {size}")));
            }
            _ => Vec::new(),
        };
        let tree = BaoTree::new(size, BLOCK);
        if have.is_empty() {
            self.check_space(size + tree.outboard_size())?;
        }
        fs::create_dir_all(&self.dir)?;
        let open = |p: PathBuf| OpenOptions::new().read(true).write(true).create(true).truncate(false).open(p);
        let data = open(self.path(root, "data"))?;
        let ob_file = open(self.path(root, "obao"))?;
        if ob_file.metadata()?.len() != tree.outboard_size() {
            ob_file.set_len(tree.outboard_size())?;
        }
        if data.metadata()?.len() != size {
            data.set_len(size)?;
        }
        if have.is_empty() {
            // The record says the blob is asked for, even before anything arrives.
            write_have(&self.path(root, "have"), size, &[])?;
        }
        Ok(Partial {
            _claim: claim,
            root: *root,
            size,
            data,
            ob: PreOrderOutboard { root: blake3::Hash::from_bytes(*root), tree, data: ob_file },
            have: chunk_ranges_of(&have),
            have_path: self.path(root, "have"),
        })
    }

    /// Answers a `libra/blob/1` request from what is verified here.
    pub fn serve(&self, req: &Request) -> (Status, Vec<u8>) {
        let mut out = Vec::new();
        let status = self.serve_into(req, &mut out);
        (status, out)
    }

    /// [`Blobs::serve`] into `out` (cleared first): a server reuses its buffers.
    pub fn serve_into(&self, req: &Request, out: &mut Vec<u8>) -> Status {
        out.clear();
        // A blob asked for but not yet received answers as unknown: a request must not tell
        // anyone that this node wants a file.
        let Some((size, have)) = self.have(&req.root).filter(|(_, h)| !h.is_empty()) else {
            return Status::Unknown;
        };
        if blob::check_request(req, size).is_err() {
            return Status::Refused;
        }
        let asked = chunk_ranges_of(&req.ranges);
        if !asked.is_subset(&chunk_ranges_of(&have)) {
            return Status::Missing;
        }
        let encoded = (|| -> Result<(), BlobError> {
            let data = File::open(self.path(&req.root, "data"))?;
            let ob = PreOrderOutboard {
                root: blake3::Hash::from_bytes(req.root),
                tree: BaoTree::new(size, BLOCK),
                data: File::open(self.path(&req.root, "obao"))?,
            };
            out.reserve(blob::max_response_len(size, &req.ranges) as usize);
            // Not hashed again here: it was verified when it landed, and the receiver verifies
            // every byte (a disk that damaged it costs us that peer's trust for this blob).
            bao_tree::io::sync::encode_ranges(&data, &ob, &asked, &mut *out)
                .map_err(|e| BlobError::Verify(e.to_string()))
        })();
        match encoded {
            Ok(()) => Status::Ok,
            // Our own copy no longer verifies (the disk damaged it): say we lack it rather than
            // serve bytes that will not verify.
            Err(e) => {
                tracing::warn!(error = %e, "a stored blob does not verify");
                out.clear();
                Status::Missing
            }
        }
    }

    /// Decrypts the complete blob of `file` into `out` (through a temporary file beside it,
    /// synced, then renamed: `out` is never left half written). An existing `out` is refused.
    pub fn export(&self, file: &FileRef, out: &Path) -> Result<(), BlobError> {
        if self.state(&file.root.0) != BlobState::Complete {
            return Err(BlobError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, "the file is not downloaded")));
        }
        // Claim the name first (atomically: a file made there meanwhile is never overwritten);
        // the finished file then replaces this empty placeholder.
        match OpenOptions::new().write(true).create_new(true).open(out) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(BlobError::Io(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the target exists")));
            }
            Err(e) => return Err(e.into()),
        }
        // Short, whatever the target's name (a long name plus a suffix would pass the limit).
        let tmp = out.with_file_name(format!(".libra-{}.part", hex::encode(&crate::identity::random_secret()[..6])));
        let result = (|| -> Result<(), BlobError> {
            let from = BufReader::with_capacity(1 << 20, File::open(self.path(&file.root.0, "data"))?);
            let mut to = BufWriter::with_capacity(1 << 20, OpenOptions::new().write(true).create_new(true).open(&tmp)?);
            if let Err(e) = blob::decrypt_stream(&file.key.0, file.size, from, &mut to) {
                if matches!(e, BlobError::Decrypt) {
                    // The disk damaged a blob that verified when it landed: forget it, so that
                    // it is fetched again.
                    write_have(&self.path(&file.root.0, "have"), file.blob_size(), &[])?;
                }
                return Err(e);
            }
            to.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            fs::rename(&tmp, out)?;
            sync_dir(out.parent());
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(out);
        }
        result
    }

    /// Decrypts the complete blob of `file` into `to` (for a picture's thumbnail: the caller
    /// bounds the size).
    pub fn read_into(&self, file: &FileRef, to: impl Write) -> Result<(), BlobError> {
        if self.state(&file.root.0) != BlobState::Complete {
            return Err(BlobError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, "the file is not downloaded")));
        }
        let from = BufReader::with_capacity(1 << 20, File::open(self.path(&file.root.0, "data"))?);
        blob::decrypt_stream(&file.key.0, file.size, from, to)
    }

    /// Deletes a blob (its data, outboard and record).
    pub fn remove(&self, root: &[u8; 32]) -> Result<(), BlobError> {
        for ext in ["have", "data", "obao"] {
            match fs::remove_file(self.path(root, ext)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    fn check_space(&self, need: u64) -> Result<(), BlobError> {
        let at =
            if self.dir.exists() { self.dir.clone() } else { self.dir.parent().unwrap_or(&self.dir).to_path_buf() };
        match fs4::available_space(&at) {
            Ok(free) if free < need.saturating_add(DISK_MARGIN) => Err(BlobError::Io(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("{need} bytes needed, {free} free on the disk (keeping {DISK_MARGIN} spare)"),
            ))),
            _ => Ok(()),
        }
    }
}

/// The blobs being written in this process (a store's data directory is open in one process).
static WRITING: std::sync::Mutex<std::collections::BTreeSet<(PathBuf, [u8; 32])>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// The right to write one blob, held by its `Partial`.
struct Claim(PathBuf, [u8; 32]);

impl Claim {
    fn take(dir: &Path, root: &[u8; 32]) -> Option<Claim> {
        let mut w = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        w.insert((dir.to_path_buf(), *root)).then(|| Claim(dir.to_path_buf(), *root))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut w = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        w.remove(&(std::mem::take(&mut self.0), self.1));
    }
}

/// Whether the verified ranges `have` of a blob recorded as `size` bytes include its last chunk
/// (which only verifies at the true size).
pub fn size_proven(size: u64, have: &[(u64, u64)]) -> bool {
    let last = ChunkNum::chunks(size).0.max(1) - 1;
    have.iter().any(|&(s, e)| s <= last && last < e)
}

fn is_complete(size: u64, have: &[(u64, u64)]) -> bool {
    let end = ChunkNum::chunks(size).0.max(1);
    chunk_ranges_of(have).is_superset(&ChunkRanges::from(ChunkNum(0)..ChunkNum(end)))
}

fn write_have(path: &Path, size: u64, have: &[(u64, u64)]) -> Result<(), BlobError> {
    let tmp = path.with_extension("have.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(&codec::encode(&(size, have)))?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent());
    Ok(())
}

/// Makes a rename in `dir` durable (on Unix a rename is only as durable as its directory).
fn sync_dir(dir: Option<&Path>) {
    #[cfg(unix)]
    if let Some(d) = dir.and_then(|d| File::open(d).ok()) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// A record to write once the data and hashes under it are synced (see
/// [`Partial::persist_later`]).
pub struct Persist {
    data: File,
    ob: File,
    have: Vec<(u64, u64)>,
    size: u64,
    path: PathBuf,
}

impl Persist {
    pub fn run(self) -> Result<(), BlobError> {
        self.data.sync_data()?;
        self.ob.sync_data()?;
        write_have(&self.path, self.size, &self.have)
    }
}

/// A download under way: verified parts are written as they land; [`Partial::persist`]
/// records them once synced.
pub struct Partial {
    _claim: Claim,
    root: [u8; 32],
    size: u64,
    data: File,
    ob: PreOrderOutboard<File>,
    have: ChunkRanges,
    have_path: PathBuf,
}

impl Partial {
    pub fn root(&self) -> [u8; 32] {
        self.root
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Chunk ranges verified so far (including those not yet persisted).
    pub fn have(&self) -> Vec<(u64, u64)> {
        pairs_of(&self.have)
    }

    pub fn verified_bytes(&self) -> u64 {
        verified_bytes(&self.have(), self.size)
    }

    /// Writes one verified response (from [`blob::decode_response`]).
    pub fn write(&mut self, response: &Verified) -> Result<(), BlobError> {
        use bao_tree::io::sync::WriteAt;
        for part in response.parts() {
            if let Part::Parent { node, pair } = part {
                self.ob.save(*node, pair)?;
            }
        }
        for (offset, data) in response.leaves() {
            self.data.write_all_at(offset, data)?;
            let start = offset / 1024;
            let end = (offset + data.len() as u64).div_ceil(1024).max(start + 1);
            self.have.union_with(&ChunkRanges::from(ChunkNum(start)..ChunkNum(end)));
        }
        Ok(())
    }

    /// Syncs data and hashes, then records what they hold.
    pub fn persist(&mut self) -> Result<(), BlobError> {
        self.data.sync_data()?;
        self.ob.sync()?;
        write_have(&self.have_path, self.size, &self.have())
    }

    /// [`Partial::persist`] to run later, without this `Partial` (so writers of other pieces
    /// need not wait for the disk): what is verified now, and handles to sync first. Run after
    /// a newer one, it records less than the newer did, never more than is on disk.
    pub fn persist_later(&self) -> Result<Persist, BlobError> {
        Ok(Persist {
            data: self.data.try_clone()?,
            ob: self.ob.data.try_clone()?,
            have: self.have(),
            size: self.size,
            path: self.have_path.clone(),
        })
    }

    pub fn is_complete(&self) -> bool {
        is_complete(self.size, &self.have())
    }

    /// Once every range is in: syncs and records the blob as complete. Every byte was verified
    /// against the root as it landed; a write the disk loses later is caught when the file is
    /// opened (each segment is authenticated), never handed out.
    pub fn finish(&mut self) -> Result<bool, BlobError> {
        if !self.is_complete() {
            return Ok(false);
        }
        self.persist()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch_all(from: &Blobs, to: &Blobs, root: &[u8; 32], size: u64, pieces: &mut crate::blob::Pieces) {
        let mut partial = to.begin(root, size).expect("begin");
        while let Some(piece) = pieces.take() {
            let req = Request { root: *root, ranges: vec![piece] };
            let (status, body) = from.serve(&req);
            assert_eq!(status, Status::Ok);
            let items = blob::decode_response(root, size, &req.ranges, &body).expect("verifies");
            partial.write(&items).expect("write");
            pieces.landed(piece);
        }
        assert!(partial.finish().expect("finish"));
    }

    #[test]
    fn import_serve_fetch_export() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("photo.jpg");
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
        fs::write(&src, &content).expect("write");
        let a = Blobs::new(&dir.path().join("a"));
        let b = Blobs::new(&dir.path().join("b"));
        let file = a.import(&src).expect("import");
        assert_eq!((file.size, file.media_type.as_str(), file.name.as_str()), (3_000_000, "image/jpeg", "photo.jpg"));
        assert_eq!(a.state(&file.root.0), BlobState::Complete);
        assert_eq!(b.state(&file.root.0), BlobState::Missing);
        let size = file.blob_size();
        let mut pieces = crate::blob::Pieces::new(size, &[]);
        fetch_all(&a, &b, &file.root.0, size, &mut pieces);
        assert_eq!(b.state(&file.root.0), BlobState::Complete);
        let out = dir.path().join("out.jpg");
        b.export(&file, &out).expect("export");
        assert_eq!(fs::read(&out).expect("read"), content);
        assert!(b.export(&file, &out).is_err(), "an existing file is not overwritten");
        // A blob the server does not have, and ranges it lacks.
        let (status, _) = a.serve(&Request { root: [9; 32], ranges: vec![(0, 16)] });
        assert_eq!(status, Status::Unknown);
    }

    #[test]
    fn a_download_resumes_from_what_was_persisted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("f.bin");
        fs::write(&src, vec![5u8; 2_500_000]).expect("write");
        let a = Blobs::new(&dir.path().join("a"));
        let b = Blobs::new(&dir.path().join("b"));
        let file = a.import(&src).expect("import");
        let (root, size) = (file.root.0, file.blob_size());
        let mut partial = b.begin(&root, size).expect("begin");
        // One writer at a time per blob.
        assert!(matches!(b.begin(&root, size), Err(BlobError::Busy)));
        // Asked for but nothing here yet: answered as unknown (no one learns what we want).
        assert_eq!(b.serve(&Request { root, ranges: vec![(0, 16)] }).0, Status::Unknown);
        let mut pieces = crate::blob::Pieces::new(size, &[]);
        let first = pieces.take().expect("piece");
        let req = Request { root, ranges: vec![first] };
        let body = a.serve(&req).1;
        let items = blob::decode_response(&root, size, &req.ranges, &body).expect("verifies");
        partial.write(&items).expect("write");
        partial.persist().expect("persist");
        // A second piece written but not persisted is forgotten, as after a crash.
        let second = pieces.take().expect("piece");
        let req = Request { root, ranges: vec![second] };
        let body = a.serve(&req).1;
        let items = blob::decode_response(&root, size, &req.ranges, &body).expect("verifies");
        partial.write(&items).expect("write");
        drop(partial);
        // The first piece taken holds the last chunk (it proves the size).
        assert_eq!(first.1, size.div_ceil(1024));
        assert_eq!(b.state(&root), BlobState::Partial(crate::blob::verified_bytes(&[first], size)));
        // b serves what it has verified, and only that.
        assert_eq!(b.serve(&Request { root, ranges: vec![first] }).0, Status::Ok);
        assert_eq!(b.serve(&Request { root, ranges: vec![second] }).0, Status::Missing);
        let (_, have) = b.have(&root).expect("have");
        let mut pieces = crate::blob::Pieces::new(size, &have);
        assert_ne!(pieces.take(), Some(first));
        let mut pieces = crate::blob::Pieces::new(size, &have);
        fetch_all(&a, &b, &root, size, &mut pieces);
        b.export(&file, &dir.path().join("out")).expect("export");
        assert_eq!(fs::read(dir.path().join("out")).expect("read"), vec![5u8; 2_500_000]);
    }
}
