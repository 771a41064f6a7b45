//! Sends sealed on many threads are appended together. Each send queues its payload and a
//! writer job; the first of those jobs to run appends everything queued in one commit (one
//! batch, one head move, one set of view positions), and each send is answered once the
//! group that holds its entry is durable. Order is the order of queueing.

use std::sync::Mutex;
use std::sync::mpsc::SyncSender;

use super::writer::{self, Completion, Job};
use super::{EngineError, Shared};
use crate::log::Entry;
use crate::messenger::Sealing;

/// Where a queued send hears of its entry.
pub(crate) type Reply = SyncSender<Result<Entry, EngineError>>;

/// Sealed payloads waiting for the writer.
#[derive(Default)]
pub(crate) struct Appends(Mutex<Vec<(Sealing, Reply)>>);

impl Appends {
    pub(crate) fn push(&self, sealing: Sealing, reply: Reply) {
        match self.0.lock() {
            Ok(mut q) => q.push((sealing, reply)),
            // Only a panic while pushing or taking poisons it; say so rather than hang.
            Err(_) => {
                let _ = reply.send(Err(EngineError::Panicked("the append queue is poisoned".into())));
            }
        }
    }

    fn take(&self) -> Vec<(Sealing, Reply)> {
        self.0.lock().map(|mut q| std::mem::take(&mut *q)).unwrap_or_default()
    }
}

/// The writer job that appends whatever is queued when it runs (perhaps nothing: an earlier
/// job took it).
pub(crate) fn job(shared: std::sync::Arc<Shared>) -> Job {
    Box::new(move |node| -> Completion {
        let (sealings, replies): (Vec<Sealing>, Vec<Reply>) = shared.appends.take().into_iter().unzip();
        if sealings.is_empty() {
            return Box::new(|_| {});
        }
        let outcome = node
            .and_then(|n| writer::run_caught(n, |n| n.append_sealed_many(sealings)))
            .and_then(|r| r.map_err(|e| EngineError::Unavailable(e.to_string())));
        match outcome {
            Ok(results) => Box::new(move |durable: Result<(), EngineError>| {
                let durable = durable.map_err(|e| e.to_string());
                for (reply, r) in replies.into_iter().zip(results) {
                    let answer = match (r, &durable) {
                        (Err(e), _) => Err(e.into()),
                        (Ok(entry), Ok(())) => Ok(entry),
                        (Ok(_), Err(why)) => Err(EngineError::Unavailable(why.clone())),
                    };
                    let _ = reply.send(answer);
                }
            }),
            Err(e) => {
                let why = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(match &e {
                        EngineError::Panicked(m) => EngineError::Panicked(m.clone()),
                        _ => EngineError::Unavailable(why.clone()),
                    }));
                }
                Box::new(|_| {})
            }
        }
    })
}
