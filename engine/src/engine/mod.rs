//! The engine: the one owner of a node (store, secrets, allow-list, peer state) between the
//! front ends and the drivers. Reads share the node; every write goes through one writer
//! thread that groups concurrent writes into one batch of commits and one fsync (group
//! commit). Each caller gets its own result once its write is durable; readers never wait
//! behind an fsync. What changed is published as typed [`Event`]s.

mod event;
mod files;
mod fsync;
mod ingest;
mod links;
mod local;
mod online;
mod writer;

#[cfg(test)]
mod tests;

pub use event::{DialState, Event, NetStatus, Reach};
pub use files::Transfer;
pub use local::NodeLocal;
pub use online::{Link, PathKind};

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::log::Entry;
use crate::node::{Node, NodeError};
use crate::store::{IngestReport, StoreError};

/// A message queued by [`Engine::queue_send`].
#[must_use = "a queued send is durable only once `wait` says so"]
pub struct Sending(std::sync::mpsc::Receiver<Result<Entry, EngineError>>);

impl Sending {
    /// Blocks until the message is durable (its entry) or has failed.
    pub fn wait(self) -> Result<Entry, EngineError> {
        self.0.recv().unwrap_or(Err(EngineError::Stopped))
    }
}

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the engine has stopped")]
    Stopped,
    #[error("internal error while writing: {0}")]
    Panicked(String),
    #[error(transparent)]
    Messenger(#[from] crate::messenger::MessengerError),
    #[error(transparent)]
    Blob(#[from] crate::blob::BlobError),
    #[error(transparent)]
    Device(#[from] crate::devices::DeviceError),
}

/// How long after start the acknowledgements a crash left pending are sent.
const START_ACK_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Agreement-key upkeep: first check after start, then how often.
const KEY_CHECK_FIRST: std::time::Duration = std::time::Duration::from_secs(5);
const KEY_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Ingests of at least this many entries verify their signatures on a blocking thread (fewer
/// are verified on the caller's task); either way before the write lock is taken.
const PREVERIFY_ON_THREAD: usize = 16;

/// A large ingest is verified and stored in pieces of about this many entries (sync bench,
/// cold sync of 100k entries: 1024 was slower than one piece, 4096 and 8192 alike and faster).
const INGEST_PIECE: usize = 4096;
/// A smaller batch is cut into four pieces, none smaller than this, so that storing its last
/// piece (with the other core idle) is a quarter of storing it whole.
const INGEST_PIECE_MIN: usize = 512;

/// Events kept for a subscriber that falls behind; beyond that it sees `Lagged` and rescans.
const EVENT_BACKLOG: usize = 4096;

/// What the writer thread and every handle share.
pub(crate) struct Shared {
    dir: PathBuf,
    /// `None` only while the store is being reopened after a failed write.
    node: RwLock<Option<Node>>,
    events: tokio::sync::broadcast::Sender<Event>,
    device: [u8; 32],
    allowed: RwLock<BTreeSet<[u8; 32]>>,
    /// Unexpired invites exist: strangers may finish the handshake to introduce themselves.
    intro_open: AtomicBool,
    /// Live sessions per connected peer, with their paths.
    online: Mutex<online::Online>,
    /// What each peer's dialers last reported (why it is not connected).
    dials: Mutex<BTreeMap<[u8; 32], Reach>>,
    /// Link codes shown and not yet used.
    links: Mutex<Vec<links::Offer>>,
    /// Downloads under way (the network driver reports them).
    transfers: Mutex<files::Transfers>,
    /// The writer has stopped: later writes are refused, never a reopened store.
    stopped: AtomicBool,
    /// Jobs sent to the writer and not yet taken.
    queued: std::sync::atomic::AtomicUsize,
    /// Readers waiting for the node lock: a long write group lets them in between its jobs.
    readers: std::sync::atomic::AtomicUsize,
    /// The longest a read waited for the node lock since last asked, in µs.
    longest_wait: std::sync::atomic::AtomicU64,
    /// The fsync thread's queue, while it runs.
    fsync: Mutex<Option<std::sync::mpsc::Sender<fsync::Work>>>,
    /// Fsyncs the write groups took (each settles every group queued before it).
    fsyncs: std::sync::atomic::AtomicU64,
    /// When the writer last sealed acknowledgements, and whether some wait for the pause
    /// after it to end ([`writer::ACK_PAUSE`]).
    acks: Mutex<writer::AckClock>,
    /// Per peer, where the order of head moves stood when the last session that synced with
    /// it was admitted (spec/sync.md, 8.9). In memory: a restart starts a new order anyway.
    sync_points: Mutex<std::collections::HashMap<[u8; 32], crate::store::ChangePoint>>,
}

impl Shared {
    /// Whether reads wait for the node lock (counted by [`Engine::read`]).
    fn readers_waiting(&self) -> bool {
        self.readers.load(Ordering::SeqCst) > 0
    }
}

/// A handle on the engine. Cheap to clone; the node closes when the last handle is dropped or
/// [`Engine::shutdown`] is called.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    closer: Arc<Closer>,
}

/// The writer's queue and thread. Dropped with the last handle, which stops the writer and
/// waits for it, so the data directory can be opened again at once.
struct Closer {
    jobs: Mutex<Option<std::sync::mpsc::Sender<writer::Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Closer {
    fn close(&self) {
        if let Ok(mut j) = self.jobs.lock() {
            j.take();
        }
        let t = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = t
            && t.join().is_err()
        {
            tracing::error!("the writer thread panicked");
        }
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.close();
    }
}

impl Engine {
    /// Opens the node in `dir` and starts its writer.
    pub fn open(dir: &Path) -> Result<Engine, EngineError> {
        Ok(Engine::start(Node::open(dir)?))
    }

    /// Creates a new identity in `dir` and starts its writer.
    pub fn init(dir: &Path, name: &str) -> Result<Engine, EngineError> {
        Ok(Engine::start(Node::init(dir, name)?))
    }

    /// Takes ownership of an open node.
    pub fn start(mut node: Node) -> Engine {
        node.store.set_grouped(true);
        let (events, _) = tokio::sync::broadcast::channel(EVENT_BACKLOG);
        let shared = Arc::new(Shared {
            dir: node.dir.clone(),
            device: *node.device_id().as_bytes(),
            allowed: RwLock::new(writer::allowed_keys(&node)),
            intro_open: AtomicBool::new(node.store.has_open_invites(crate::clock::wall_ms()).unwrap_or(false)),
            node: RwLock::new(Some(node)),
            events,
            online: Mutex::new(online::Online::default()),
            dials: Mutex::new(BTreeMap::new()),
            transfers: Mutex::default(),
            links: Mutex::default(),
            stopped: AtomicBool::new(false),
            queued: std::sync::atomic::AtomicUsize::new(0),
            readers: std::sync::atomic::AtomicUsize::new(0),
            longest_wait: std::sync::atomic::AtomicU64::new(0),
            acks: Mutex::default(),
            fsync: Mutex::new(None),
            fsyncs: std::sync::atomic::AtomicU64::new(0),
            sync_points: Mutex::default(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let w = shared.clone();
        let thread = std::thread::Builder::new().name("libra-writer".into()).spawn(move || writer::run(&w, &rx));
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "could not start the writer thread");
                None
            }
        };
        let engine =
            Engine { shared, closer: Arc::new(Closer { jobs: Mutex::new(Some(tx)), thread: Mutex::new(thread) }) };
        // Messages a crash (or an older version) left unacknowledged: from the acknowledgement points, not
        // the history. A moment after start, so the first screen does not wait behind it.
        // Weak: a node closed meanwhile is not kept open for this.
        let (shared, closer) = (engine.shared.clone(), Arc::downgrade(&engine.closer));
        let spawned = std::thread::Builder::new().name("libra-start-acks".into()).spawn(move || {
            std::thread::sleep(START_ACK_DELAY);
            let Some(closer) = closer.upgrade() else { return };
            let later = Engine { shared, closer };
            later.submit(
                |n| {
                    if let Err(e) = n.acknowledge_all() {
                        tracing::warn!(error = %e, "could not acknowledge messages received before this start");
                    }
                },
                |_| {},
            );
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not schedule the start-up acknowledgements");
        }
        engine.keep_keys_in_time();
        engine
    }

    /// Checks agreement-key upkeep soon after start and then hourly (spec/devices.md,
    /// "Rotation"): a due rotation, and retired secrets past their window deleted. The thread
    /// holds the engine weakly and ends with it.
    fn keep_keys_in_time(&self) {
        let (shared, closer) = (Arc::downgrade(&self.shared), Arc::downgrade(&self.closer));
        let spawned = std::thread::Builder::new().name("libra-keys".into()).spawn(move || {
            let mut wait = KEY_CHECK_FIRST;
            loop {
                let until = std::time::Instant::now() + wait;
                while std::time::Instant::now() < until {
                    std::thread::sleep(std::time::Duration::from_millis(250));
                    if closer.strong_count() == 0 {
                        return;
                    }
                }
                wait = KEY_CHECK_EVERY;
                let (Some(shared), Some(closer)) = (shared.upgrade(), closer.upgrade()) else { return };
                let engine = Engine { shared, closer };
                let now = crate::clock::wall_ms();
                let due = engine.read(|n| n.key_upkeep(now).is_ok_and(|(r, x)| r || x > 0)).unwrap_or(false);
                if due {
                    engine.submit(
                        move |n| {
                            if let Err(e) = n.keep_keys(now) {
                                tracing::warn!(error = %e, "agreement key upkeep failed; retried within the hour");
                            }
                        },
                        |_| {},
                    );
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not schedule agreement key upkeep");
        }
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// This device's key.
    pub fn device(&self) -> [u8; 32] {
        self.shared.device
    }

    /// Runs `f` on the node for reading. Never waits behind an fsync.
    pub fn read<R>(&self, f: impl FnOnce(&Node) -> R) -> Result<R, EngineError> {
        self.shared.readers.fetch_add(1, Ordering::SeqCst);
        let asked = std::time::Instant::now();
        let guard = self.shared.node.read();
        self.shared.readers.fetch_sub(1, Ordering::SeqCst);
        let waited = u64::try_from(asked.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.shared.longest_wait.fetch_max(waited, Ordering::Relaxed);
        let guard = guard.map_err(|_| EngineError::Panicked("the node lock is poisoned".into()))?;
        match guard.as_ref() {
            Some(n) => Ok(f(n)),
            None => Err(EngineError::Unavailable("the store is being reopened".into())),
        }
    }

    fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> R + Send + 'static,
        reply: impl FnOnce(Result<R, EngineError>) + Send + 'static,
    ) {
        self.submit_job(writer::job(f, reply));
    }

    fn submit_job(&self, job: writer::Job) {
        let jobs = self.closer.jobs.lock().map_err(|_| ()).ok();
        match jobs.as_ref().and_then(|j| j.as_ref()) {
            Some(tx) => {
                self.shared.queued.fetch_add(1, Ordering::SeqCst);
                if let Err(std::sync::mpsc::SendError(job)) = tx.send(job) {
                    self.shared.queued.fetch_sub(1, Ordering::SeqCst);
                    writer::refuse(job, EngineError::Stopped);
                }
            }
            None => writer::refuse(job, EngineError::Stopped),
        }
    }

    /// Runs `f` on the node exclusively, in the next group of writes; returns once what it
    /// wrote is durable. Blocks: call it off the async runtime (or use [`Engine::write_async`]).
    pub fn write<R: Send + 'static>(&self, f: impl FnOnce(&mut Node) -> R + Send + 'static) -> Result<R, EngineError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(f, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or(Err(EngineError::Stopped))
    }

    /// Returns once everything committed before the call is durable (a write with nothing to
    /// write: its group's fsync covers every earlier group).
    pub fn wait_durable(&self) -> Result<(), EngineError> {
        self.write(|_| ())
    }

    /// Like [`Engine::write`], but runs `f` on the calling thread as a group of its own, so it
    /// may borrow from the caller (commands forwarded to a running node use this).
    pub fn write_here<R>(&self, f: impl FnOnce(&mut Node) -> R) -> Result<R, EngineError> {
        let mut out = None;
        let r = writer::run_group(&self.shared, true, |n| {
            out = Some(catch_unwind(AssertUnwindSafe(|| f(n))));
            Vec::new()
        });
        let v = match out {
            None => return Err(EngineError::Unavailable(r.err().unwrap_or_default())),
            Some(Ok(v)) => v,
            Some(Err(_)) => return Err(EngineError::Panicked("a write panicked".into())),
        };
        r.map_err(EngineError::Unavailable)?;
        Ok(v)
    }

    /// [`Engine::write`] for async callers.
    pub async fn write_async<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> R + Send + 'static,
    ) -> Result<R, EngineError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(f, move |r| {
            let _ = tx.send(r);
        });
        rx.await.unwrap_or(Err(EngineError::Stopped))
    }

    /// Validates and stores entries from elsewhere (a peer, a bundle), grouped with other writes.
    /// Signatures are verified first, outside the node lock, so the write group holds the lock
    /// only for the rest (readers and other writes wait less). A batch of more than
    /// `INGEST_PIECE` entries is handed to the writer in pieces, the next verified while one is
    /// stored; the outcome is that of one call. If this future is dropped midway, the pieces
    /// handed over are stored (each a valid ingest of its own) and the rest are not.
    ///
    /// Returns once the entries are stored and visible, without waiting for the group's fsync
    /// (which follows within milliseconds), so a session takes the next batch while this one
    /// is synced. Nothing a session does depends on it: a crash before the fsync loses only
    /// copies that their authors still hold, and the next session brings them again. What this
    /// node signs (acks) is never offered before its own fsync, which covers these too.
    pub async fn ingest(&self, entries: Vec<Entry>) -> Result<IngestReport, EngineError> {
        // Reading a message costs a key agreement per secret: done here too, beside the
        // signatures, so that the write group only stores.
        let secrets = self.read(|n| n.store.reader_secrets())?;
        let prepare = move |entries: Vec<Entry>, threads: usize| {
            let refs: Vec<&Entry> = entries.iter().collect();
            let bad: BTreeSet<usize> = crate::log::verify_many(&refs, threads).into_iter().collect();
            let verified: BTreeSet<crate::log::EntryId> =
                entries.iter().enumerate().filter(|(i, _)| !bad.contains(i)).map(|(_, e)| e.id).collect();
            let opened = secrets.as_ref().map(|s| {
                let good: Vec<&Entry> = entries.iter().filter(|e| verified.contains(&e.id)).collect();
                (s.iter().map(|(_, p)| *p).collect(), crate::messaging::view::content_keys(&good, s, threads))
            });
            (entries, verified, opened)
        };
        // A few entries are prepared right here (well under a millisecond: a thread hop would
        // cost more); many on blocking threads, spread over the cores, and in pieces: the
        // writer stores one while the next is verified, so that neither waits for the other to
        // finish the whole batch with a core idle.
        let prepare = std::sync::Arc::new(prepare);
        let threads = crate::par::cores();
        let on_thread = entries.len() >= PREVERIFY_ON_THREAD;
        let start = |piece: Vec<Entry>| {
            let prepare = prepare.clone();
            async move {
                if on_thread {
                    tokio::task::spawn_blocking(move || prepare(piece, threads))
                        .await
                        .map_err(|e| EngineError::Panicked(e.to_string()))
                } else {
                    Ok(prepare(piece, 1))
                }
            }
        };
        let marks = std::sync::Arc::default();
        let size = (entries.len() / 4).clamp(INGEST_PIECE_MIN, INGEST_PIECE);
        let mut pieces = ingest::pieces(entries, size).into_iter();
        let mut answers = Vec::new();
        let mut prepared = match pieces.next() {
            Some(first) => start(first).await?,
            None => (Vec::new(), BTreeSet::new(), None),
        };
        loop {
            // The next piece is verified (on its own task) while the writer stores this one.
            let next = pieces.next().map(|p| tokio::spawn(start(p)));
            let (entries, verified, opened) = prepared;
            let (tx, rx) = tokio::sync::oneshot::channel();
            let reply = Box::new(move |r| {
                let _ = tx.send(r);
            });
            let piece = ingest::Ingest::piece(entries, verified, opened, std::sync::Arc::clone(&marks), reply);
            self.submit_job(writer::Job::Ingest(Box::new(piece)));
            answers.push(rx);
            match next {
                Some(task) => prepared = task.await.map_err(|e| EngineError::Panicked(e.to_string()))??,
                None => break,
            }
        }
        let mut report = IngestReport::default();
        for rx in answers {
            report.merge(rx.await.unwrap_or(Err(EngineError::Stopped))?);
        }
        Ok(report)
    }

    /// The longest a read (a session, a front end) waited for the node since the last call:
    /// what a write group made it wait.
    pub fn take_longest_read_wait(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.shared.longest_wait.swap(0, Ordering::Relaxed))
    }

    /// Fsyncs of write groups since the engine started (one may settle several groups).
    pub fn fsyncs(&self) -> u64 {
        self.shared.fsyncs.load(Ordering::Relaxed)
    }

    /// Sends a text message: sealed on the calling thread (so senders seal in parallel), with
    /// only the recipients read under the node lock — a seal held there would keep the writer
    /// waiting — then appended in the next write group. Returns once it is durable.
    pub fn send(
        &self,
        chat: &crate::messenger::ChatTarget,
        text: &str,
        reply_to: Option<crate::log::EntryId>,
    ) -> Result<Entry, EngineError> {
        self.queue_send(chat, text, reply_to)?.wait()
    }

    /// [`Engine::send`] without waiting: sealed on the calling thread, then queued for the
    /// writer. A caller with many messages (a bulk sender) queues several before it waits, so
    /// they share a write group and an fsync; each still learns its own outcome from
    /// [`Sending::wait`], `Ok` only once durable.
    pub fn queue_send(
        &self,
        chat: &crate::messenger::ChatTarget,
        text: &str,
        reply_to: Option<crate::log::EntryId>,
    ) -> Result<Sending, EngineError> {
        let body = Node::text_body(chat, text, reply_to)?;
        let plan = self.read(|n| n.check_writable(chat).and_then(|()| n.seal_plan(&chat.users)))??;
        Ok(self.queue_sealed(plan.seal(&body)?))
    }

    /// Queues a sealed message for the next write group (beside other sends: one batch).
    pub(crate) fn queue_sealed(&self, sealing: crate::messenger::Sealing) -> Sending {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit_job(writer::Job::Append(
            sealing,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        ));
        Sending(rx)
    }

    /// Sets the least time between two acknowledgement groups (see `writer::ACK_PAUSE`).
    /// The seeded simulation, which runs on a clock of its own, sets it to zero so that
    /// wall-clock time never decides when an ack is sealed.
    pub fn set_ack_pause(&self, pause: std::time::Duration) {
        if let Ok(mut a) = self.shared.acks.lock() {
            a.pause = pause;
        }
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    pub(crate) fn emit(&self, e: Event) {
        if let Event::Dial { device, state } = &e
            && let Ok(mut d) = self.shared.dials.lock()
        {
            let r = d.entry(*device).or_default();
            match state {
                DialState::Unreachable { reason } => r.through_contacts = Some(reason.clone()),
                s => r.dialer = Some(s.clone()),
            }
        }
        let _ = self.shared.events.send(e);
    }

    /// What the dialers last reported for each peer they tried.
    pub fn reach(&self) -> BTreeMap<[u8; 32], Reach> {
        self.shared.dials.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Where the order of head moves stood when the last session that synced with `peer` was
    /// admitted.
    pub(crate) fn sync_point(&self, peer: &[u8; 32]) -> Option<crate::store::ChangePoint> {
        self.shared.sync_points.lock().ok()?.get(peer).copied()
    }

    pub(crate) fn set_sync_point(&self, peer: &[u8; 32], point: crate::store::ChangePoint) {
        if let Ok(mut p) = self.shared.sync_points.lock() {
            // One point per peer the node ever synced with: bounded by its allow-list.
            p.insert(*peer, point);
        }
    }

    /// Whether `key` may connect (an allowed peer or one of our own devices).
    pub fn is_allowed(&self, key: &[u8; 32]) -> bool {
        self.shared.allowed.read().is_ok_and(|a| a.contains(key))
    }

    /// Whether strangers may finish the handshake to introduce themselves (open invites).
    pub fn intro_open(&self) -> bool {
        self.shared.intro_open.load(Ordering::Relaxed)
    }

    /// Allows a device or user key to sync with us, remembering an address to dial if given.
    pub fn allow(&self, key: [u8; 32], address: Option<String>) -> Result<(), EngineError> {
        self.write(move |n| {
            let mut rec = n.store.peer(&key)?.unwrap_or_default();
            rec.allowed = true;
            if let Some(a) = &address {
                rec.remember_address(a, crate::store::AddressSource::Typed);
            }
            n.store.set_peer(&key, &rec, true)
        })?
        .map_err(Into::into)
    }

    /// Registers a session with `peer` on `link`; the peer is online while it has one. Returns
    /// the session's id (for [`Engine::session_ended`]) and the signal that a better path
    /// replaced it. Local knowledge only.
    pub fn session_started(&self, peer: [u8; 32], link: Link) -> (u64, Arc<tokio::sync::Notify>) {
        let Ok(mut online) = self.shared.online.lock() else { return (0, Arc::default()) };
        let (id, replaced, changed) = online.start(peer, link);
        drop(online);
        if changed {
            self.emit(Event::Peer { device: peer, online: true });
        }
        (id, replaced)
    }

    /// A session registered by [`Engine::session_started`] ended.
    pub fn session_ended(&self, peer: [u8; 32], id: u64) {
        let Ok(mut online) = self.shared.online.lock() else { return };
        let changed = online.end(&peer, id);
        let still = online.best(&peer).is_some();
        drop(online);
        if changed {
            self.emit(Event::Peer { device: peer, online: still });
        }
    }

    /// Peers connected right now, with the address of the best path (local knowledge only).
    pub fn online(&self) -> BTreeMap<[u8; 32], SocketAddr> {
        self.links().into_iter().map(|(k, l)| (k, l.addr)).collect()
    }

    /// Peers connected right now, each with its best path.
    pub fn links(&self) -> BTreeMap<[u8; 32], Link> {
        self.shared.online.lock().map(|o| o.links()).unwrap_or_default()
    }

    /// A hole punch towards `peer` is under way for `window`: a connection it makes to us in
    /// that time is a punched one.
    pub fn punching(&self, peer: [u8; 32], window: std::time::Duration) {
        if let Ok(mut o) = self.shared.online.lock() {
            o.punching(peer, std::time::Instant::now() + window);
        }
    }

    /// `peer`, introducing us in a hole punch, sees this node at `addr`: our public, reflexive
    /// address as that contact sees it, as a STUN server would say (spec/connectivity.md,
    /// section 4). Memory only, for the user's own views.
    pub fn seen_by(&self, peer: [u8; 32], addr: SocketAddr) {
        if let Ok(mut o) = self.shared.online.lock() {
            o.seen_by(peer, addr, crate::clock::wall_ms());
        }
    }

    /// What the STUN server the user chose said last (`None`: no server answered): the
    /// server, our public address, and when. Memory only, for the user's own views and for
    /// the candidates a hole punch offers (spec/connectivity.md, section 4.3).
    pub fn stun_seen(&self, answer: Option<(String, SocketAddr)>) {
        if let Ok(mut o) = self.shared.online.lock() {
            o.stun = answer.map(|(server, addr)| (server, addr, crate::clock::wall_ms()));
        }
    }

    /// This node's public address as its STUN server last gave it.
    pub fn stun_public(&self) -> Option<(String, SocketAddr, u64)> {
        self.shared.online.lock().ok().and_then(|o| o.stun.clone())
    }

    /// Where each contact that introduced us last saw us, and when (ms).
    pub fn seen_as(&self) -> BTreeMap<[u8; 32], (SocketAddr, u64)> {
        self.shared.online.lock().map(|o| o.seen_as()).unwrap_or_default()
    }

    /// The path of an inbound connection from `peer`.
    pub fn inbound_path(&self, peer: &[u8; 32]) -> PathKind {
        self.shared.online.lock().map_or(PathKind::Inbound, |o| o.inbound_path(peer))
    }

    /// Ends every live session with `peer` (a blocked contact's device): they close at once
    /// rather than when they next fail.
    pub fn disconnect(&self, peer: &[u8; 32]) {
        if let Ok(o) = self.shared.online.lock() {
            o.end_all(peer);
        }
    }

    /// Ends every live session (the machine's network changed under them).
    pub fn disconnect_all(&self) {
        if let Ok(o) = self.shared.online.lock() {
            for peer in o.links().keys() {
                o.end_all(peer);
            }
        }
    }

    /// Whether `peer` is connected by a path that is not relayed, on a session that started at
    /// or after `since_ms` (a session from before may be on a path that has died).
    pub fn direct_since(&self, peer: &[u8; 32], since_ms: u64) -> bool {
        self.shared
            .online
            .lock()
            .is_ok_and(|o| o.best(peer).is_some_and(|l| !l.path.is_relayed() && l.since_ms >= since_ms))
    }

    /// Whether `peer` is connected by a path that is not relayed.
    pub fn direct(&self, peer: &[u8; 32]) -> bool {
        self.direct_since(peer, 0)
    }

    /// Stops the writer after the writes already queued, flushes and closes the store.
    pub fn shutdown(&self) {
        self.closer.close();
    }
}
