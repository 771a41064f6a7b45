//! Writing: local appends (sign, chain, store) and ingest of foreign entries (validate, detect
//! forks, store). Both end in one atomic batch and one journal fsync.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;

use super::{Head, Store, StoreError};
use super::{chats, keys};
use crate::codec::{self, Blob};
use crate::log::{
    ChainPoint, Entry, ForkProof, MAX_PAYLOAD, ValidationError, check_link, check_payload, sign_entry, verify_many,
    verify_signature,
};
use crate::projection::{Projection, TrustView};

/// One log's stretch of ingest candidates `[start, end)`, and the structural failure that ended
/// it with the number of entries skipped after it.
type Run = ([u8; 32], usize, usize, Option<(Rejection, usize)>);

/// One entry refused by ingest, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub author: [u8; 32],
    pub seq: u64,
    pub error: ValidationError,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub accepted: usize,
    /// Entries already held (same id at the same position).
    pub duplicates: usize,
    /// The first refused entry of each log that had one; entries after it were not considered.
    pub rejected: Vec<Rejection>,
    /// Entries skipped because an earlier entry of the same log was refused.
    pub skipped: usize,
    /// Authors newly convicted of equivocation by this ingest.
    pub forks: Vec<[u8; 32]>,
    /// Entries held back (`ahead`): per log, the refused one and those after it in this call,
    /// for a caller to offer again once the clock reaches them (their signatures are checked
    /// then).
    pub held: Vec<Entry>,
}

impl IngestReport {
    /// Adds what a later ingest of the same batch (a second round, a next chunk) did.
    pub fn merge(&mut self, more: IngestReport) {
        self.accepted += more.accepted;
        self.duplicates += more.duplicates;
        self.skipped += more.skipped;
        self.rejected.extend(more.rejected);
        self.forks.extend(more.forks);
        self.held.extend(more.held);
    }

    /// What a connection needs to know of this ingest at `now_ms`: how many were taken, the
    /// first refusal no honest peer causes, and the entries held back with how long until the
    /// first of them is taken.
    pub fn summary(&self, now_ms: u64) -> crate::sync::Ingested {
        let due = self.held.iter().map(|e| crate::clock::due_ms(e.header().timestamp)).min();
        crate::sync::Ingested {
            accepted: self.accepted,
            misbehaviour: self
                .rejected
                .iter()
                .find(|r| crate::sync::misbehaviour(&r.error))
                .map(|r| format!("seq {}: {}", r.seq, r.error)),
            held: self.held.clone(),
            held_for_ms: due.map_or(0, |d| d.saturating_sub(now_ms).max(1)),
        }
    }
}

/// Entries signed for one log and not yet stored ([`Store::sign_append`]).
pub struct Signed {
    author: [u8; 32],
    /// The head they follow.
    after: Option<ChainPoint>,
    clock_before: crate::clock::Hlc,
    clock: crate::clock::Hlc,
    entries: Vec<Entry>,
}

impl Store {
    /// Remembers what the next append's sealed payload says (this device sealed it), so the
    /// chats projection need not open it again.
    pub fn note_plaintext(&mut self, payload: &[u8], plaintext: Vec<u8>, content_key: [u8; 32]) {
        self.known_plaintext.insert(*blake3::hash(payload).as_bytes(), (plaintext, content_key));
    }

    /// The reader's agreement secrets, to look for content keys outside the node lock
    /// ([`crate::messaging::view::content_key_of`], then [`Store::note_opened`]).
    pub fn reader_secrets(&self) -> Option<Vec<(x25519_dalek::StaticSecret, [u8; 32])>> {
        self.reader.as_ref().map(|r| r.agreements.clone())
    }

    /// Remembers content keys looked for with `secrets_used` (their public keys) for the next
    /// ingest: the chats projection takes them instead of agreeing keys again under the lock.
    pub fn note_opened(&mut self, secrets_used: Vec<[u8; 32]>, keys: crate::messaging::view::ContentKeys) {
        self.opened = (secrets_used, keys);
    }

    /// Signs and appends entries to the log of `key`, atomically and durably. Returns them.
    pub fn append(
        &mut self,
        key: &SigningKey,
        items: Vec<(u16, Vec<u8>)>,
        now_ms: u64,
    ) -> Result<Vec<Entry>, StoreError> {
        let signed = self.sign_append(key, items, now_ms)?;
        self.append_signed(signed)?.ok_or_else(|| StoreError::Corrupt("a fresh signing went stale".into()))
    }

    /// Signs entries for the log of `key` without storing them: reads only, so it can run
    /// while others read (the engine signs a group of sends under the read lock).
    /// [`Store::append_signed`] stores them if nothing moved that log or the clock meanwhile.
    pub fn sign_append(&self, key: &SigningKey, items: Vec<(u16, Vec<u8>)>, now_ms: u64) -> Result<Signed, StoreError> {
        let author = key.verifying_key().to_bytes();
        if let Some((_, p)) = items.iter().find(|(_, p)| p.len() > MAX_PAYLOAD as usize) {
            return Err(ValidationError::Oversize { size: p.len() as u64, limit: MAX_PAYLOAD }.into());
        }
        let after = self.head_cache.get(&author).map(Head::point);
        let (clock_before, mut clock) = (self.clock, self.clock);
        let mut at = after;
        let mut entries = Vec::with_capacity(items.len());
        for (kind, payload) in items {
            let ts = clock.tick(now_ms, at.map_or(0, |p| p.timestamp));
            let e = sign_entry(key, at.map(|p| (p.seq, p.id)), ts, kind, payload);
            at = Some(ChainPoint::of(&e));
            entries.push(e);
        }
        Ok(Signed { author, after, clock_before, clock, entries })
    }

    /// Whether entries signed by [`Store::sign_append`] still follow their log's head and the
    /// clock they were stamped with.
    pub fn is_fresh(&self, signed: &Signed) -> bool {
        self.head_cache.get(&signed.author).map(Head::point) == signed.after && self.clock == signed.clock_before
    }

    /// Stores entries signed by [`Store::sign_append`], atomically and durably; `None` (nothing
    /// written) if the log's head or the clock moved since they were signed: sign again.
    pub fn append_signed(&mut self, signed: Signed) -> Result<Option<Vec<Entry>>, StoreError> {
        if !self.is_fresh(&signed) {
            return Ok(None);
        }
        let Signed { author, clock, entries, .. } = signed;
        if self.forked.contains(&author) {
            return Err(ValidationError::Forked.into());
        }
        self.clock = clock;
        if let Some(first) = entries.first() {
            // Until the group's fsync, peers must not see these: a crash could let us sign
            // other entries at the same positions (a fork of our own making).
            self.sync.note_own(author, first.header().seq);
        }
        self.commit(&entries, Vec::new())?;
        Ok(Some(entries))
    }

    /// Validates and stores entries received from elsewhere. Idempotent; entries may come in any
    /// order and mix logs. Forks are recorded as proofs and freeze the log. An entry stamped
    /// more than [`crate::clock::MAX_AHEAD_MS`] past `now_ms` is held back (`ahead`) until the
    /// clock catches up; `now_ms` 0 means there is no clock to judge by (a repair, an audit).
    pub fn ingest(&mut self, entries: Vec<Entry>, now_ms: u64) -> Result<IngestReport, StoreError> {
        self.ingest_round(entries, now_ms, 1, &BTreeSet::new())
    }

    /// [`Store::ingest`] for entries whose signatures were already verified (by
    /// [`crate::log::verify_many`], outside any lock): those in `verified` are not verified
    /// again; every other candidate is. The outcome is the same as `ingest`'s.
    pub fn ingest_preverified(
        &mut self,
        entries: Vec<Entry>,
        now_ms: u64,
        verified: &BTreeSet<crate::log::EntryId>,
    ) -> Result<IngestReport, StoreError> {
        self.ingest_round(entries, now_ms, 1, verified)
    }

    /// One round; a second round judges the second entry of a position against the first.
    /// There is never a third: what is still deferred then is skipped (an honest peer never
    /// sends it; a later session brings what is real).
    fn ingest_round(
        &mut self,
        entries: Vec<Entry>,
        now_ms: u64,
        round: u32,
        verified: &BTreeSet<crate::log::EntryId>,
    ) -> Result<IngestReport, StoreError> {
        let mut report = IngestReport::default();
        let mut by_author: BTreeMap<[u8; 32], Vec<Entry>> = BTreeMap::new();
        for e in entries {
            by_author.entry(e.header().author.0).or_default().push(e);
        }
        let mut candidates: Vec<Entry> = Vec::new();
        // Per log: its candidates' range, and the structural failure that ended it, if any (reported
        // only if no earlier entry fails its signature).
        let mut runs: Vec<Run> = Vec::new();
        let mut forks: Vec<([u8; 32], ForkProof)> = Vec::new();
        let mut deferred: Vec<Entry> = Vec::new();
        let mut refused: Vec<Entry> = Vec::new();
        // Per log, what `ahead` held back (handed back only if nothing before it is forged).
        let mut held: BTreeMap<[u8; 32], Vec<Entry>> = BTreeMap::new();

        for (author, mut list) in by_author {
            list.sort_by_key(|e| e.header().seq);
            list.dedup_by(|a, b| a.id == b.id);
            // At most two different entries per position are weighed (enough for a fork
            // proof); more from one batch are dropped unread, so a peer cannot make ingest
            // recurse or work quadratically with many forgeries of one seq.
            let before = list.len();
            let mut last: Option<(u64, usize)> = None;
            list.retain(|e| {
                let seq = e.header().seq;
                let n = match last {
                    Some((s, n)) if s == seq => n + 1,
                    _ => 1,
                };
                last = Some((seq, n));
                n <= 2
            });
            report.skipped += before - list.len();
            let mut rest = list.into_iter();
            if self.forked.contains(&author) {
                let n = rest.len();
                report.rejected.push(Rejection { author, seq: 0, error: ValidationError::Forked });
                report.skipped += n.saturating_sub(1);
                continue;
            }
            let stored = self.head_cache.get(&author).map(Head::point);
            let mut at = stored;
            let start = candidates.len();
            let mut ended = None;
            // A device its user revoked signs nothing valid after the revocation's point.
            let revoked_after = self.trust.revoked_after(&crate::identity::DeviceId(crate::codec::Bytes(author)));
            while let Some(e) = rest.next() {
                let seq = e.header().seq;
                if seq == 0 {
                    let expected = at.map_or(1, |p| p.seq + 1);
                    ended = Some((
                        Rejection { author, seq, error: ValidationError::WrongSeq { expected, found: 0 } },
                        rest.len(),
                    ));
                    break;
                }
                if at.is_some_and(|p| seq <= p.seq) {
                    if stored.is_some_and(|p| seq <= p.seq) {
                        // A position we hold: the same entry again, or an equivocation.
                        let held = self
                            .get_at(&author, seq)?
                            .ok_or_else(|| StoreError::Corrupt(format!("log has a gap at seq {seq}")))?;
                        if held.id == e.id {
                            report.duplicates += 1;
                            continue;
                        }
                        if let Err(err) = verify_signature(&e) {
                            report.rejected.push(Rejection { author, seq, error: err });
                            report.skipped += rest.len();
                            break;
                        }
                        forks
                            .push((author, ForkProof { first: Blob(held.signed_bytes), second: Blob(e.signed_bytes) }));
                        report.rejected.push(Rejection { author, seq, error: ValidationError::Fork });
                        report.skipped += rest.len();
                        break;
                    }
                    // Two different entries for one new position in this batch: store the first
                    // now and judge the second against it in a second round.
                    deferred.push(e);
                    deferred.extend(rest.by_ref());
                    break;
                }
                if let Some(last_seq) = revoked_after.filter(|n| seq > *n) {
                    ended = Some((Rejection { author, seq, error: ValidationError::Revoked { last_seq } }, rest.len()));
                    // Not stored, but the trust statements they carry count (refused.rs).
                    // Each costs a signature check: a few per log are plenty (a revoked device
                    // writes a statement or two), and a peer cannot make us verify a flood.
                    refused.push(e);
                    refused.extend(rest.by_ref().take(super::refused::EXAMINED_PER_LOG - 1));
                    break;
                }
                let step = if e.payload.is_none() {
                    Err(ValidationError::Malformed("entry without payload".into()))
                } else {
                    check_link(at.as_ref(), e.header())
                        .and_then(|()| check_payload(e.header(), e.payload.as_deref()))
                        .and_then(|()| check_not_ahead(e.header().timestamp, now_ms))
                };
                match step {
                    Ok(()) => {
                        at = Some(ChainPoint::of(&e));
                        candidates.push(e);
                    }
                    Err(mut err) => {
                        // Held back only if really signed: a forgery stamped ahead is refused
                        // as one, not excused as a fast clock.
                        if matches!(err, ValidationError::Ahead { .. }) {
                            match if verified.contains(&e.id) { Ok(()) } else { verify_signature(&e) } {
                                Ok(()) => {
                                    held.insert(author, std::iter::once(e).chain(rest.clone()).collect());
                                }
                                Err(bad) => err = bad,
                            }
                        }
                        ended = Some((Rejection { author, seq, error: err }, rest.len()));
                        break;
                    }
                }
            }
            runs.push((author, start, candidates.len(), ended));
        }

        // Signatures last, in bulk across all logs.
        let bad = {
            // Only what was not verified before (outside the lock) is verified here.
            let todo: Vec<usize> = (0..candidates.len()).filter(|&i| !verified.contains(&candidates[i].id)).collect();
            let refs: Vec<&Entry> = todo.iter().map(|&i| &candidates[i]).collect();
            let mut bad: Vec<usize> = verify_many(&refs, self.threads).into_iter().map(|k| todo[k]).collect();
            bad.sort_unstable();
            bad
        };
        let mut accepted: Vec<Entry> = Vec::with_capacity(candidates.len());
        let mut candidates = candidates.into_iter();
        for (author, start, end, ended) in runs {
            let first_bad = bad.iter().copied().find(|&i| i >= start && i < end);
            let keep = first_bad.unwrap_or(end) - start;
            accepted.extend(candidates.by_ref().take(keep));
            match (first_bad, ended) {
                (Some(i), ended) => {
                    let e = candidates.next();
                    report.rejected.push(Rejection {
                        author,
                        seq: e.map_or(0, |e| e.header().seq),
                        error: ValidationError::BadSignature,
                    });
                    let after = end - i - 1;
                    report.skipped += after + ended.map_or(0, |(_, n)| n + 1);
                    candidates.by_ref().take(after).for_each(drop);
                }
                (None, Some((rejection, skipped))) => {
                    report.rejected.push(rejection);
                    report.skipped += skipped;
                    report.held.extend(held.remove(&author).unwrap_or_default());
                }
                (None, None) => {}
            }
        }
        for e in &accepted {
            self.clock.observe(e.header().timestamp, now_ms);
        }
        report.accepted = accepted.len();
        report.forks = forks.iter().map(|(a, _)| *a).collect();
        self.commit(&accepted, forks)?;
        self.keep_refused_statements(&refused)?;

        if !deferred.is_empty() && round >= 2 {
            report.skipped += deferred.len();
        } else if !deferred.is_empty() {
            report.merge(self.ingest_round(deferred, now_ms, round + 1, verified)?);
        }
        Ok(report)
    }

    /// Writes validated entries (in chain order per log) and fork proofs in one batch, then fsyncs.
    fn commit(&mut self, entries: &[Entry], forks: Vec<([u8; 32], ForkProof)>) -> Result<(), StoreError> {
        // Content keys noted for this write, spent by it. Those looked for with other secrets
        // than the reader's now (a rotation came between) are looked for again.
        let (used, opened) = std::mem::take(&mut self.opened);
        if entries.is_empty() && forks.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        let mut heads: BTreeMap<[u8; 32], Head> = BTreeMap::new();
        let mut next_lognum = self.next_lognum;
        // Cloned only when an entry may change it: a clone per write cost as much as the rest
        // of the write once a node knows a few hundred people.
        let mut trust = std::borrow::Cow::Borrowed(&self.trust);
        let mut trust_changed = false;
        let mut contacts_changed = false;
        let mut new_messages = Vec::new();
        let mut marks = super::read_marks::MarkStage::new(self.reader.as_ref(), self.early_notes());
        let mut points = BTreeMap::new();
        let mut summaries = std::collections::BTreeSet::new();
        let same = self.reader.as_ref().is_some_and(|r| r.agreements.iter().map(|(_, p)| *p).eq(used.iter().copied()));
        let opened = same.then_some(&opened);
        for e in entries {
            let h = e.header();
            let author = h.author.0;
            let lognum = match heads.get(&author).or_else(|| self.head_cache.get(&author)) {
                Some(head) => head.lognum,
                None => {
                    let n = next_lognum;
                    next_lognum =
                        next_lognum.checked_add(1).ok_or_else(|| StoreError::Corrupt("more than 2^32 logs".into()))?;
                    batch.insert(&self.lognums, n.to_be_bytes().to_vec(), author.to_vec());
                    n
                }
            };
            let payload = e.payload.as_deref().unwrap_or_default();
            batch.insert(
                &self.entries,
                keys::entry_key(&author, h.seq).to_vec(),
                keys::entry_value(&e.signed_bytes, payload),
            );
            // The content key this write keeps for the entry goes into its `ids` row.
            let mut kept = None;
            heads.insert(author, Head { lognum, seq: h.seq, id: e.id, timestamp: h.timestamp, moved: 0 });
            if TrustView::folds(h.kind) {
                trust_changed |= trust.to_mut().apply(e);
            }
            if let Some(reader) = &self.reader {
                use crate::messaging::view::Known;
                // Found by the payload hash the header carries (checked against the payload
                // when the entry was validated or signed): hashing the payload again cost a
                // blake3 per message of a bulk send.
                let known = e.payload.as_ref().and_then(|_| self.known_plaintext.get(&h.payload_hash.0));
                let fresh = opened.and_then(|o| o.get(&e.id));
                let known = match (known, fresh) {
                    (Some((p, k)), _) => Known::Sealed(p, *k),
                    (None, Some(Ok(k))) => Known::Opened(Some(*k)),
                    // Only an entry held before can have a kept key (a rebuild, a re-fold).
                    (None, fresh) if e.header().kind == crate::payload::KIND_SEALED => match self.kept_key(&e.id)? {
                        Some(k) => Known::Key(k),
                        None if matches!(fresh, Some(Err(crate::messaging::SealError::NotForUs))) => {
                            Known::Opened(None)
                        }
                        None => Known::Nothing,
                    },
                    (None, _) => Known::Nothing,
                };
                let (mut rows, key) = crate::messaging::view::rows_known(e, reader, &trust, known);
                rows.retain(|(k, _)| chats::not_yet_staged(&mut summaries, k));
                kept = key.filter(|_| !matches!(known, Known::Key(_)));
                // A contact noted (here or by another of our devices) changes who may connect;
                // a group's members change the grants we give.
                contacts_changed |= rows.iter().any(|(k, _)| matches!(k.first(), Some(b'c' | b'g')));
                let ours =
                    |d: &crate::identity::DeviceId| trust.user(&reader.user).is_some_and(|u| u.devices.contains_key(d));
                let locate = |id: &[u8; 32]| self.place_of(id);
                let st = chats::Stage { chats: &self.chats, views: &self.views, reader, locate: &locate, ours: &ours };
                let fresh = chats::stage_rows(&mut batch, &st, &mut marks, (author, h.seq), rows)?;
                self.ack_points.stage(&mut batch, &self.views, &mut points, &fresh);
                new_messages.extend(fresh);
            }
            let id = e.id.as_bytes();
            batch.insert(&self.ids, keys::id_key(id, lognum, h.seq).to_vec(), keys::id_value(id, kept.as_ref()));
        }
        // Each log's move takes the next position of the order (section 8.9), in the same
        // batch as its head, so the order on disk is the order of what is stored.
        let first = self.moves.next();
        for (head, at) in heads.values_mut().zip(first..) {
            head.moved = at;
        }
        for (author, head) in &heads {
            batch.insert(&self.heads, author.to_vec(), codec::encode(head));
            batch.insert(&self.views, keys::view_pos_key(TrustView::NAME, author), head.seq.to_be_bytes().to_vec());
            if self.reader.is_some() {
                batch.insert(&self.views, keys::view_pos_key(chats::VIEW, author), head.seq.to_be_bytes().to_vec());
            }
        }
        if contacts_changed && !trust_changed {
            self.sync.peers_changed();
        }
        if trust_changed {
            // Our own devices may connect: the allow-list depends on the trust view.
            self.sync.peers_changed();
            batch.insert(&self.views, keys::view_state_key(TrustView::NAME), codec::encode(&*trust));
        }
        for (author, proof) in &forks {
            batch.insert(&self.forks, author.to_vec(), proof.encode());
        }
        let noted_early = marks.finish(&mut batch, &self.views);
        self.sync.guard(batch.commit())?;
        // Committed batches are visible to readers; keep the caches in step before the fsync,
        // whose failure leaves the outcome unknown (spec/log.md, "Durability").
        // A session still reading the old set keeps it; the store then writes a copy.
        let set = std::sync::Arc::make_mut(&mut self.head_set);
        for (author, head) in &heads {
            set.set(crate::sync::HeadItem { author: *author, seq: head.seq, id: head.id });
            self.moves.moved_at(author, head.moved);
        }
        set.settle();
        self.head_cache.extend(heads);
        self.next_lognum = next_lognum;
        if let std::borrow::Cow::Owned(t) = trust {
            self.trust = t;
        }
        self.forked.extend(forks.iter().map(|(a, _)| *a));
        self.new_messages.extend(new_messages);
        self.ack_points.apply(points);
        if noted_early {
            self.noted_early();
        }
        self.sync.note_written(entries.iter().map(|e| e.header().author.0));
        self.known_plaintext.clear();
        self.sync_now()?;
        if !self.sync.grouped {
            // Synced on its own: what it signed may leave at once.
            self.sync.synced_alone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

/// Refuses a timestamp too far past the local clock: taken as it is, it would pin its message
/// last in the chat and its chat first in the list for as long as it is ahead. Held, not
/// judged: the same entry is accepted once the clock has caught up.
fn check_not_ahead(timestamp: u64, now_ms: u64) -> Result<(), ValidationError> {
    if now_ms > 0 && crate::clock::too_far_ahead(timestamp, now_ms) {
        return Err(ValidationError::Ahead { ahead_ms: crate::clock::ahead_ms(timestamp, now_ms) });
    }
    Ok(())
}
