//! The fsync thread: makes committed groups durable while the writer goes on with the next
//! group (a pipeline of two stages). Groups queued while an fsync runs share the next one;
//! each group's callers, events and own entries are released, in order, once an fsync that
//! covers the group returns.

use std::sync::mpsc::{Receiver, SyncSender};

use super::writer::Completion;
use super::{EngineError, Event, Shared};
use crate::store::Syncer;

/// A group whose writes are committed (visible) and wait for an fsync.
pub(crate) struct Committed {
    /// Covers every write committed before it; `None` if the group's write failed.
    pub(crate) syncer: Option<Syncer>,
    /// Why the group's write failed, if it did.
    pub(crate) failed: Option<String>,
    pub(crate) changed: Vec<([u8; 32], u64)>,
    pub(crate) interest: bool,
    pub(crate) completions: Vec<Completion>,
}

pub(crate) enum Work {
    Group(Committed),
    /// Answered once every group queued before it is settled and its store handle dropped
    /// (a reopen must not race an fsync of the old store).
    Drain(SyncSender<()>),
}

/// Most groups settled by one fsync.
const MAX_BATCH: usize = 1024;

pub(crate) fn run(shared: &Shared, rx: &Receiver<Work>) {
    while let Ok(first) = rx.recv() {
        let mut groups = Vec::new();
        let mut drains = Vec::new();
        let mut next = Some(first);
        while let Some(w) = next.take() {
            match w {
                Work::Group(c) => groups.push(c),
                Work::Drain(d) => drains.push(d),
            }
            if groups.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        // Each group's callers and events carry the outcome.
        let _ = settle(shared, groups);
        for d in drains {
            let _ = d.send(());
        }
    }
}

/// Fsyncs once for `groups` (the last syncer covers every earlier write), then answers each
/// group's callers and publishes its events, in commit order.
pub(crate) fn settle(shared: &Shared, groups: Vec<Committed>) -> Result<(), String> {
    let persisted = match groups.iter().rev().find_map(|c| c.syncer.as_ref()) {
        Some(s) => {
            shared.fsyncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            s.persist().map_err(|e| format!("fsync failed: {e}"))
        }
        None => Ok(()),
    };
    let mut last = Ok(());
    for c in groups {
        let result = match c.failed {
            Some(why) => {
                Err(format!("could not write ({why}); whether this write was kept is known once the store is reopened"))
            }
            None => persisted.clone(),
        };
        // The syncer holds the database (and its directory lock): let go before anything
        // can need to reopen it.
        drop(c.syncer);
        match &result {
            Ok(()) => {
                if !c.changed.is_empty() {
                    let _ = shared.events.send(Event::Stored { logs: c.changed });
                }
                if c.interest {
                    let _ = shared.events.send(Event::Interest);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "write failed");
                let _ = shared.events.send(Event::Storage { ok: false, detail: e.clone() });
            }
        }
        for done in c.completions {
            done(result.clone().map_err(EngineError::Unavailable));
        }
        last = result;
    }
    last
}
