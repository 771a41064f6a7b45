//! Downloads of blobs (spec/blobs.md, section 6): the fetcher watches the files the chats
//! projection knows, and fetches each wanted one (small enough to fetch unasked, or asked for)
//! from every connected peer at once over `libra/blob/1`, each source serving different
//! pieces. Every piece is verified against the root as it lands; a source that sends a bad
//! piece is dropped and the piece goes to another; what is verified is kept across restarts.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::blob_protocol::{BLOB_ALPN, REQUEST_IDLE};
use super::{Host, NetError};
use crate::blob::{self, MAX_RESPONSE, Pieces, Request, Status};
use crate::engine::{Event, PathKind, Transfer};
use crate::store::blobs::{BlobState, Partial};

/// Downloads at once.
const PARALLEL: usize = 2;
/// Requests one source has outstanding (responses come back in order on the stream).
const DEPTH: usize = 4;
/// A download's record is synced once this much is verified since the last sync, or this long
/// has passed, on a thread of its own: a crash loses what landed since the last sync that
/// finished (it is fetched again), and the transfer is not held to the disk's sync rate.
const PERSIST_EVERY: u64 = 64 << 20;
const PERSIST_AFTER: Duration = Duration::from_secs(1);
/// A blob whose download ended short is tried again after this.
const RETRY: Duration = Duration::from_secs(10);

struct Job {
    partial: Partial,
    pieces: Pieces,
    unsynced: u64,
    synced_at: Instant,
    fetched: u64,
    started: Instant,
    reported: Option<Instant>,
    sources: usize,
    /// The record's sync under way, on a thread of its own so that pieces keep landing while
    /// the disk syncs (one at a time; the final persist waits for it).
    syncing: Option<std::thread::JoinHandle<Result<(), crate::blob::BlobError>>>,
    /// A sync failed: what was written since may not be on disk, so no record is written any
    /// more and the download ends (a later one starts from the last record that was synced).
    sync_failed: Option<String>,
}

impl Job {
    /// Waits for the sync under way, if any; fails if any sync of this download failed.
    fn join_sync(&mut self) -> Result<(), NetError> {
        if let Some(h) = self.syncing.take() {
            let outcome = match h.join() {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("the sync panicked".to_owned()),
            };
            if let Err(why) = outcome {
                self.sync_failed.get_or_insert(why);
            }
        }
        match &self.sync_failed {
            None => Ok(()),
            Some(why) => Err(NetError::Stream(format!("could not sync the download to disk: {why}"))),
        }
    }
}

impl Drop for Job {
    /// A download that ends without its final persist (a worker outlived it) still waits for
    /// its sync, so no older record lands after the next download of the blob began.
    fn drop(&mut self) {
        if let Err(e) = self.join_sync() {
            tracing::warn!(error = %e, "a download ended with a failed sync");
        }
    }
}

impl Host {
    /// Starts the fetcher (once per host).
    /// It ends with the host (dropped or shut down).
    pub fn run_fetcher(self: &Arc<Self>) {
        let host = Arc::downgrade(self);
        tokio::spawn(async move { fetcher(host).await });
    }
}

async fn fetcher(weak: std::sync::Weak<Host>) {
    let Some(mut events) = weak.upgrade().map(|h| h.engine.subscribe()) else { return };
    let active: Arc<Mutex<BTreeSet<[u8; 32]>>> = Arc::default();
    let mut complete = BTreeSet::new();
    loop {
        let Some(host) = weak.upgrade().filter(|h| !h.closed.load(std::sync::atomic::Ordering::SeqCst)) else {
            return;
        };
        start_wanted(&host, &active, &mut complete);
        // Wake on what may make a download possible: a file stored or asked for, a peer up.
        let deadline = tokio::time::sleep(RETRY);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                e = events.recv() => match e {
                    // (Not on `Transfer`: its own progress reports.)
                    Ok(Event::Stored { .. }) => break,
                    // Asked for, or a setting changed: look at every blob again.
                    Ok(Event::Files) => {
                        complete.clear();
                        break;
                    }
                    // A new source: downloads that ended short may now finish.
                    Ok(Event::Peer { online: true, .. }) => {
                        host.engine.transfer_retry_all();
                        break;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Ok(_) => {}
                },
            }
        }
        drop(host);
        // Let a burst of events settle into one scan.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts downloads of wanted files that have a possible source and are not under way.
/// `complete` remembers the blobs found complete, so a scan reads the record of each blob only
/// until it is complete: the cost of a scan is a read of the file rows.
fn start_wanted(host: &Arc<Host>, active: &Arc<Mutex<BTreeSet<[u8; 32]>>>, complete: &mut BTreeSet<[u8; 32]>) {
    let all = sources(host);
    if all.is_empty() {
        return;
    }
    let blobs = host.engine.blobs();
    let Ok(Ok((files, auto))) = host.engine.read(|n| {
        let mut files = Vec::new();
        for (id, row) in n.store.file_rows()? {
            if complete.contains(&row.file.root.0) {
                continue;
            }
            let record = blobs.have(&row.file.root.0);
            if BlobState::of(record.as_ref()) == BlobState::Complete {
                complete.insert(row.file.root.0);
                continue;
            }
            // Nothing is fetched for a deleted message or a blocked contact.
            let f = n.store.file_entry(id, row)?;
            if n.store.file_visible(&f) {
                files.push((f, record));
            }
        }
        // Newest first.
        files.sort_by_key(|(f, _)| std::cmp::Reverse(f.row.ts));
        Ok::<_, crate::store::StoreError>((files, n.store.auto_download()?))
    }) else {
        return;
    };
    for (f, record) in files {
        let file = f.row.file;
        // A message that claims another size than a verified last chunk proves is ignored.
        if record.as_ref().is_some_and(|(s, h)| *s != file.blob_size() && crate::store::blobs::size_proven(*s, h)) {
            continue;
        }
        let Ok(mut now) = active.lock() else { return };
        if now.len() >= PARALLEL {
            return;
        }
        if now.contains(&file.root.0) {
            continue;
        }
        let wanted = match BlobState::of(record.as_ref()) {
            BlobState::Complete => false,
            BlobState::Partial(_) => true,
            BlobState::Missing => auto > 0 && file.size <= auto,
        };
        if !wanted || host.engine.transfer_tried(&file.root.0).is_some_and(|t| t.elapsed() < RETRY) {
            continue;
        }
        // Only the chat's members' devices and our own are asked (others would learn the root
        // and size of a file they cannot open).
        let members = chat_devices(host, &f.row.chat);
        let sources: Vec<_> = all
            .iter()
            .filter(|(d, _)| {
                members.contains(d) && !host.engine.transfer_is_bad(&bad_key(&file.root.0, file.blob_size()), d)
            })
            .copied()
            .collect();
        if sources.is_empty() {
            continue;
        }
        now.insert(file.root.0);
        drop(now);
        let (host, active, sources) = (host.clone(), active.clone(), sources.clone());
        tokio::spawn(async move {
            let root = file.root.0;
            match download(&host, root, file.blob_size(), &sources).await {
                Ok(true) => tracing::info!(size = file.size, "file downloaded"),
                Ok(false) => tracing::info!("a download ended short; it resumes later"),
                Err(e) => tracing::info!(error = %e, "a download failed"),
            }
            if let Ok(mut a) = active.lock() {
                a.remove(&root);
            }
            host.engine.transfer_update(root, None);
        });
    }
}

/// The devices of a chat's members (ourselves included), as this node knows them.
fn chat_devices(host: &Host, chat: &crate::messaging::ChatId) -> BTreeSet<[u8; 32]> {
    host.engine
        .read(|n| {
            let users = n.chat(&chat.to_hex()).map(|c| c.users).unwrap_or_default();
            users
                .iter()
                .filter_map(|u| n.device_certs(u).ok())
                .flatten()
                .map(|c| *c.body.device.as_bytes())
                .collect::<BTreeSet<_>>()
        })
        .unwrap_or_default()
}

/// Connected peers that can be dialled for blobs (a relayed peer has no path of its own).
fn sources(host: &Host) -> Vec<([u8; 32], SocketAddr)> {
    host.links()
        .into_iter()
        .filter(|(_, l)| !matches!(l.path, PathKind::Relayed { .. }))
        .map(|(d, l)| (d, l.addr))
        .collect()
}

/// Fetches the blob `root` of `size` bytes from `sources` at once; `Ok(true)` once complete
/// and verified whole.
async fn download(
    host: &Arc<Host>,
    root: [u8; 32],
    size: u64,
    sources: &[([u8; 32], SocketAddr)],
) -> Result<bool, NetError> {
    let blobs = host.engine.blobs();
    let partial = tokio::task::spawn_blocking(move || blobs.begin(&root, size))
        .await
        .map_err(|e| NetError::Stream(e.to_string()))?;
    let partial = partial.map_err(|e| NetError::Stream(e.to_string()))?;
    let pieces = Pieces::new(size, &partial.have());
    let job = Arc::new(Mutex::new(Job {
        partial,
        pieces,
        unsynced: 0,
        synced_at: Instant::now(),
        fetched: 0,
        started: Instant::now(),
        reported: None,
        sources: sources.len(),
        syncing: None,
        sync_failed: None,
    }));
    let workers: Vec<_> = sources
        .iter()
        .map(|&(device, addr)| {
            let (host, job) = (host.clone(), job.clone());
            tokio::spawn(async move {
                let r = from_source(&host, &job, device, addr).await;
                if let Ok(mut j) = job.lock() {
                    j.sources = j.sources.saturating_sub(1);
                }
                if let Err(e) = &r {
                    tracing::info!(error = %e, "a source stopped serving a file");
                }
                r
            })
        })
        .collect();
    let mut last_error = None;
    for w in workers {
        if let Ok(Err(e)) = w.await {
            last_error = Some(e.to_string());
        }
    }
    let job = Arc::into_inner(job).and_then(|m| m.into_inner().ok());
    let Some(mut job) = job else { return Err(NetError::Stream("a download's workers outlived it".into())) };
    let done = job.pieces.done();
    let result = tokio::task::spawn_blocking(move || {
        // An older record written after the last one would claim less than is there.
        job.join_sync()?;
        let r = if done { job.partial.finish() } else { job.partial.persist().map(|()| false) };
        r.map_err(|e| NetError::Stream(e.to_string()))
    })
    .await
    .map_err(|e| NetError::Stream(e.to_string()))?;
    match result {
        Ok(true) => Ok(true),
        Ok(false) => Err(NetError::Stream(last_error.unwrap_or_else(|| "no connected peer has the file".into()))),
        Err(e) => Err(e),
    }
}

/// One source's share: requests pieces (up to [`DEPTH`] ahead) until none is left that it can
/// serve. Responses are read as they come while a thread of their own verifies and writes them.
/// A source that lacks the blob stops; one that sends anything that does not verify stops and
/// is not asked again for this blob; either way its pieces go back to the others.
async fn from_source(
    host: &Arc<Host>,
    job: &Arc<Mutex<Job>>,
    device: [u8; 32],
    addr: SocketAddr,
) -> Result<(), NetError> {
    let (root, size) = {
        let j = lock(job)?;
        (j.partial.root(), j.partial.size())
    };
    let conn = host.dial(addr, Some(device), BLOB_ALPN).await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<((u64, u64), Vec<u8>)>(2);
    // Bodies go back to the reader once written: a fresh 1 MiB buffer per piece costs its
    // zeroing and page faults, about a tenth of the receiving side's work.
    let (spare_tx, mut spare) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let (pjob, phost) = (job.clone(), host.clone());
    let processor = tokio::task::spawn_blocking(move || -> Result<(), NetError> {
        while let Some((piece, body)) = rx.blocking_recv() {
            let stored = blob::decode_response(&root, size, &[piece], &body)
                .map_err(|e| misbehaved(&phost, bad_key(&root, size), device, e.to_string()))
                .and_then(|response| store_piece(&pjob, piece, &response, size));
            let _ = spare_tx.send(body);
            match stored {
                Ok(Some(t)) => phost.engine.transfer_update(root, Some(t)),
                Ok(None) => {}
                Err(e) => {
                    // This piece and those queued behind it go back to the other sources.
                    lock(&pjob)?.pieces.release(piece);
                    rx.close();
                    while let Ok((p, _)) = rx.try_recv() {
                        lock(&pjob)?.pieces.release(p);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    });
    let mut in_flight: VecDeque<(u64, u64)> = VecDeque::new();
    // Pieces this source said it lacks (a source may hold part of a blob).
    let mut lacks: Vec<(u64, u64)> = Vec::new();
    let result = async {
        loop {
            while in_flight.len() < DEPTH {
                let Some(piece) = lock(job)?.pieces.take_avoiding(&lacks) else { break };
                in_flight.push_back(piece);
                let body = Request { root, ranges: vec![piece] }.encode();
                send.write_all(&(body.len() as u32).to_be_bytes()).await.map_err(stream)?;
                send.write_all(&body).await.map_err(stream)?;
            }
            let Some(piece) = in_flight.front().copied() else {
                // Nothing free: done, unless pieces this source could serve are with others
                // (they come back if another source fails).
                if !lock(job)?.pieces.could_use(&lacks) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let mut head = [0u8; 5];
            read(&mut recv, &mut head).await?;
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as u64;
            match Status::from_byte(head[0]) {
                Some(Status::Ok) => {}
                Some(Status::Missing) if len == 0 => {
                    in_flight.pop_front();
                    lock(job)?.pieces.release(piece);
                    lacks.push(piece);
                    continue;
                }
                Some(Status::Unknown) if len == 0 => {
                    return Err(NetError::Stream("the source does not have the file".into()));
                }
                // A request it found wrong (the message's size may not match the blob): not
                // the source's fault.
                Some(Status::Refused) if len == 0 => {
                    return Err(NetError::Stream("the source refused the request".into()));
                }
                _ => {
                    return Err(misbehaved(
                        host,
                        bad_key(&root, size),
                        device,
                        format!("status {} with {len} bytes", head[0]),
                    ));
                }
            }
            if len > MAX_RESPONSE || len != blob::max_response_len(size, &[piece]) {
                return Err(misbehaved(host, bad_key(&root, size), device, format!("a response of {len} bytes")));
            }
            // Spare bodies are at most those in flight (the channel, the processor).
            let mut body = spare.try_recv().unwrap_or_default();
            body.resize(len as usize, 0);
            read(&mut recv, &mut body).await?;
            in_flight.pop_front();
            if let Err(tokio::sync::mpsc::error::SendError((p, _))) = tx.send((piece, body)).await {
                // The processor stopped on an error; it says which below.
                lock(job)?.pieces.release(p);
                return Ok(());
            }
        }
    }
    .await;
    if let Ok(mut j) = job.lock() {
        for p in in_flight {
            j.pieces.release(p);
        }
    }
    drop(tx);
    let processed = processor.await.map_err(|e| NetError::Stream(e.to_string()))?;
    let _ = send.finish();
    conn.close(0u32.into(), b"done");
    result.and(processed)
}

/// Writes a verified piece; syncs the record now and then; a progress report when one is due.
fn store_piece(
    job: &Mutex<Job>,
    piece: (u64, u64),
    response: &blob::Verified,
    size: u64,
) -> Result<Option<Transfer>, NetError> {
    let mut j = lock(job)?;
    if j.sync_failed.is_some() {
        return j.join_sync().map(|()| None);
    }
    j.partial.write(response).map_err(|e| NetError::Stream(e.to_string()))?;
    j.pieces.landed(piece);
    let got = blob::verified_bytes(&[piece], size);
    j.unsynced += got;
    j.fetched += got;
    // The sync runs on a thread of its own, without the lock: the network tasks take it for
    // every piece, and the processor goes on verifying while the disk syncs. One at a time: a
    // sync still running puts the next off to a later piece.
    let due = j.unsynced >= PERSIST_EVERY || j.synced_at.elapsed() >= PERSIST_AFTER;
    if due && j.syncing.as_ref().is_none_or(std::thread::JoinHandle::is_finished) {
        j.join_sync()?;
        let persist = j.partial.persist_later().map_err(|e| NetError::Stream(e.to_string()))?;
        let handle = std::thread::Builder::new()
            .name("libra-blob-sync".into())
            .spawn(move || persist.run())
            .map_err(|e| NetError::Stream(format!("could not start a sync: {e}")))?;
        j.syncing = Some(handle);
        j.unsynced = 0;
        j.synced_at = Instant::now();
    }
    let due = j.reported.is_none_or(|t| t.elapsed() >= Duration::from_millis(250));
    let report = due.then(|| {
        j.reported = Some(Instant::now());
        let secs = j.started.elapsed().as_secs_f64().max(1e-3);
        Transfer { have: j.partial.verified_bytes(), size, rate: j.fetched as f64 / secs, sources: j.sources }
    });
    Ok(report)
}

fn lock(job: &Mutex<Job>) -> Result<std::sync::MutexGuard<'_, Job>, NetError> {
    job.lock().map_err(|_| poisoned())
}

async fn read(recv: &mut quinn::RecvStream, buf: &mut [u8]) -> Result<(), NetError> {
    tokio::time::timeout(REQUEST_IDLE, recv.read_exact(buf))
        .await
        .map_err(|_| NetError::Timeout(REQUEST_IDLE))?
        .map_err(stream)
}

/// What a bad source is remembered under: the blob at the size a message claims (a message
/// with a wrong size makes honest sources fail; they stay good for the right one).
fn bad_key(root: &[u8; 32], size: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(root);
    h.update(&size.to_be_bytes());
    *h.finalize().as_bytes()
}

/// A source sent what does not verify: it is not asked for this blob again for a while.
fn misbehaved(host: &Host, key: [u8; 32], device: [u8; 32], why: String) -> NetError {
    host.engine.transfer_bad_source(key, device);
    NetError::Stream(format!("a source sent a bad piece: {why}"))
}

fn stream(e: impl std::fmt::Display) -> NetError {
    NetError::Stream(e.to_string())
}

fn poisoned() -> NetError {
    NetError::Stream("a download's state was poisoned".into())
}
