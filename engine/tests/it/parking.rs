//! Parking (spec/sync.md, section 4): entries of a log we do not accept yet wait for the
//! ingest beside them, which may bring the certificate that admits them — but at most
//! `PARK_LIMIT` of them, so a peer cannot make a session hold any number.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use libra_engine::log::{Entry, EntryId};
use libra_engine::sync::{
    Conn, Effect, HeadSet, Ingested, Limits, Local, LocalError, LogIndex, LogSet, Message, Offer, PARK_LIMIT, frame,
};

use crate::util::{chain, key};

/// Holds nothing; accepts log `a`, and log `b` once `admit_b` is set (a certificate arrived).
struct Gate {
    a: [u8; 32],
    b: [u8; 32],
    admit_b: AtomicBool,
}

impl LogIndex for Gate {
    fn id_at(&self, _: &[u8; 32], _: u64) -> Result<Option<EntryId>, LocalError> {
        Ok(None)
    }
}

impl Local for Gate {
    fn is_allowed(&self, _: &[u8; 32]) -> bool {
        true
    }
    fn offer(&self, _: &[u8; 32]) -> Result<Offer, LocalError> {
        Ok(Offer { logs: LogSet::default(), covers_held: false })
    }
    fn accept(&self) -> Result<LogSet, LocalError> {
        let mut set = std::collections::BTreeSet::from([self.a]);
        if self.admit_b.load(Ordering::SeqCst) {
            set.insert(self.b);
        }
        Ok(Arc::new(set))
    }
    fn grants(&self, _: &[u8; 32]) -> Option<Message> {
        None
    }
    fn heads(&self, _: &Offer) -> Result<Arc<HeadSet>, LocalError> {
        Ok(Arc::new(HeadSet::new()))
    }
    fn sendable_seq(&self, _: &[u8; 32]) -> Option<u64> {
        None
    }
    fn read(&self, _: &[u8; 32], _: u64, _: usize) -> Result<Vec<Entry>, LocalError> {
        Ok(Vec::new())
    }
    fn introduction(&self, _: &[u8; 32]) -> Option<Message> {
        None
    }
}

fn entries_frame(es: &[Entry]) -> Vec<u8> {
    frame(&Message::Entries(es.iter().map(Entry::encode).collect()))
}

/// Runs what the session asks of us; returns the sizes of the ingests it asked for.
fn answer(conn: &mut Conn, local: &Gate) -> Vec<usize> {
    let mut ingests = Vec::new();
    conn.drive(local, 0);
    while let Some(effect) = conn.poll_effect() {
        if let Effect::Ingest(es) = effect {
            ingests.push(es.len());
            conn.handle_ingested(Ok(Ingested { accepted: es.len(), misbehaviour: None, ..Ingested::default() }), local);
            conn.drive(local, 0);
        }
    }
    ingests
}

#[test]
fn a_peer_cannot_park_more_than_the_limit() {
    let (ka, kb) = (key("parking a"), key("parking b"));
    let (a, b) = (chain(&ka, 2), chain(&kb, PARK_LIMIT + 900));
    let local = Gate { a: ka.verifying_key().to_bytes(), b: kb.verifying_key().to_bytes(), admit_b: false.into() };
    let mut conn = Conn::new([7; 32], false, false, Limits::default(), 0);
    conn.drive(&local, 0);
    // One entry we accept, and many of a log we do not accept yet: only the first is ingested,
    // the rest wait; the ingest admits nothing, so they are parked — the first PARK_LIMIT.
    let mut first = vec![a[0].clone()];
    first.extend_from_slice(&b[..PARK_LIMIT / 2]);
    conn.handle_input(&entries_frame(&first), 0);
    conn.handle_input(&entries_frame(&b[PARK_LIMIT / 2..]), 0);
    assert_eq!(answer(&mut conn, &local), vec![1]);
    assert!(conn.end().is_none(), "{:?}", conn.end());
    // The next ingest brings the certificate of b: what was parked goes in, and no more.
    local.admit_b.store(true, Ordering::SeqCst);
    conn.handle_input(&entries_frame(&a[1..]), 0);
    assert_eq!(answer(&mut conn, &local), vec![1, PARK_LIMIT], "the parked entries, at most PARK_LIMIT");
}
