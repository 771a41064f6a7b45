//! Two nodes in memory driving two sessions to completion: the reference driver for the tests,
//! the sync vectors and the benchmarks (like quinn-proto's test `Pair`). No sockets, no store.

use std::collections::{BTreeMap, BTreeSet};

use super::{HeadItem, HeadSet, LogIndex, Message, Session, SyncError};
use crate::log::{ChainPoint, Entry, EntryId, validate_next};

/// A node's logs in memory, with the store's acceptance rules.
#[derive(Debug, Clone, Default)]
pub struct MemLogs {
    pub logs: BTreeMap<[u8; 32], Vec<Entry>>,
    pub forked: BTreeSet<[u8; 32]>,
}

impl LogIndex for MemLogs {
    fn id_at(&self, author: &[u8; 32], seq: u64) -> Result<Option<EntryId>, super::LocalError> {
        let Some(i) = usize::try_from(seq).ok().and_then(|s| s.checked_sub(1)) else { return Ok(None) };
        Ok(self.logs.get(author).and_then(|l| l.get(i)).map(|e| e.id))
    }
}

impl MemLogs {
    pub fn heads(&self) -> HeadSet {
        HeadSet::from_items(
            self.logs
                .iter()
                .filter_map(|(a, l)| l.last().map(|e| HeadItem { author: *a, seq: e.header().seq, id: e.id })),
        )
    }

    pub fn entry_count(&self) -> usize {
        self.logs.values().map(Vec::len).sum()
    }

    /// Accepts the next entry of a chain (validated when `validate`), notes forks, ignores the rest.
    pub fn ingest(&mut self, e: Entry, validate: bool) {
        let author = e.header().author.0;
        if self.forked.contains(&author) {
            return;
        }
        let log = self.logs.entry(author).or_default();
        let seq = usize::try_from(e.header().seq).unwrap_or(usize::MAX);
        if seq >= 1 && seq <= log.len() {
            if log[seq - 1].id != e.id {
                self.forked.insert(author);
            }
            return;
        }
        if !validate || validate_next(log.last().map(ChainPoint::of).as_ref(), &e).is_ok() {
            log.push(e);
        }
    }

    fn range(&self, author: &[u8; 32], from: u64, to: u64) -> Vec<Vec<u8>> {
        let log = self.logs.get(author).map(Vec::as_slice).unwrap_or_default();
        log.iter().filter(|e| (from..=to).contains(&e.header().seq)).map(Entry::encode).collect()
    }
}

/// Every message of a session in order, with its direction.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// `(sent by the initiator, message bytes)`.
    pub messages: Vec<(bool, Vec<u8>)>,
    /// Reconcile messages sent, both directions.
    pub reconcile_messages: usize,
    /// Bytes on the wire including the 4-byte frame headers.
    pub bytes: usize,
}

impl Transcript {
    /// Round trips of reconciliation: reconcile messages, two per trip.
    pub fn round_trips(&self) -> usize {
        self.reconcile_messages.div_ceil(2)
    }
}

fn turn(node: &MemLogs, sess: &mut Session) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // Fill messages up to half a frame and 512 entries, across transfers, as the network
    // driver does.
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut size = 0;
    while let Some(t) = sess.poll_transfer() {
        for e in node.range(&t.author, t.from, t.to) {
            if (size + e.len() > super::MAX_FRAME / 2 || batch.len() == 512) && !batch.is_empty() {
                out.push(Message::Entries(std::mem::take(&mut batch)).encode());
                size = 0;
            }
            size += e.len() + 5;
            batch.push(e);
        }
    }
    if !batch.is_empty() {
        out.push(Message::Entries(batch).encode());
    }
    sess.transfers_sent();
    while let Some(m) = sess.poll_message() {
        out.push(m.encode());
    }
    out
}

fn deliver(node: &mut MemLogs, sess: &mut Session, wire: &[Vec<u8>], validate: bool) -> Result<(), SyncError> {
    for w in wire {
        match Message::decode(w)? {
            Message::Entries(es) => {
                for e in es {
                    node.ingest(Entry::decode(&e).map_err(|e| SyncError::InvalidEntry(e.to_string()))?, validate);
                }
            }
            other => sess.handle(other, &*node)?,
        }
    }
    Ok(())
}

/// Runs a session between `a` (initiator) and `b` until both are synced.
pub fn run_pair(a: &mut MemLogs, b: &mut MemLogs, validate: bool) -> Result<Transcript, SyncError> {
    run_pair_since(a, b, validate, None, None)
}

/// [`run_pair`] for two nodes that synced before: each side's logs moved since (spec/sync.md,
/// section 8.9).
pub fn run_pair_since(
    a: &mut MemLogs,
    b: &mut MemLogs,
    validate: bool,
    since_a: Option<Vec<[u8; 32]>>,
    since_b: Option<Vec<[u8; 32]>>,
) -> Result<Transcript, SyncError> {
    let mut sa = Session::with_since(a.heads(), true, since_a);
    let mut sb = Session::with_since(b.heads(), false, since_b);
    let mut t = Transcript::default();
    for _ in 0..1024 {
        let wa = turn(a, &mut sa);
        deliver(b, &mut sb, &wa, validate)?;
        let wb = turn(b, &mut sb);
        deliver(a, &mut sa, &wb, validate)?;
        let moved = !(wa.is_empty() && wb.is_empty());
        for (from_a, w) in wa.into_iter().map(|w| (true, w)).chain(wb.into_iter().map(|w| (false, w))) {
            t.bytes += w.len() + 4;
            // Reconcile, Since, SinceAnswer and the sketch's four are the reconciliation's messages.
            t.reconcile_messages += usize::from(matches!(w.get(1), Some(1 | 8..=13)));
            t.messages.push((from_a, w));
        }
        if sa.is_synced() && sb.is_synced() {
            return Ok(t);
        }
        if !moved {
            return Err(SyncError::Protocol("stalled before both sides were synced"));
        }
    }
    Err(SyncError::Protocol("no convergence"))
}

#[cfg(test)]
mod tests;
