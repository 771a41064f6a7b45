//! Sealing on the engine's threads, not the caller's: a send is queued at once as a [`Slot`]
//! and sealed by one thread per core, so a single caller with many messages (a bot, an import,
//! a long paste) uses every core, and its messages reach the writer in large groups. The writer
//! takes each group's slots in order ([`Slot::take`]), sealing itself any that no pool thread
//! has started: a slot never waits for a pool that is busy or gone.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};

use super::EngineError;
use crate::messaging::Body;
use crate::messenger::{SealPlan, Sealing};

/// One message to seal, and then its sealing.
pub(crate) struct Slot {
    state: Mutex<State>,
    sealed: Condvar,
}

enum State {
    Queued(SealPlan, Body),
    /// A thread is sealing it.
    Sealing,
    Done(Result<Sealing, EngineError>),
    /// The writer has taken the result.
    Taken,
}

fn poisoned() -> EngineError {
    // Sealing runs under `catch_unwind`, so the lock is never held by a panicking thread.
    EngineError::Panicked("a sealing slot's lock was poisoned".into())
}

impl Slot {
    pub(crate) fn new(plan: SealPlan, body: Body) -> Arc<Slot> {
        Arc::new(Slot { state: Mutex::new(State::Queued(plan, body)), sealed: Condvar::new() })
    }

    /// Seals the message here if no thread has started it.
    fn work(&self) {
        let (plan, body) = {
            let Ok(mut s) = self.state.lock() else { return };
            match std::mem::replace(&mut *s, State::Sealing) {
                State::Queued(plan, body) => (plan, body),
                other => {
                    *s = other;
                    return;
                }
            }
        };
        let sealed = catch_unwind(AssertUnwindSafe(|| plan.seal(&body)))
            .map_err(|_| EngineError::Panicked("sealing a message panicked".into()))
            .and_then(|r| r.map_err(EngineError::from));
        if let Ok(mut s) = self.state.lock() {
            *s = State::Done(sealed);
        }
        self.sealed.notify_all();
    }

    /// The sealing, once done: sealed on this thread if no pool thread has started it, else
    /// waited for.
    pub(crate) fn take(&self) -> Result<Sealing, EngineError> {
        self.work();
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        loop {
            match std::mem::replace(&mut *s, State::Taken) {
                State::Done(r) => return r,
                State::Taken => return Err(EngineError::Panicked("a sealing was taken twice".into())),
                other => {
                    *s = other;
                    s = self.sealed.wait(s).map_err(|_| poisoned())?;
                }
            }
        }
    }
}

/// The sealing threads, one per core, fed in order.
pub(crate) struct Pool {
    tx: Mutex<Option<Sender<Arc<Slot>>>>,
    /// Slots handed over and not yet started by a pool thread.
    backlog: Arc<AtomicUsize>,
    size: usize,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Pool {
    pub(crate) fn start(threads: usize) -> Pool {
        let (tx, rx) = std::sync::mpsc::channel::<Arc<Slot>>();
        let rx = Arc::new(Mutex::new(rx));
        let backlog = Arc::new(AtomicUsize::new(0));
        let spawned: Vec<_> = (0..threads.max(1))
            .filter_map(|i| {
                let (rx, backlog) = (rx.clone(), backlog.clone());
                std::thread::Builder::new()
                    .name(format!("libra-seal-{i}"))
                    .spawn(move || work(&rx, &backlog))
                    .inspect_err(|e| tracing::warn!(error = %e, "could not start a sealing thread; the writer seals"))
                    .ok()
            })
            .collect();
        let size = spawned.len();
        Pool { tx: Mutex::new(Some(tx)), backlog, size, threads: Mutex::new(spawned) }
    }

    /// Hands a slot to the pool, or seals it on the calling thread: when it is alone
    /// (`writer_idle`: a hand-over would only add a thread's wake-up to its latency), and when
    /// every pool thread already has one waiting (so that many callers seal in parallel as
    /// before and the queue stays short). Without a pool the writer seals it when it takes it.
    pub(crate) fn submit(&self, slot: Arc<Slot>, writer_idle: bool) {
        if writer_idle || self.backlog.load(Ordering::Relaxed) >= self.size {
            slot.work();
            return;
        }
        if let Ok(tx) = self.tx.lock()
            && let Some(tx) = tx.as_ref()
        {
            self.backlog.fetch_add(1, Ordering::Relaxed);
            if tx.send(slot).is_err() {
                self.backlog.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Ends the threads once they have sealed what is queued (the writer would seal it anyway).
    pub(crate) fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let threads = self.threads.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a sealing thread panicked");
            }
        }
    }
}

fn work(rx: &Mutex<Receiver<Arc<Slot>>>, backlog: &AtomicUsize) {
    loop {
        // The lock is held only while waiting for the next slot, never while sealing.
        let next = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match next {
            Ok(slot) => {
                backlog.fetch_sub(1, Ordering::Relaxed);
                slot.work();
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SealPlan {
        SealPlan::for_tests(vec![
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([7u8; 32])).to_bytes(),
        ])
    }

    fn body(i: usize) -> Body {
        Body::Text {
            chat: crate::messaging::ChatId(crate::codec::Bytes([1; 16])),
            text: format!("m{i}"),
            reply_to: None,
        }
    }

    #[test]
    fn every_slot_is_sealed_once_in_order_with_or_without_the_pool() {
        for threads in [0, 1, 3] {
            let pool = Pool::start(threads.max(1));
            if threads == 0 {
                pool.close();
            }
            let slots: Vec<_> = (0..40).map(|i| Slot::new(plan(), body(i))).collect();
            for s in &slots {
                pool.submit(s.clone(), false);
            }
            for (i, s) in slots.iter().enumerate() {
                let sealing = s.take().expect("sealed");
                assert_eq!(sealing.plaintext, body(i).encode(), "each slot holds its own message");
                assert!(!sealing.payload.is_empty());
                assert!(s.take().is_err(), "a slot gives its sealing once");
            }
            pool.close();
        }
    }

    #[test]
    fn a_message_too_long_to_seal_is_an_error_not_a_hang() {
        let pool = Pool::start(2);
        let long = Body::Text {
            chat: crate::messaging::ChatId(crate::codec::Bytes([1; 16])),
            text: "x".repeat(crate::log::MAX_PAYLOAD as usize + 1),
            reply_to: None,
        };
        let slot = Slot::new(plan(), long);
        pool.submit(slot.clone(), false);
        assert!(slot.take().is_err());
        pool.close();
    }
}
