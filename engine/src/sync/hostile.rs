//! A `Conn` fed what a hostile peer sends: the harness of the `conn` fuzz target
//! (engine/fuzz/fuzz_targets/conn.rs), kept here so that `cargo test` replays the target's
//! corpus through the same code. The input is cut into chunks, each raw bytes, a frame around
//! the bytes (so the decoder passes messages through to the session), a timeout or a local
//! change; the connection is driven after each, and every effect is answered as a store would.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use super::{
    Conn, Effect, End, HeadItem, HeadSet, Ingested, Limits, Local, LocalError, LogIndex, LogSet, Message, Offer,
};
use crate::log::{Entry, EntryId, sign_entry};

/// Most bytes a fed connection may send: past it, a peer made us send without bound.
pub const MAX_SENT: usize = 64 << 20;

/// What feeding did.
#[derive(Debug)]
pub struct Fed {
    pub end: Option<End>,
    pub bytes_out: usize,
    /// Messages that reached the connection whole (framed chunks that decode).
    pub messages_in: usize,
    pub synced: bool,
}

struct Fixed {
    logs: BTreeMap<[u8; 32], Vec<Entry>>,
}

impl LogIndex for Fixed {
    fn id_at(&self, author: &[u8; 32], seq: u64) -> Result<Option<EntryId>, LocalError> {
        let i = usize::try_from(seq).ok().and_then(|s| s.checked_sub(1));
        Ok(i.and_then(|i| self.logs.get(author).and_then(|l| l.get(i))).map(|e| e.id))
    }
}

impl Local for Fixed {
    fn is_allowed(&self, _peer: &[u8; 32]) -> bool {
        true
    }
    fn offer(&self, _peer: &[u8; 32]) -> Result<Offer, LocalError> {
        Ok(Offer { logs: LogSet::new(self.logs.keys().copied().collect()), covers_held: false })
    }
    fn accept(&self) -> Result<LogSet, LocalError> {
        Ok(LogSet::new(self.logs.keys().copied().chain([[9; 32]]).collect()))
    }
    fn grants(&self, _peer: &[u8; 32]) -> Option<Message> {
        Some(Message::Grant(vec![[1; 16]]))
    }
    fn heads(&self, offer: &Offer) -> Result<Arc<HeadSet>, LocalError> {
        let held = self.logs.iter().filter(|(a, _)| offer.logs.contains(*a));
        Ok(Arc::new(HeadSet::from_items(
            held.filter_map(|(a, l)| l.last().map(|e| HeadItem { author: *a, seq: e.header().seq, id: e.id })),
        )))
    }
    fn sendable_seq(&self, author: &[u8; 32]) -> Option<u64> {
        self.logs.get(author).map(|l| l.len() as u64)
    }
    fn read(&self, author: &[u8; 32], from: u64, limit: usize) -> Result<Vec<Entry>, LocalError> {
        let l = self.logs.get(author).map(Vec::as_slice).unwrap_or_default();
        Ok(l.iter().filter(|e| e.header().seq >= from).take(limit).cloned().collect())
    }
    fn introduction(&self, _peer: &[u8; 32]) -> Option<Message> {
        None
    }
}

/// One log of three entries by key `[5; 32]`, signed once for every input.
fn fixed() -> &'static Fixed {
    static LOCAL: OnceLock<Fixed> = OnceLock::new();
    LOCAL.get_or_init(|| {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let mut log: Vec<Entry> = Vec::new();
        for i in 0..3u64 {
            let prev = log.last().map(|e| (e.header().seq, e.id));
            log.push(sign_entry(&key, prev, 1_000 + i, 16, vec![i as u8; 8]));
        }
        Fixed { logs: BTreeMap::from([(key.verifying_key().to_bytes(), log)]) }
    })
}

/// Feeds `data` to a connection: its first byte picks initiator (bit 0 clear) and live (bit 1
/// clear); then chunks, each a header byte (length `head >> 2`, kind `head & 3`: 0 raw bytes,
/// 1 a framed message, 2 a timeout that many seconds later, 3 a local change).
///
/// # Panics
/// If the connection sends more than [`MAX_SENT`] bytes: the property the target checks.
pub fn feed(data: &[u8]) -> Fed {
    let local = fixed();
    let Some((&mode, mut rest)) = data.split_first() else {
        return Fed { end: None, bytes_out: 0, messages_in: 0, synced: false };
    };
    let mut conn = Conn::new([7; 32], mode & 1 == 0, mode & 2 == 0, Limits::default(), 0);
    let (mut now, mut out, mut messages_in) = (0u64, 0usize, 0usize);
    conn.drive(local, now);
    while !rest.is_empty() && conn.end().is_none() {
        let (&head, tail) = rest.split_first().unwrap_or((&0, &[]));
        let len = usize::from(head >> 2).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        rest = next;
        match head & 3 {
            0 => conn.handle_input(chunk, now),
            1 => {
                messages_in += usize::from(Message::decode(chunk).is_ok());
                let mut framed = (chunk.len() as u32).to_be_bytes().to_vec();
                framed.extend_from_slice(chunk);
                conn.handle_input(&framed, now);
            }
            2 => {
                now += 1_000 * u64::from(head >> 2);
                conn.handle_timeout(now);
            }
            _ => conn.handle_changed(None),
        }
        conn.drive(local, now);
        while let Some(effect) = conn.poll_effect() {
            match effect {
                Effect::Ingest(entries) => {
                    let accepted = entries.len().min(2);
                    conn.handle_ingested(Ok(Ingested { accepted, misbehaviour: None }), local);
                }
                Effect::Introduce { .. } => conn.handle_introduced(Ok(false), local),
                Effect::Grants(_) => conn.handle_granted(Ok(())),
                Effect::Welcome { .. } => conn.handle_welcomed(Ok(())),
            }
            conn.drive(local, now);
        }
        while let Some(bytes) = conn.poll_transmit(local, now) {
            out += bytes.len();
            conn.handle_sent(now);
            assert!(out < MAX_SENT, "a peer made us send without bound");
        }
    }
    Fed { end: conn.end().cloned(), bytes_out: out, messages_in, synced: conn.outcome.synced }
}
