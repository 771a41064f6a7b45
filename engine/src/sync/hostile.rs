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

/// Feeds `data` to a connection: its first byte is the mode, then chunks, each a header byte
/// (length `head >> 2`, kind `head & 3`: 0 raw bytes, 1 a framed message, 2 a timeout that many
/// seconds later, 3 a local event).
///
/// Mode bits: 0 clear for the initiator, 1 clear for a live session; 2 set makes a local
/// event's first byte pick it (0 changes unknown, 1 changes to the logs the rest names, 2 the
/// peer's end of stream, 3 the link is alive, 4 a local close), where clear it is always
/// "changes unknown"; 3 set makes the effects fail or come back odd (a store error, a
/// misbehaving batch, an introduction taken); 4 set gives the node an introduction to send.
///
/// # Panics
/// If the connection sends more than [`MAX_SENT`] bytes: the property the target checks.
pub fn feed(data: &[u8]) -> Fed {
    let Some((&mode, mut rest)) = data.split_first() else {
        return Fed { end: None, bytes_out: 0, messages_in: 0, synced: false };
    };
    let local = &Node { fixed: fixed(), introduces: mode & 16 != 0 };
    let (events, odd) = (mode & 4 != 0, mode & 8 != 0);
    let mut conn = Conn::new([7; 32], mode & 1 == 0, mode & 2 == 0, Limits::default(), 0);
    let (mut now, mut out, mut messages_in, mut effects) = (0u64, 0usize, 0usize, 0usize);
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
            _ => local_event(&mut conn, if events { chunk } else { &[] }, now),
        }
        conn.drive(local, now);
        while let Some(effect) = conn.poll_effect() {
            effects += 1;
            // With odd answers, every other effect fails as a store that cannot write would.
            answer(&mut conn, effect, local, odd, odd && effects % 2 == 0);
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

/// Answers an effect as a store would: a batch of entries takes at most two; `odd` makes a
/// batch of three or more misbehaviour and an introduction taken; `fail` fails it.
fn answer(conn: &mut Conn, effect: Effect, local: &impl Local, odd: bool, fail: bool) {
    let failed = || LocalError("the store could not write".into());
    match effect {
        Effect::Ingest(entries) => {
            let accepted = entries.len().min(2);
            let misbehaviour = (odd && entries.len() > 2).then(|| "seq 3: bad signature".to_owned());
            let r = if fail { Err(failed()) } else { Ok(Ingested { accepted, misbehaviour, ..Ingested::default() }) };
            conn.handle_ingested(r, local);
        }
        Effect::Introduce { .. } => conn.handle_introduced(if fail { Err(failed()) } else { Ok(odd) }, local),
        Effect::Grants(_) => conn.handle_granted(if fail { Err(failed()) } else { Ok(()) }),
        Effect::Welcome { .. } => conn.handle_welcomed(if fail { Err(failed()) } else { Ok(()) }),
    }
}

/// One local event (mode bit 2): what the driver tells a connection besides bytes and time.
fn local_event(conn: &mut Conn, chunk: &[u8], now: u64) {
    let Some((&which, rest)) = chunk.split_first() else {
        conn.handle_changed(None);
        return;
    };
    match which % 5 {
        0 => conn.handle_changed(None),
        1 => {
            // Each byte a stored log: bit 0 picks ours or a stranger's, the rest its new head.
            let author = fixed().logs.keys().next().copied().unwrap_or_default();
            let logs: Vec<([u8; 32], u64)> =
                rest.iter().map(|&b| (if b & 1 == 0 { author } else { [9; 32] }, u64::from(b >> 1))).collect();
            conn.handle_changed(Some(&logs));
        }
        2 => conn.handle_eof(now),
        3 => conn.handle_alive(now),
        _ => conn.close("closed by this node".into()),
    }
}

/// The fixed logs, with or without an introduction to send.
struct Node {
    fixed: &'static Fixed,
    introduces: bool,
}

impl LogIndex for Node {
    fn id_at(&self, author: &[u8; 32], seq: u64) -> Result<Option<EntryId>, LocalError> {
        self.fixed.id_at(author, seq)
    }
}

impl Local for Node {
    fn is_allowed(&self, peer: &[u8; 32]) -> bool {
        self.fixed.is_allowed(peer)
    }
    fn offer(&self, peer: &[u8; 32]) -> Result<Offer, LocalError> {
        self.fixed.offer(peer)
    }
    fn accept(&self) -> Result<LogSet, LocalError> {
        self.fixed.accept()
    }
    fn grants(&self, peer: &[u8; 32]) -> Option<Message> {
        self.fixed.grants(peer)
    }
    fn heads(&self, offer: &Offer) -> Result<Arc<HeadSet>, LocalError> {
        self.fixed.heads(offer)
    }
    fn sendable_seq(&self, author: &[u8; 32]) -> Option<u64> {
        self.fixed.sendable_seq(author)
    }
    fn read(&self, author: &[u8; 32], from: u64, limit: usize) -> Result<Vec<Entry>, LocalError> {
        self.fixed.read(author, from, limit)
    }
    fn introduction(&self, peer: &[u8; 32]) -> Option<Message> {
        if self.introduces { self.introduction_answer([3; 16]) } else { self.fixed.introduction(peer) }
    }
    fn introduction_answer(&self, token: [u8; 16]) -> Option<Message> {
        let card = crate::messaging::ContactCard { name: "fuzz".into(), certs: Vec::new() };
        self.introduces.then_some(Message::Introduce { token, card })
    }
    fn awaits_card(&self, _peer: &[u8; 32]) -> bool {
        self.introduces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer holding the fixed log and three more entries: its side of a session with the
    /// harness's connection (live initiator), as the raw bytes it sends, cut into chunks.
    fn peer_with_more() -> Vec<u8> {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let mut log = fixed().logs.values().next().cloned().unwrap_or_default();
        for i in 3..6u64 {
            let prev = log.last().map(|e| (e.header().seq, e.id));
            log.push(sign_entry(&key, prev, 1_000 + i, 16, vec![i as u8; 8]));
        }
        let peer = Fixed { logs: BTreeMap::from([(key.verifying_key().to_bytes(), log)]) };
        let ours = &Node { fixed: fixed(), introduces: false };
        let (mut a, mut b) = (
            Conn::new([7; 32], true, true, Limits::default(), 0),
            Conn::new([8; 32], false, true, Limits::default(), 0),
        );
        let mut sent = Vec::new();
        for now in 0..64 {
            a.drive(ours, now);
            while let Some(e) = a.poll_effect() {
                answer(&mut a, e, ours, false, false);
            }
            a.drive(ours, now);
            while let Some(bytes) = a.poll_transmit(ours, now) {
                b.handle_input(&bytes, now);
            }
            b.drive(&peer, now);
            while let Some(e) = b.poll_effect() {
                answer(&mut b, e, &peer, false, false);
            }
            b.drive(&peer, now);
            while let Some(bytes) = b.poll_transmit(&peer, now) {
                sent.extend_from_slice(&bytes);
                a.handle_input(&bytes, now);
            }
        }
        let mut seed = vec![0u8];
        for c in sent.chunks(63) {
            seed.push((c.len() as u8) << 2);
            seed.extend_from_slice(c);
        }
        seed
    }

    #[test]
    fn the_recorded_peer_brings_entries_and_its_seed_is_committed() {
        let made = peer_with_more();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/conn/pair-more-entries");
        if std::env::var_os("LIBRA_WRITE_SEEDS").is_some() {
            std::fs::write(&path, &made).expect("write the seed");
        }
        assert_eq!(std::fs::read(&path).expect("the seed"), made, "the seed is the one made here");
        let fed = feed(&made);
        assert!(fed.end.is_none() && fed.synced, "{fed:?}");
        // Odd answers: the second effect (the first batch of entries, after the Grant) fails
        // as a full disk would, and ends the session on a local error, not the peer's.
        let mut odd = made.clone();
        odd[0] |= 8;
        let fed = feed(&odd);
        assert_eq!(fed.end, Some(End::Local("local store: the store could not write".into())), "{fed:?}");
    }

    #[test]
    fn local_events_reach_the_connection_only_in_their_mode() {
        let event = |mode: u8, which: u8| feed(&[mode, (1 << 2) | 3, which]).end;
        assert_eq!(event(0, 4), None, "without mode bit 2 every local event is 'changes unknown'");
        assert_eq!(event(4, 4), Some(End::Local("closed by this node".into())));
        assert_eq!(event(4, 2), Some(End::Done), "the peer's end of stream before anything");
        for which in [0, 1, 3] {
            assert_eq!(event(4, which), None, "event {which}");
        }
        // With an introduction to send, the node sends more before anything arrives.
        let with = feed(&[16, (1 << 2) | 3, 0]).bytes_out;
        let without = feed(&[0, (1 << 2) | 3, 0]).bytes_out;
        assert!(with > without, "{with} vs {without}");
    }
}
