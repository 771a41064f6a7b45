//! Bundles imported out of order (spec/bundle.md, section 3, step 4): entries that start past
//! their log's head wait in the store until the entries before them arrive, so several bundles
//! give the same state in any order.

use std::collections::BTreeMap;

use anyhow::Result;

use super::Cx;
use crate::log::Entry;
use crate::store::IngestReport;

/// Entries taken from the waiting ones per ingest call.
const TAKE: usize = 5_000;

/// Splits entries of wanted logs into those to ingest now and those kept waiting: per log, in
/// order, everything from the first entry that starts past what the store and the entries
/// before it hold, or that is stamped too far ahead of the clock for ingest to take it yet
/// (`ahead`, spec/log.md 7.2). Entries kept waiting have verified signatures; the others (and
/// any beyond the bound) go to ingest, which refuses them precisely. Returns the entries to
/// ingest.
pub(super) fn split(cx: &Cx, entries: Vec<Entry>) -> Result<Vec<Entry>> {
    let now_ms = crate::clock::wall_ms();
    let mut next: BTreeMap<[u8; 32], u64> = BTreeMap::new();
    let (mut now, mut gap) = (Vec::with_capacity(entries.len()), Vec::new());
    let mut broken: std::collections::BTreeSet<[u8; 32]> = std::collections::BTreeSet::new();
    for e in entries {
        let (a, seq) = (e.header().author.0, e.header().seq);
        let n = match next.get(&a) {
            Some(n) => *n,
            None => {
                let n = cx.read(|node| Ok(node.store.head(&a).map_or(0, |h| h.seq)))? + 1;
                next.insert(a, n);
                n
            }
        };
        if broken.contains(&a) || seq > n || too_far_ahead(&e, now_ms) {
            broken.insert(a);
            gap.push(e);
        } else {
            next.insert(a, n.max(seq + 1));
            now.push(e);
        }
    }
    if gap.is_empty() {
        return Ok(now);
    }
    let refs: Vec<&Entry> = gap.iter().collect();
    let threads = crate::par::cores();
    let bad: std::collections::BTreeSet<usize> = crate::log::verify_many(&refs, threads).into_iter().collect();
    let (mut good, mut forged) = (Vec::new(), Vec::new());
    for (i, e) in gap.into_iter().enumerate() {
        if bad.contains(&i) { forged.push(e) } else { good.push(e) }
    }
    let kept = cx.write(|n| Ok(n.store.keep_waiting(&good)?))?;
    now.extend(forged);
    now.extend(good.into_iter().skip(kept));
    Ok(now)
}

/// Ingests every waiting entry its log now reaches, and forgets those its log already holds
/// (or that were refused when taken), until nothing moves. Returns what ingest did and how
/// many entries still wait.
pub(super) fn settle(cx: &Cx, ingest: impl Fn(Vec<Entry>) -> Result<IngestReport>) -> Result<(IngestReport, usize)> {
    let mut total = IngestReport::default();
    loop {
        let (logs, _) = cx.read(|n| Ok(n.store.waiting()?))?;
        let mut moved = false;
        for (author, seqs) in logs {
            let head = cx.read(|n| Ok(n.store.head(&author).map_or(0, |h| h.seq)))?;
            let held: Vec<u64> = seqs.iter().copied().filter(|s| *s <= head).collect();
            cx.write(|n| Ok(n.store.drop_waiting(&author, &held)?))?;
            if !seqs.contains(&(head + 1)) {
                continue;
            }
            let run = cx.read(|n| Ok(n.store.waiting_entries(&author, head + 1, TAKE)?))?;
            let run: Vec<Entry> = run
                .into_iter()
                .enumerate()
                .take_while(|(i, e)| e.header().seq == head + 1 + *i as u64)
                .map(|(_, e)| e)
                .collect();
            // Stamped too far ahead for ingest to take yet: the rest of the log waits on.
            let now_ms = crate::clock::wall_ms();
            let run: Vec<Entry> = run.into_iter().take_while(|e| !too_far_ahead(e, now_ms)).collect();
            if run.is_empty() {
                continue;
            }
            let seqs: Vec<u64> = run.iter().map(|e| e.header().seq).collect();
            let rep = ingest(run)?;
            let after = cx.read(|n| Ok(n.store.head(&author).map_or(0, |h| h.seq)))?;
            // Taken, or refused when taken: either way they wait no longer (a refusal is in
            // the report). Those after a refusal were skipped: they are dropped too, since
            // their log cannot reach them through the refused one.
            cx.write(|n| Ok(n.store.drop_waiting(&author, &seqs)?))?;
            moved |= after > head;
            total.accepted += rep.accepted;
            total.duplicates += rep.duplicates;
            total.skipped += rep.skipped;
            total.rejected.extend(rep.rejected);
            total.forks.extend(rep.forks);
        }
        if !moved {
            let (logs, _) = cx.read(|n| Ok(n.store.waiting()?))?;
            return Ok((total, logs.values().map(Vec::len).sum()));
        }
    }
}

/// Whether ingest would hold `e` back (`ahead`, spec/log.md 7.2): such an entry waits here
/// instead of being refused and forgotten, and goes in at a later import once the clock has
/// caught up.
fn too_far_ahead(e: &Entry, now_ms: u64) -> bool {
    crate::clock::too_far_ahead(e.header().timestamp, now_ms)
}
