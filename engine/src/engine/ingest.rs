//! Entries from elsewhere, stored by the writer in chunks, each its own commit: between chunks
//! the writer can let readers (sessions, front ends) take the node lock, so a large batch
//! from a peer (up to 50k entries, most of a second of work when they are sealed messages)
//! never freezes them for its whole length.
//!
//! The outcome is the one [`crate::store::Store::ingest_preverified`] gives for the whole
//! batch: entries go in log order, the two entries of one position stay in one chunk (a fork
//! is judged on the pair), and a log refused or held back in one chunk is not tried again in
//! the next ones (its later entries are skipped or held, as in one call). A large batch comes
//! in pieces ([`pieces`], each its own job, verified while the one before is stored) that share
//! those marks ([`Marks`]): the same outcome again.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::EngineError;
use crate::log::{Entry, EntryId};
use crate::messaging::view::ContentKeys;
use crate::store::{IngestReport, Store};

/// Each chunk is sized, from the pace of the chunks before, to hold the lock about this long
/// while readers wait…
const CHUNK_TIME: Duration = Duration::from_millis(5);
/// …and this long while none do: every commit costs (heads, order, caches), and cut into
/// 5 ms chunks a cold sync of 100k entries ran 6–8 % slower. Not longer: a reader that comes
/// just after a chunk began waits for all of it, and at 50 ms the flood's p99 (sync bench)
/// was 10–94 ms against 6–16 ms at 15 ms, with the cold sync as fast within the noise.
const ALONE_CHUNK_TIME: Duration = Duration::from_millis(15);
/// The first chunk (a sealed message takes 25–70 µs, a plain entry a few).
const FIRST_CHUNK: usize = 256;
const MIN_CHUNK: usize = 16;

/// Answers the ingest's caller once every chunk is stored and visible.
pub(crate) type IngestReply = Box<dyn FnOnce(Result<IngestReport, EngineError>) + Send>;

/// What the chunks of one batch so far found, kept across its pieces.
#[derive(Default)]
pub(crate) struct Marks {
    /// Logs refused in an earlier chunk: their later entries are skipped.
    refused: BTreeSet<[u8; 32]>,
    /// Logs held back (ahead of the clock) in an earlier chunk: their later entries are held
    /// (these logs are among the refused too: a held entry is reported as refused, `ahead`).
    held: BTreeSet<[u8; 32]>,
    /// Seconds per entry of the chunks so far, once one has run.
    pace: Option<f64>,
}

/// Cuts a batch into pieces of about `size` entries in log order, never parting the two
/// entries of one position; stored one after another with shared [`Marks`], they give the
/// outcome of one ingest. The engine verifies the next piece while the writer stores one.
pub(crate) fn pieces(mut entries: Vec<Entry>, size: usize) -> Vec<Vec<Entry>> {
    sort_in_log_order(&mut entries);
    if entries.len() <= size {
        return vec![entries];
    }
    let mut out = Vec::with_capacity(entries.len() / size.max(1) + 1);
    let pos = |e: &Entry| (e.header().author.0, e.header().seq);
    let mut rest = entries.into_iter().peekable();
    while rest.peek().is_some() {
        let mut piece: Vec<Entry> = Vec::with_capacity(size.min(rest.len()));
        while let Some(e) = rest.next_if(|e| piece.len() < size || piece.last().is_some_and(|l| pos(l) == pos(e))) {
            piece.push(e);
        }
        out.push(piece);
    }
    out
}

/// Stable: of two entries at one position the first sent stays first, as in one call.
fn sort_in_log_order(entries: &mut [Entry]) {
    entries.sort_by(|a, b| (&a.header().author.0, a.header().seq).cmp(&(&b.header().author.0, b.header().seq)));
}

/// An ingest under way: what is left, in reverse log order (the next chunk is split off the
/// end), and what the chunks so far did.
pub(crate) struct Ingest {
    rest: Vec<Entry>,
    verified: BTreeSet<EntryId>,
    /// The content keys found outside the lock, with the public keys of the secrets used.
    opened: Option<(Vec<[u8; 32]>, ContentKeys)>,
    report: IngestReport,
    /// Shared by the pieces of one batch ([`pieces`]).
    marks: Arc<Mutex<Marks>>,
    /// A fixed chunk size instead (tests).
    fixed: Option<usize>,
    reply: Option<IngestReply>,
}

impl Ingest {
    #[cfg(test)]
    pub(crate) fn new(
        mut entries: Vec<Entry>,
        verified: BTreeSet<EntryId>,
        opened: Option<(Vec<[u8; 32]>, ContentKeys)>,
        reply: IngestReply,
    ) -> Ingest {
        sort_in_log_order(&mut entries);
        Ingest::piece(entries, verified, opened, Arc::default(), reply)
    }

    /// One piece of a batch cut by [`pieces`] (so in log order already); `marks` is the batch's.
    pub(crate) fn piece(
        mut entries: Vec<Entry>,
        verified: BTreeSet<EntryId>,
        opened: Option<(Vec<[u8; 32]>, ContentKeys)>,
        marks: Arc<Mutex<Marks>>,
        reply: IngestReply,
    ) -> Ingest {
        // Each chunk is split off the end and turned around.
        entries.reverse();
        Ingest {
            rest: entries,
            verified,
            opened,
            report: IngestReport::default(),
            marks,
            fixed: None,
            reply: Some(reply),
        }
    }

    /// Answers the caller with `e`; nothing more is stored.
    pub(crate) fn refuse(mut self, e: EngineError) {
        self.answer(Err(e));
    }

    /// Answers the caller, once.
    fn answer(&mut self, r: Result<IngestReport, EngineError>) {
        if let Some(reply) = self.reply.take() {
            reply(r);
        }
    }

    /// Stores the next chunk, a short one if readers wait (`contended`). `true` once the
    /// ingest has ended (every chunk stored, or one failed) and its caller has been answered.
    pub(crate) fn run_chunk(&mut self, store: &mut Store, contended: bool) -> bool {
        let marks = self.marks.clone();
        // Only the writer takes it, one piece after another: poisoned only by a panic of an
        // earlier piece's store, after which the rest of the batch is refused.
        let Ok(mut marks) = marks.lock() else {
            self.rest.clear();
            self.answer(Err(EngineError::Panicked("an earlier piece of this ingest panicked".into())));
            return true;
        };
        let size = match (self.fixed, marks.pace) {
            (Some(n), _) => n,
            (None, None) => FIRST_CHUNK,
            (None, Some(pace)) => {
                let budget = if contended { CHUNK_TIME } else { ALONE_CHUNK_TIME };
                ((budget.as_secs_f64() / pace.max(1e-9)).min(1e9) as usize).max(MIN_CHUNK)
            }
        };
        let chunk = self.next_chunk(size.max(1));
        if !chunk.is_empty() {
            let n = chunk.len() as f64;
            let t = Instant::now();
            match self.store(store, chunk, &mut marks) {
                Ok(()) => {
                    let per = t.elapsed().as_secs_f64() / n;
                    // Smoothed: one chunk slowed by a preemption does not shrink the next ten.
                    marks.pace = Some(marks.pace.map_or(per, |p| 0.5 * p + 0.5 * per));
                }
                Err(e) => {
                    self.rest.clear();
                    self.answer(Err(e));
                    return true;
                }
            }
        }
        if !self.rest.is_empty() {
            return false;
        }
        let report = std::mem::take(&mut self.report);
        self.answer(Ok(report));
        true
    }

    /// The next entries in log order, at most `size` unless that would part the two entries
    /// of one position.
    fn next_chunk(&mut self, size: usize) -> Vec<Entry> {
        let mut at = self.rest.len().saturating_sub(size);
        let pos = |e: &Entry| (e.header().author.0, e.header().seq);
        while at > 0 && pos(&self.rest[at - 1]) == pos(&self.rest[at]) {
            at -= 1;
        }
        let mut chunk = self.rest.split_off(at);
        chunk.reverse();
        chunk
    }

    fn store(&mut self, store: &mut Store, chunk: Vec<Entry>, marks: &mut Marks) -> Result<(), EngineError> {
        let mut take = Vec::with_capacity(chunk.len());
        for e in chunk {
            let author = e.header().author.0;
            if marks.held.contains(&author) {
                // As in one call: counted as skipped, and handed back with the held one.
                self.report.skipped += 1;
                self.report.held.push(e);
            } else if marks.refused.contains(&author) {
                self.report.skipped += 1;
            } else {
                take.push(e);
            }
        }
        if take.is_empty() {
            return Ok(());
        }
        if let Some((used, keys)) = &mut self.opened {
            let mine: ContentKeys = take.iter().filter_map(|e| keys.remove_entry(&e.id)).collect();
            store.note_opened(used.clone(), mine);
        }
        let r = store.ingest_preverified(take, crate::clock::wall_ms(), &self.verified)?;
        marks.refused.extend(r.rejected.iter().map(|x| x.author));
        marks.refused.extend(r.forks.iter().copied());
        marks.held.extend(r.held.iter().map(|e| e.header().author.0));
        self.report.merge(r);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
