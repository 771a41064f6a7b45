//! Acknowledgement points: per log, the first seq at which this device may still owe an
//! acknowledgement (spec/messaging.md, section 10.4). Local bookkeeping in the views keyspace,
//! so a restart finds what a crash left unacknowledged without scanning every chat.
//!
//! One row per log with messages waiting, set by the batch that stores the first of them and
//! moved (or removed) after the acks that cover them are appended: a flood of messages costs
//! two rows per ack pass, where a mark per message cost two rows per message.

use std::collections::{BTreeMap, HashMap};

use super::chats::{NewMessage, arr, new_message};
use super::{Store, StoreError};

/// + author device (32) → seq (u64 BE).
const FROM: &[u8] = b"ack-from\0";
/// Prefix of the per-message marks that points replaced (read once, to convert them).
pub(super) const OLD_MARKS: &[u8] = b"ack-pending\0";

fn point_key(log: &[u8; 32]) -> Vec<u8> {
    [FROM, &log[..]].concat()
}

/// The points as stored, kept in memory (one per log with messages waiting: few).
#[derive(Default)]
pub(super) struct AckPoints(HashMap<[u8; 32], u64>);

impl AckPoints {
    pub(super) fn load(views: &fjall::Keyspace) -> Result<AckPoints, StoreError> {
        let mut points = HashMap::new();
        for item in views.prefix(FROM) {
            let (k, v) = item.into_inner()?;
            // Bookkeeping, not history: a damaged point costs acks not sent again after a
            // crash, never the store's opening.
            match (k.get(FROM.len()..).and_then(arr::<32>), arr::<8>(&v)) {
                (Some(log), Some(seq)) => points.insert(log, u64::from_be_bytes(seq)),
                _ => {
                    tracing::warn!("an acknowledgement point does not decode; ignored");
                    continue;
                }
            };
        }
        Ok(AckPoints(points))
    }

    /// Stages a point for each log that gets its first message waiting for an ack in this batch
    /// (`staged`: what the batch already set). Messages of unknown authors are never
    /// acknowledged, so they set none.
    pub(super) fn stage(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        views: &fjall::Keyspace,
        staged: &mut BTreeMap<[u8; 32], u64>,
        fresh: &[NewMessage],
    ) {
        for m in fresh.iter().filter(|m| m.user.is_some()) {
            self.stage_at(batch, views, staged, m.log, m.seq);
        }
    }

    /// Stages `log`'s point at `seq` unless it has one at or before it.
    fn stage_at(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        views: &fjall::Keyspace,
        staged: &mut BTreeMap<[u8; 32], u64>,
        log: [u8; 32],
        seq: u64,
    ) {
        if staged.get(&log).or_else(|| self.0.get(&log)).is_none_or(|&p| seq < p) {
            staged.insert(log, seq);
            batch.insert(views, point_key(&log), seq.to_be_bytes().to_vec());
        }
    }

    /// Takes in what a committed batch staged.
    pub(super) fn apply(&mut self, staged: BTreeMap<[u8; 32], u64>) {
        self.0.extend(staged);
    }
}

impl Store {
    /// Messages from others that this device may not have acknowledged (after a restart): each
    /// log's messages from its point on. Some may have been acknowledged already (a crash
    /// between the acks and the point's move); acknowledging them again is harmless.
    pub fn unacknowledged(&self) -> Result<Vec<NewMessage>, StoreError> {
        let mut out = Vec::new();
        let Some(reader) = &self.reader else { return Ok(out) };
        for (log, from) in &self.ack_points.0 {
            for e in self.read_log(log, *from, usize::MAX)? {
                let at = (e.header().author.0, e.header().seq);
                let rows = self.kept_rows(&e)?;
                out.extend(rows.iter().filter_map(|(k, v)| new_message(k, reader, v, at)).filter(|m| m.user.is_some()));
            }
        }
        Ok(out)
    }

    /// Every log's point.
    pub fn ack_points(&self) -> BTreeMap<[u8; 32], u64> {
        self.ack_points.0.iter().map(|(l, s)| (*l, *s)).collect()
    }

    /// After acks were appended: each log in `covered` (with the seq from which the pass
    /// covered it) gets its point at the first message still waiting — in `left` (what this
    /// pass could not acknowledge) or stored since the pass took its messages — or loses it.
    /// A point before where the pass began stays: the messages between (left by a crash, not
    /// yet read by the start's pass) are not acknowledged. Written after the acks' batch, in
    /// the same journal: a crash between them leaves the point behind, never ahead.
    pub fn settle_ack_points(
        &mut self,
        covered: &BTreeMap<[u8; 32], u64>,
        left: &[NewMessage],
    ) -> Result<(), StoreError> {
        let mut first: HashMap<[u8; 32], u64> = HashMap::new();
        for m in left.iter().chain(&self.new_messages).filter(|m| m.user.is_some()) {
            let p = first.entry(m.log).or_insert(m.seq);
            *p = (*p).min(m.seq);
        }
        let mut batch = self.db.batch();
        let mut moved = Vec::new();
        for (&log, &from) in covered {
            let was = self.ack_points.0.get(&log).copied();
            let now = first.get(&log).copied();
            if was == now || was.is_some_and(|p| p < from) {
                continue;
            }
            match now {
                Some(seq) => batch.insert(&self.views, point_key(&log), seq.to_be_bytes().to_vec()),
                None => batch.remove(&self.views, point_key(&log)),
            }
            moved.push((log, now));
        }
        if moved.is_empty() {
            return Ok(());
        }
        batch.commit()?;
        for (log, now) in moved {
            match now {
                Some(seq) => self.ack_points.0.insert(log, seq),
                None => self.ack_points.0.remove(&log),
            };
        }
        Ok(())
    }

    /// Turns the per-message marks of a store from before points into points (the lowest seq
    /// of each log's marked messages), in `batch`. Marks of messages no longer held go.
    pub(super) fn points_from_marks(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        staged: &mut BTreeMap<[u8; 32], u64>,
    ) -> Result<(), StoreError> {
        for item in self.views.prefix(OLD_MARKS) {
            let k = item.key()?;
            batch.remove(&self.views, k.to_vec());
            let Some(id) = k.get(OLD_MARKS.len()..).and_then(arr::<32>) else { continue };
            let Some(e) = self.get(&crate::log::EntryId(crate::codec::Bytes(id)))? else { continue };
            self.ack_points.stage_at(batch, &self.views, staged, e.header().author.0, e.header().seq);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
