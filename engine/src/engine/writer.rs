//! The writer thread: takes every write job queued, runs them one after another on the node
//! (each commits its own batch, visible at once), acknowledges messages the group stored, and
//! hands the group to the fsync thread ([`super::fsync`]), which answers every caller once it
//! is durable, while the writer runs the next group. A failed write or fsync poisons fjall;
//! the next group reopens the store first, so the engine writes again once the cause (a full
//! disk) is gone, without a restart.

use std::collections::{BTreeSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::RwLockWriteGuard;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::fsync::{self, Committed, Work};
use super::ingest::Ingest;
use super::{EngineError, Event, Shared};
use crate::log::Entry;
use crate::messenger::Sealing;
use crate::node::{Node, NodeError};
use crate::store::{Signed, StoreError};

/// Most jobs in one group (one fsync).
const MAX_GROUP: usize = 1024;

/// A group holds the node's write lock at least this long before it lets waiting readers in
/// (between two jobs, or two chunks of an ingest), so that it is not cut into slivers.
const HOLD_BEFORE_YIELD: Duration = Duration::from_millis(2);

/// How long a group that let readers in waits for them to take the lock before it goes on.
const READERS_TURN: Duration = Duration::from_millis(2);

/// Acknowledgements go out at most this often while messages keep arriving: each is a sealed
/// entry (three key agreements here, one at its reader), and during a flood one per ~10
/// messages cost about a tenth of the throughput. A message is acknowledged at most this
/// much later than when nothing waits; a quiet chat's first message at once.
pub(crate) const ACK_PAUSE: Duration = Duration::from_millis(25);

/// When acknowledgements were last sealed, and whether some wait for the pause to end.
pub(crate) struct AckClock {
    last: Option<Instant>,
    waiting: bool,
    pub(crate) pause: Duration,
}

impl Default for AckClock {
    fn default() -> AckClock {
        AckClock { last: None, waiting: false, pause: ACK_PAUSE }
    }
}

impl AckClock {
    /// When waiting acknowledgements are due, if any wait.
    fn due(&self) -> Option<Instant> {
        self.waiting.then(|| self.last.map_or_else(Instant::now, |t| t + self.pause))
    }
}

/// Called with the group's outcome: `Ok` once the job's writes are durable.
pub(crate) type Completion = Box<dyn FnOnce(Result<(), EngineError>) + Send>;
/// A write: runs on the node (or is refused) and returns its completion.
pub(crate) type Run = Box<dyn FnOnce(Result<&mut Node, EngineError>) -> Completion + Send>;
/// Answers a sender with its entry, once durable.
pub(crate) type SentReply = Box<dyn FnOnce(Result<Entry, EngineError>) + Send>;

/// What the writer is given to do.
pub(crate) enum Job {
    Run(Run),
    /// A sealed message for our log. Those next to each other in a group are signed and
    /// stored in one batch, as one commit: a flood of sends costs one head, view-position and
    /// journal write per group instead of per message.
    Append(Sealing, SentReply),
    /// Entries from elsewhere, stored in chunks ([`super::ingest`]); answered once all are
    /// stored and visible, before the group's fsync.
    Ingest(Box<Ingest>),
}

pub(crate) fn job<R: Send + 'static>(
    f: impl FnOnce(&mut Node) -> R + Send + 'static,
    reply: impl FnOnce(Result<R, EngineError>) + Send + 'static,
) -> Job {
    Job::Run(Box::new(move |node: Result<&mut Node, EngineError>| -> Completion {
        match node.map(|n| run_caught(n, f)) {
            Ok(Ok(v)) => Box::new(move |durable: Result<(), EngineError>| reply(durable.map(|()| v))),
            Ok(Err(e)) | Err(e) => {
                reply(Err(e));
                Box::new(|_| {})
            }
        }
    }))
}

/// Runs a job's work; a panic becomes an error, loud in the log, never hidden.
fn run_caught<R>(n: &mut Node, f: impl FnOnce(&mut Node) -> R) -> Result<R, EngineError> {
    catch_unwind(AssertUnwindSafe(|| f(n))).map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        tracing::error!(panic = %msg, "a write panicked; its changes may be partial");
        EngineError::Panicked(msg)
    })
}

pub(crate) fn refuse(job: Job, e: EngineError) {
    match job {
        Job::Run(run) => run(Err(e))(Ok(())),
        Job::Append(_, reply) => reply(Err(e)),
        Job::Ingest(i) => i.refuse(e),
    }
}

/// Signs a group made only of sends under the read lock, so that sessions and front ends read
/// while it signs; the write lock then only stores it ([`Node::append_presigned`] signs again
/// if something else wrote to our log in between).
fn presign(shared: &Shared, jobs: &[Job]) -> Option<Signed> {
    let sealings: Vec<&Sealing> = jobs
        .iter()
        .map(|j| match j {
            Job::Append(s, _) => Some(s),
            Job::Run(_) | Job::Ingest(_) => None,
        })
        .collect::<Option<_>>()?;
    let guard = shared.node.read().ok()?;
    let node = guard.as_ref().filter(|n| !n.store.failed())?;
    catch_unwind(AssertUnwindSafe(|| node.sign_sealed_many(sealings))).ok()?.ok()
}

/// What is left of a group: its jobs not yet run, the ingest under way, and — for a group of
/// appends alone — their entries, signed already.
struct Rest {
    jobs: VecDeque<Job>,
    ingest: Option<Box<Ingest>>,
    presigned: Option<Signed>,
}

impl Rest {
    fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.ingest.is_none()
    }

    fn refuse(self, why: &str) {
        if let Some(i) = self.ingest {
            i.refuse(EngineError::Unavailable(why.to_owned()));
        }
        for j in self.jobs {
            refuse(j, EngineError::Unavailable(why.to_owned()));
        }
    }
}

/// Runs a group's jobs in order, each run of appends as one batch and each ingest chunk by
/// chunk, until all have run or — once the lock has been held [`HOLD_BEFORE_YIELD`] — readers
/// wait for it (checked between jobs and chunks, never inside a run of appends).
fn run_jobs(shared: &Shared, node: &mut Node, rest: &mut Rest) -> Vec<Completion> {
    let held = Instant::now();
    let mut out = Vec::with_capacity(rest.jobs.len());
    let mut appends = Vec::new();
    loop {
        if let Some(ingest) = rest.ingest.as_mut() {
            let contended = shared.readers_waiting();
            match run_caught(node, |n| ingest.run_chunk(&mut n.store, contended)) {
                Ok(false) => {}
                Ok(true) => rest.ingest = None,
                Err(e) => {
                    if let Some(i) = rest.ingest.take() {
                        i.refuse(e);
                    }
                }
            }
        } else {
            match rest.jobs.pop_front() {
                None => break,
                Some(Job::Append(sealing, reply)) => {
                    appends.push((sealing, reply));
                    continue;
                }
                Some(Job::Run(run)) => {
                    out.extend(append_all(node, std::mem::take(&mut appends), None));
                    out.push(run(Ok(node)));
                }
                Some(Job::Ingest(i)) => {
                    out.extend(append_all(node, std::mem::take(&mut appends), None));
                    rest.ingest = Some(i);
                    continue;
                }
            }
        }
        if !rest.is_empty() && held.elapsed() >= HOLD_BEFORE_YIELD && shared.readers_waiting() {
            break;
        }
    }
    out.extend(append_all(node, appends, rest.presigned.take()));
    out
}

/// Appends sealed messages to our log in one batch, each answered with its own entry once
/// durable. If the batch fails, each is tried alone, so every sender gets its own answer.
fn append_all(node: &mut Node, appends: Vec<(Sealing, SentReply)>, presigned: Option<Signed>) -> Vec<Completion> {
    let (sealings, replies): (Vec<Sealing>, Vec<SentReply>) = appends.into_iter().unzip();
    let whole = |r: Result<Result<Vec<Entry>, _>, _>| match r {
        Ok(Ok(entries)) if entries.len() == replies.len() => Some(entries),
        _ => None,
    };
    let entries = match (sealings.len(), presigned) {
        (0, _) => return Vec::new(),
        (_, Some(signed)) => whole(run_caught(node, |n| n.append_presigned(sealings.clone(), signed))),
        (1, None) => None,
        (_, None) => whole(run_caught(node, |n| n.append_sealed_many(sealings.clone()))),
    };
    let Some(entries) = entries else {
        return sealings
            .into_iter()
            .zip(replies)
            .map(|(sealing, reply)| -> Completion {
                match run_caught(node, |n| n.append_sealed(sealing)) {
                    Ok(Ok(entry)) => Box::new(move |durable: Result<(), EngineError>| reply(durable.map(|()| entry))),
                    Ok(Err(e)) => {
                        reply(Err(e.into()));
                        Box::new(|_| {})
                    }
                    Err(e) => {
                        reply(Err(e));
                        Box::new(|_| {})
                    }
                }
            })
            .collect();
    };
    entries
        .into_iter()
        .zip(replies)
        .map(|(entry, reply)| -> Completion {
            Box::new(move |durable: Result<(), EngineError>| reply(durable.map(|()| entry)))
        })
        .collect()
}

pub(crate) fn run(shared: &Shared, rx: &Receiver<Job>) {
    std::thread::scope(|scope| {
        let (tx, frx) = std::sync::mpsc::channel();
        let fsyncer = std::thread::Builder::new()
            .name("libra-fsync".into())
            .spawn_scoped(scope, move || fsync::run(shared, &frx));
        match fsyncer {
            // Without the thread every group settles on the writer (as `write_here` does).
            Err(e) => tracing::warn!(error = %e, "could not start the fsync thread; fsyncing on the writer"),
            Ok(_) => {
                if let Ok(mut f) = shared.fsync.lock() {
                    *f = Some(tx);
                }
            }
        }
        loop {
            // Acks waiting for their pause are sealed when it ends, unless a write comes first
            // (its group seals them if the pause is over by then).
            let due = shared.acks.lock().ok().and_then(|a| a.due());
            let first = match due {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(t) => rx.recv_timeout(t.saturating_duration_since(Instant::now())),
            };
            let first = match first {
                Ok(j) => j,
                Err(RecvTimeoutError::Timeout) => {
                    acknowledge_now(shared);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Closing: what waits is acknowledged now rather than at the next start.
                    if due.is_some() {
                        acknowledge_now(shared);
                    }
                    break;
                }
            };
            let mut jobs = vec![first];
            while jobs.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            shared.queued.fetch_sub(jobs.len(), Ordering::SeqCst);
            group(shared, jobs);
        }
        shared.stopped.store(true, Ordering::SeqCst);
        // The fsync thread settles what is queued, then ends with its channel (the scope
        // joins it).
        if let Ok(mut f) = shared.fsync.lock() {
            f.take();
        }
    });
    // Every handle is gone: flush so the next open replays no journal, then close the store.
    let node = shared.node.write().map(|mut g| g.take()).unwrap_or_else(|p| p.into_inner().take());
    // fjall waits for the flush without a bound, and a flush cannot finish once the directory
    // is gone or the store has failed: those skip it (the journal holds the data anyway).
    if let Some(n) = node
        && !n.store.failed()
        && n.store.path().exists()
        && let Err(e) = n.store.flush()
    {
        tracing::warn!(error = %e, "could not flush the store on shutdown");
    }
}

/// Runs a group: as one lock hold when nobody waits to read; cut between jobs or ingest
/// chunks, each part its own lock hold, when readers wait.
fn group(shared: &Shared, jobs: Vec<Job>) {
    let presigned = presign(shared, &jobs);
    let mut rest = Rest { jobs: jobs.into(), ingest: None, presigned };
    loop {
        let mut waiting = false;
        let result = run_group(shared, false, |node| {
            let out = run_jobs(shared, node, &mut rest);
            if !rest.is_empty() {
                // The rest of the group is work waiting for the writer: acknowledgements wait
                // for it, as for any queued job (undone below).
                shared.queued.fetch_add(1, Ordering::SeqCst);
                waiting = true;
            }
            out
        });
        if waiting {
            shared.queued.fetch_sub(1, Ordering::SeqCst);
        }
        if rest.is_empty() {
            return;
        }
        if let Err(why) = result {
            // The rest never ran: the store is unavailable (or the group's fsync failed).
            rest.refuse(&why);
            return;
        }
        let until = Instant::now() + READERS_TURN;
        while shared.readers_waiting() && Instant::now() < until {
            std::thread::yield_now();
        }
    }
}

/// Runs one group, then — if it stored messages from others and no more writes wait — a
/// group that acknowledges them. With `inline` each group's fsync runs on this thread and
/// the result says whether the first group is durable; otherwise the fsync thread settles
/// both (and answers the completions `run` returns) while this thread goes on.
pub(crate) fn run_group(
    shared: &Shared,
    inline: bool,
    run: impl FnOnce(&mut Node) -> Vec<Completion>,
) -> Result<(), String> {
    let first = commit_group(shared, run);
    // Trust changed (perhaps one of our devices was revoked elsewhere): rotate our agreement
    // key once per revocation, in a group of its own (spec/devices.md, "Rotation").
    let stale = |n: &Node| n.unrotated_revocations().is_ok_and(|r| r.is_some());
    let rotated = (first.as_ref().is_ok_and(|c| c.interest)
        && shared.node.read().ok().is_some_and(|g| g.as_ref().is_some_and(stale)))
    .then(|| {
        commit_group(shared, |n| {
            if let Err(e) = n.rotate_if_needed() {
                tracing::warn!(error = %e, "could not rotate the agreement key");
            }
            Vec::new()
        })
    });
    // Committed before the first group's callers are answered, so a caller that writes next
    // cannot make them wait.
    let acks = first.is_ok().then(|| acknowledge(shared, inline, false)).flatten();
    // Settled in the order committed: the fsync thread's durable mark follows the groups.
    let r = first.and_then(|c| settle(shared, c, inline));
    if let Some(Err(e)) = rotated.map(|g| g.and_then(|c| settle(shared, c, inline))) {
        tracing::warn!(error = %e, "agreement key rotation not saved; retried at the next change");
    }
    if let Some(Err(e)) = acks.map(|a| a.and_then(|c| settle(shared, c, inline))) {
        tracing::warn!(error = %e, "acknowledgements not saved; they are retried at the next start");
    }
    r
}

/// Acknowledgements sealed when the pause has ended or the writer closes, settled at once.
fn acknowledge_now(shared: &Shared) {
    if let Some(Err(e)) = acknowledge(shared, false, true).map(|a| a.and_then(|c| settle(shared, c, false))) {
        tracing::warn!(error = %e, "acknowledgements not saved; they are retried at the next start");
    }
}

/// Seals acknowledgements of the messages stored since the last ones, in a group of their own
/// (so what arrived is readable before the acks are sealed) — if messages wait for them and no
/// write does: one ack per chat and sender then covers what several groups stored. At most
/// once per pause ([`ACK_PAUSE`] unless set otherwise); at once (`now`) when the pause has
/// ended or the writer closes, and on `inline` writes (tests and tools expect them at once).
/// `None` when none were due; the caller settles the group.
fn acknowledge(shared: &Shared, inline: bool, now: bool) -> Option<Result<Committed, String>> {
    let pending = shared.node.read().ok().and_then(|g| g.as_ref().map(|n| n.store.has_new_messages())).unwrap_or(false);
    let mut clock = shared.acks.lock().ok()?;
    if !pending {
        clock.waiting = false;
        return None;
    }
    if shared.queued.load(Ordering::SeqCst) > 0 {
        return None;
    }
    if !(now || inline || clock.last.is_none_or(|t| t.elapsed() >= clock.pause)) {
        clock.waiting = true;
        return None;
    }
    clock.last = Some(Instant::now());
    clock.waiting = false;
    drop(clock);
    // Taken under the lock, sealed outside it (three key agreements per ack, which readers —
    // the app, the sessions sending — would otherwise wait behind), appended under it again.
    let drafts = shared.node.write().ok().and_then(|mut g| g.as_mut().map(|n| n.draft_acks()));
    let sealed = drafts.map(crate::messenger::AckDrafts::seal);
    Some(commit_group(shared, |n| {
        let acked = match sealed {
            Some(s) => n.append_acks(s),
            // The node was not there to draft (a store being reopened): as one step.
            None => n.acknowledge(),
        };
        if let Err(e) = acked {
            tracing::warn!(error = %e, "could not acknowledge received messages");
        }
        Vec::new()
    }))
}

/// Hands a committed group to the fsync thread, or settles it here.
fn settle(shared: &Shared, c: Committed, inline: bool) -> Result<(), String> {
    if inline {
        return fsync::settle(shared, vec![c]);
    }
    let tx = shared.fsync.lock().ok().and_then(|f| f.clone());
    match tx {
        Some(tx) => match tx.send(Work::Group(c)) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::SendError(w)) => match w {
                Work::Group(c) => fsync::settle(shared, vec![c]),
                Work::Drain(_) => Ok(()),
            },
        },
        None => fsync::settle(shared, vec![c]),
    }
}

/// Runs `run` on the node under the write lock; its commits are visible when this returns.
/// `Err` only if the store is unavailable (stopped, or could not be reopened): `run` never ran.
fn commit_group(shared: &Shared, run: impl FnOnce(&mut Node) -> Vec<Completion>) -> Result<Committed, String> {
    if shared.stopped.load(Ordering::SeqCst) {
        return Err("the engine has stopped".into());
    }
    let mut guard = shared.node.write().map_err(|_| "the node lock is poisoned".to_owned())?;
    if guard.as_ref().is_none_or(|n| n.store.failed()) {
        reopen(shared, &mut guard);
    }
    let Some(node) = guard.as_mut() else {
        return Err("the store could not be reopened".into());
    };
    let completions = run(node);
    let changed = node.store.take_changed();
    let interest = node.store.take_peers_changed();
    if interest {
        let allowed = allowed_keys(node);
        if let Ok(mut a) = shared.allowed.write() {
            *a = allowed;
        }
        let open = node.store.has_open_invites(crate::clock::wall_ms()).unwrap_or(false);
        shared.intro_open.store(open, Ordering::Relaxed);
    }
    let failed = node.store.failed().then(|| node.store.failure().unwrap_or_else(|| "unknown error".into()));
    let syncer = failed.is_none().then(|| node.store.syncer());
    Ok(Committed { syncer, failed, changed, interest, completions })
}

/// Waits until the fsync thread has settled every group handed to it (and dropped its handles
/// on the store).
fn drain(shared: &Shared) {
    let tx = shared.fsync.lock().ok().and_then(|f| f.clone());
    if let Some(tx) = tx {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if tx.send(Work::Drain(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

/// Drops the node and opens it again from disk: fjall refuses writes after a failure until
/// then, and the journal on disk decides what the failed write left.
fn reopen(shared: &Shared, guard: &mut RwLockWriteGuard<'_, Option<Node>>) {
    // After a failed fsync the kernel may have dropped pages it could not write while the
    // reopened store still reads them from the cache: own entries no fsync covered stay
    // unsendable until the next start.
    drain(shared);
    let held = guard.as_ref().map(|n| n.store.unsynced_after_fsync_failure()).unwrap_or_default();
    drop(guard.take());
    for _ in 0..100 {
        match Node::open(&shared.dir) {
            Ok(mut n) => {
                n.store.set_grouped(true);
                n.store.hold_unsendable(&held);
                // What the failed write left may sit in the page cache only: make it durable
                // before any of it can be offered to a peer.
                if let Err(e) = n.store.syncer().persist() {
                    tracing::warn!(error = %e, "the reopened store cannot be synced yet");
                    let _ = shared.events.send(Event::Storage { ok: false, detail: e.to_string() });
                    return;
                }
                // The reopened store decides who may connect and what was kept.
                if let Ok(mut a) = shared.allowed.write() {
                    *a = allowed_keys(&n);
                }
                let open = n.store.has_open_invites(crate::clock::wall_ms()).unwrap_or(false);
                shared.intro_open.store(open, Ordering::Relaxed);
                **guard = Some(n);
                tracing::info!("store reopened; writing again");
                let _ = shared.events.send(Event::Storage { ok: true, detail: "store reopened".into() });
                let _ = shared.events.send(Event::Interest);
                return;
            }
            // fjall's background threads may hold the directory for a moment after the drop.
            Err(NodeError::Store(StoreError::Locked(_))) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                tracing::warn!(error = %e, "could not reopen the store");
                let _ = shared.events.send(Event::Storage { ok: false, detail: e.to_string() });
                return;
            }
        }
    }
    tracing::warn!("could not reopen the store: its directory stayed locked");
    let _ = shared.events.send(Event::Storage { ok: false, detail: "the store directory stayed locked".into() });
}

/// The device keys that may connect: allowed peers, our own other trusted devices, and the
/// trusted devices of our contacts (a device they link later is reachable once its certificate
/// is here); never a device its user revoked.
pub(crate) fn allowed_keys(node: &Node) -> BTreeSet<[u8; 32]> {
    let mut allowed: BTreeSet<[u8; 32]> = node.store.allowed_peers().unwrap_or_default().into_iter().collect();
    let trust = node.store.trust();
    let mut users: Vec<crate::identity::UserId> = node.user_id().into_iter().collect();
    for (user, devices) in node.counted_contacts().unwrap_or_default() {
        users.push(user);
        allowed.extend(devices);
    }
    for user in users {
        if let Some(rec) = trust.user(&user) {
            allowed.extend(rec.devices.iter().filter(|(_, d)| d.trusted()).map(|(d, _)| *d.as_bytes()));
        }
    }
    allowed.retain(|k| {
        let d = crate::identity::DeviceId(crate::codec::Bytes(*k));
        !trust.owner_of(&d).and_then(|u| trust.user(&u)).and_then(|r| r.devices.get(&d)).is_some_and(|r| r.revoked)
    });
    allowed.remove(node.device_id().as_bytes());
    allowed
}
