//! The sync state machine (spec/sync.md) fed what a hostile peer sends: the input is cut into
//! chunks, each either raw bytes or a frame around the bytes (so the decoder passes messages
//! through to the session), interleaved with timeouts and the driver's answers to every effect.
//! Nothing may panic, and the connection must end or keep a bounded amount queued.
#![no_main]
use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use libra_engine::log::{Entry, EntryId, sign_entry};
use libra_engine::sync::{Conn, Effect, HeadItem, HeadSet, Ingested, Limits, Local, LocalError, LogIndex, LogSet, Message, Offer};

struct Fake {
    logs: BTreeMap<[u8; 32], Vec<Entry>>,
}

impl LogIndex for Fake {
    fn id_at(&self, author: &[u8; 32], seq: u64) -> Result<Option<EntryId>, LocalError> {
        let i = usize::try_from(seq).ok().and_then(|s| s.checked_sub(1));
        Ok(i.and_then(|i| self.logs.get(author).and_then(|l| l.get(i))).map(|e| e.id))
    }
}

impl Local for Fake {
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
    fn heads(&self, offer: &Offer) -> Result<std::sync::Arc<HeadSet>, LocalError> {
        Ok(std::sync::Arc::new(HeadSet::from_items(self.logs.iter().filter(|(a, _)| offer.logs.contains(*a)).filter_map(
            |(a, l)| l.last().map(|e| HeadItem { author: *a, seq: e.header().seq, id: e.id }),
        ))))
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

fn fake() -> Fake {
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let mut log: Vec<Entry> = Vec::new();
    for i in 0..3u64 {
        let prev = log.last().map(|e| (e.header().seq, e.id));
        log.push(sign_entry(&key, prev, 1_000 + i, 16, vec![i as u8; 8]));
    }
    Fake { logs: BTreeMap::from([(key.verifying_key().to_bytes(), log)]) }
}

static LOCAL: std::sync::OnceLock<Fake> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    // Signed once: the logs are the same for every input.
    let local = LOCAL.get_or_init(fake);
    let Some((&mode, mut rest)) = data.split_first() else { return };
    let mut conn = Conn::new([7; 32], mode & 1 == 0, mode & 2 == 0, Limits::default(), 0);
    let mut now = 0u64;
    let mut out = 0usize;
    while !rest.is_empty() && conn.end().is_none() {
        let (&head, tail) = rest.split_first().unwrap_or((&0, &[]));
        let len = usize::from(head >> 2).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        rest = next;
        match head & 3 {
            0 => conn.handle_input(chunk, now),
            1 => {
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
        }
        while let Some(bytes) = conn.poll_transmit(local, now) {
            out += bytes.len();
            conn.handle_sent(now);
            assert!(out < 64 << 20, "a peer made us send without bound");
        }
    }
});
