//! The writer thread: takes every write job queued, runs them one after another on the node
//! (each commits its own batch, visible at once), acknowledges messages the group stored,
//! then fsyncs once without holding the node lock and answers every caller. A failed write
//! or fsync poisons fjall; the next group reopens the store first, so the engine writes again
//! once the cause (a full disk) is gone, without a restart.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::RwLockWriteGuard;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use super::{EngineError, Event, Shared};
use crate::node::{Node, NodeError};
use crate::store::StoreError;

/// Most jobs in one group (one fsync).
const MAX_GROUP: usize = 1024;

/// Called with the group's outcome: `Ok` once the job's writes are durable.
pub(crate) type Completion = Box<dyn FnOnce(Result<(), EngineError>) + Send>;
/// A write: runs on the node (or is refused) and returns its completion.
pub(crate) type Job = Box<dyn FnOnce(Result<&mut Node, EngineError>) -> Completion + Send>;

pub(crate) fn job<R: Send + 'static>(
    f: impl FnOnce(&mut Node) -> R + Send + 'static,
    reply: impl FnOnce(Result<R, EngineError>) + Send + 'static,
) -> Job {
    Box::new(move |node: Result<&mut Node, EngineError>| -> Completion {
        let n = match node {
            Ok(n) => n,
            Err(e) => {
                reply(Err(e));
                return Box::new(|_| {});
            }
        };
        match catch_unwind(AssertUnwindSafe(|| f(n))) {
            Ok(v) => Box::new(move |durable: Result<(), EngineError>| reply(durable.map(|()| v))),
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                // Loud, not hidden: the caller gets an error and the log says what happened.
                tracing::error!(panic = %msg, "a write panicked; its changes may be partial");
                Box::new(move |_| reply(Err(EngineError::Panicked(msg))))
            }
        }
    })
}

pub(crate) fn refuse(job: Job, e: EngineError) {
    job(Err(e))(Ok(()));
}

pub(crate) fn run(shared: &Shared, rx: &Receiver<Job>) {
    while let Ok(first) = rx.recv() {
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

fn group(shared: &Shared, jobs: Vec<Job>) {
    let mut jobs = Some(jobs);
    let mut completions: Vec<Completion> = Vec::new();
    let result = run_group(shared, |node| {
        completions = jobs.take().unwrap_or_default().into_iter().map(|j| j(Ok(node))).collect();
    });
    if let Some(jobs) = jobs {
        // The group never ran: the store is unavailable.
        let why = result.err().unwrap_or_default();
        for j in jobs {
            refuse(j, EngineError::Unavailable(why.clone()));
        }
        return;
    }
    for c in completions {
        c(result.clone().map_err(EngineError::Unavailable));
    }
}

/// Runs one group, then — if it stored messages from others — a group that acknowledges them.
/// The acks come after the first group's fsync, not inside its lock: what arrived is readable
/// (and its `Stored` event out) before the acks are sealed, which costs three key agreements.
pub(crate) fn run_group(shared: &Shared, run: impl FnOnce(&mut Node)) -> Result<(), String> {
    let r = run_one_group(shared, run);
    let pending = shared.node.read().ok().and_then(|g| g.as_ref().map(|n| n.store.has_new_messages())).unwrap_or(false);
    // While more writes wait, the acks wait for them: one ack per chat and sender covers what
    // several groups stored (the last group before the queue empties sends them).
    if pending && shared.queued.load(Ordering::SeqCst) == 0 {
        let acked = run_one_group(shared, |n| {
            if let Err(e) = n.acknowledge() {
                tracing::warn!(error = %e, "could not acknowledge received messages");
            }
        });
        if let Err(e) = acked {
            tracing::warn!(error = %e, "acknowledgements not saved; they are retried at the next start");
        }
    }
    r
}

/// Runs one group: `run` writes on the node under the write lock, then one fsync outside the
/// lock. `Err` describes a failed
/// write or fsync (or a store that could not be reopened, in which case `run` never ran).
fn run_one_group(shared: &Shared, run: impl FnOnce(&mut Node)) -> Result<(), String> {
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
    run(node);
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
    let syncer = node.store.syncer();
    let generation = syncer.generation;
    drop(guard);
    let result = if let Some(why) = failed {
        Err(format!("could not write ({why}); whether this write was kept is known once the store is reopened"))
    } else {
        syncer.persist().map_err(|e| format!("fsync failed: {e}"))
    };
    // The syncer holds the database (and its directory lock): let go before anything can
    // need to reopen it.
    drop(syncer);
    match &result {
        Ok(()) => {
            if let Ok(mut g) = shared.node.write()
                && let Some(n) = g.as_mut()
            {
                n.store.mark_durable(generation);
            }
            if !changed.is_empty() {
                let _ = shared.events.send(Event::Stored { logs: changed });
            }
            if interest {
                let _ = shared.events.send(Event::Interest);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "write failed");
            let _ = shared.events.send(Event::Storage { ok: false, detail: e.clone() });
        }
    }
    result
}

/// Drops the node and opens it again from disk: fjall refuses writes after a failure until
/// then, and the journal on disk decides what the failed write left.
fn reopen(shared: &Shared, guard: &mut RwLockWriteGuard<'_, Option<Node>>) {
    // After a failed fsync the kernel may have dropped pages it could not write while the
    // reopened store still reads them from the cache: own entries no fsync covered stay
    // unsendable until the next start.
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

/// The device keys that may connect: allowed peers, and our own other trusted devices.
pub(crate) fn allowed_keys(node: &Node) -> BTreeSet<[u8; 32]> {
    let mut allowed: BTreeSet<[u8; 32]> = node
        .store
        .peers()
        .map(|p| p.into_iter().filter(|(_, r)| r.allowed).map(|(k, _)| k).collect())
        .unwrap_or_default();
    if let Some(user) = node.user_id()
        && let Some(rec) = node.store.trust().user(&user)
    {
        allowed.extend(rec.devices.iter().filter(|(_, d)| d.trusted()).map(|(d, _)| *d.as_bytes()));
    }
    allowed.remove(node.device_id().as_bytes());
    allowed
}
