//! The connection state machine on its own: two `Conn`s over an in-memory byte pipe, each with
//! a test node (`MemLogs` plus what the tests set: who is allowed, what is offered, accepted,
//! introduced). Effects are carried out here as the engine would; time is whatever a test says.

use std::cell::RefCell;

use super::*;
use crate::log::sign_entry;
use crate::sync::LogIndex;
use crate::sync::memory::MemLogs;
use ed25519_dalek::SigningKey;

fn author(k: u8) -> [u8; 32] {
    SigningKey::from_bytes(&[k; 32]).verifying_key().to_bytes()
}

/// Entries `from..=to` of the chain of key `k` (each payload `len` bytes of `k`).
fn chain(k: u8, to: u64, len: usize) -> Vec<Entry> {
    let key = SigningKey::from_bytes(&[k; 32]);
    let mut out: Vec<Entry> = Vec::new();
    for i in 0..to {
        let prev = out.last().map(|e| (e.header().seq, e.id));
        out.push(sign_entry(&key, prev, i + 1, crate::payload::KIND_SEALED, vec![k; len]));
    }
    out
}

fn set(keys: &[u8]) -> LogSet {
    Arc::new(keys.iter().map(|k| author(*k)).collect())
}

fn card() -> ContactCard {
    ContactCard { name: "Carol".into(), certs: Vec::new() }
}

/// A node as a connection sees it. By default it allows everyone, offers what it holds and
/// accepts the logs of keys 1 to 9.
struct Node {
    logs: MemLogs,
    allowed: bool,
    offer: Option<LogSet>,
    accept: LogSet,
    /// Replaces `accept` once an ingest stores something (a certificate that admits logs).
    admits: Option<LogSet>,
    /// Replaces `offer` once an ingest stores something (a contact's card that opens logs to it).
    opens: Option<LogSet>,
    grant: Option<Message>,
    intro: Option<Message>,
    answer: Option<Message>,
    awaits_card: bool,
    introduced: Result<bool, LocalError>,
    /// Per log, the highest seq that may be sent (own writes not yet durable).
    sendable: BTreeMap<[u8; 32], u64>,
    fail_offer: bool,
    /// The order of head moves: (`change_point` now, logs moved after the admission point).
    point: Option<ChangePoint>,
    moved: Option<Vec<[u8; 32]>>,
    synced_at: RefCell<Vec<ChangePoint>>,
    heads: RefCell<Option<Arc<HeadSet>>>,
    /// How often the connection asked what to offer.
    offers: std::cell::Cell<usize>,
    granted: Vec<Vec<[u8; GRANT_TAG]>>,
    introductions: usize,
    welcomed: usize,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            logs: MemLogs::default(),
            allowed: true,
            offer: None,
            accept: set(&[1, 2, 3, 4, 5, 6, 7, 8, 9]),
            admits: None,
            opens: None,
            grant: None,
            intro: None,
            answer: None,
            awaits_card: false,
            introduced: Ok(true),
            sendable: BTreeMap::new(),
            fail_offer: false,
            point: None,
            moved: None,
            synced_at: RefCell::new(Vec::new()),
            heads: RefCell::new(None),
            offers: std::cell::Cell::new(0),
            granted: Vec::new(),
            introductions: 0,
            welcomed: 0,
        }
    }
}

impl Node {
    fn holding(entries: &[Entry]) -> Node {
        let mut n = Node::default();
        n.store(entries);
        n
    }

    /// Stores entries (validated); returns how many were new.
    fn store(&mut self, entries: &[Entry]) -> usize {
        let before = self.logs.entry_count();
        for e in entries {
            self.logs.ingest(e.clone(), true);
        }
        *self.heads.borrow_mut() = None;
        self.logs.entry_count() - before
    }

    fn count(&self, k: u8) -> usize {
        self.logs.logs.get(&author(k)).map_or(0, Vec::len)
    }
}

impl LogIndex for Node {
    fn id_at(&self, author: &[u8; 32], seq: u64) -> Result<Option<crate::log::EntryId>, LocalError> {
        self.logs.id_at(author, seq)
    }
}

impl Local for Node {
    fn is_allowed(&self, _peer: &[u8; 32]) -> bool {
        self.allowed
    }
    fn offer(&self, _peer: &[u8; 32]) -> Result<Offer, LocalError> {
        self.offers.set(self.offers.get() + 1);
        if self.fail_offer {
            return Err(LocalError("offer unreadable".into()));
        }
        let held: LogSet = Arc::new(self.logs.logs.keys().copied().collect());
        Ok(Offer { logs: self.offer.clone().unwrap_or(held), covers_held: self.offer.is_none() })
    }
    fn accept(&self) -> Result<LogSet, LocalError> {
        Ok(self.accept.clone())
    }
    fn grants(&self, _peer: &[u8; 32]) -> Option<Message> {
        self.grant.clone()
    }
    fn heads(&self, offer: &Offer) -> Result<Arc<HeadSet>, LocalError> {
        // The same set while nothing moved, as the store shares it.
        let mut cache = self.heads.borrow_mut();
        let all = cache.get_or_insert_with(|| Arc::new(self.logs.heads())).clone();
        if offer.covers_held {
            return Ok(all);
        }
        Ok(Arc::new(HeadSet::from_items(
            offer.logs.iter().filter_map(|a| all.get(a)).filter(|h| self.sendable_seq(&h.author).is_some()),
        )))
    }
    fn sendable_seq(&self, author: &[u8; 32]) -> Option<u64> {
        let held = self.logs.logs.get(author).map_or(0, |l| l.len() as u64);
        let seq = self.sendable.get(author).map_or(held, |cap| held.min(*cap));
        (seq > 0).then_some(seq)
    }
    fn read(&self, author: &[u8; 32], from: u64, limit: usize) -> Result<Vec<Entry>, LocalError> {
        let top = self.sendable_seq(author).unwrap_or(0);
        let log = self.logs.logs.get(author).map(Vec::as_slice).unwrap_or_default();
        Ok(log.iter().filter(|e| (from..=top).contains(&e.header().seq)).take(limit).cloned().collect())
    }
    fn introduction(&self, _peer: &[u8; 32]) -> Option<Message> {
        self.intro.clone()
    }
    fn introduction_answer(&self, _token: [u8; 16]) -> Option<Message> {
        self.answer.clone()
    }
    fn awaits_card(&self, _peer: &[u8; 32]) -> bool {
        self.awaits_card
    }
    fn change_point(&self) -> Option<ChangePoint> {
        self.point
    }
    fn moved_after(&self, _point: ChangePoint, _limit: usize) -> Option<Vec<[u8; 32]>> {
        self.moved.clone()
    }
    fn note_synced(&self, _peer: &[u8; 32], point: ChangePoint) {
        self.synced_at.borrow_mut().push(point);
    }
}

struct Side {
    conn: Conn,
    node: Node,
    /// The far end has been told that this side's stream ended.
    eof_sent: bool,
}

impl Side {
    /// Carries out the connection's effects as the engine does. Returns whether there were any.
    fn carry(&mut self) -> bool {
        let mut any = false;
        while let Some(effect) = self.conn.poll_effect() {
            any = true;
            match effect {
                Effect::Ingest(es) => {
                    let accepted = self.node.store(&es);
                    if accepted > 0
                        && let Some(a) = self.node.admits.take()
                    {
                        self.node.accept = a;
                    }
                    if accepted > 0
                        && let Some(o) = self.node.opens.take()
                    {
                        self.node.offer = Some(o);
                    }
                    self.conn.handle_ingested(
                        Ok(Ingested { accepted, misbehaviour: None, ..Ingested::default() }),
                        &self.node,
                    );
                }
                Effect::Introduce { .. } => {
                    self.node.introductions += 1;
                    self.conn.handle_introduced(self.node.introduced.clone(), &self.node);
                }
                Effect::Grants(tags) => {
                    self.node.granted.push(tags);
                    self.conn.handle_granted(Ok(()));
                }
                Effect::Welcome { .. } => {
                    self.node.welcomed += 1;
                    self.conn.handle_welcomed(Ok(()));
                }
            }
        }
        any
    }
}

/// Two connections over an in-memory pipe: `a` dialled `b`.
struct Pair {
    a: Side,
    b: Side,
    now: u64,
    /// Every frame `a` sent, decoded.
    from_a: Vec<Message>,
    from_b: Vec<Message>,
}

impl Pair {
    fn new(a: Node, b: Node, live: bool) -> Pair {
        Pair {
            a: Side { conn: Conn::new(author(100), true, live, Limits::default(), 0), node: a, eof_sent: false },
            b: Side { conn: Conn::new(author(101), false, live, Limits::default(), 0), node: b, eof_sent: false },
            now: 0,
            from_a: Vec::new(),
            from_b: Vec::new(),
        }
    }

    /// One side's turn: process input, carry out effects, send what it has.
    fn turn(me: &mut Side, other: &mut Side, log: &mut Vec<Message>, now: u64) -> bool {
        me.conn.drive(&me.node, now);
        let mut moved = me.carry();
        me.conn.drive(&me.node, now);
        while let Some(bytes) = me.conn.poll_transmit(&me.node, now) {
            log.push(decode_frame(&bytes));
            other.conn.handle_input(&bytes, now);
            moved = true;
        }
        let ended = me.conn.end().is_some();
        if (me.conn.poll_finish(now) || ended) && !me.eof_sent {
            me.eof_sent = true;
            other.conn.handle_eof(now);
            moved = true;
        }
        moved
    }

    /// Runs until nothing moves; both may or may not have ended.
    fn run(&mut self) {
        for _ in 0..10_000 {
            let a = Pair::turn(&mut self.a, &mut self.b, &mut self.from_a, self.now);
            let b = Pair::turn(&mut self.b, &mut self.a, &mut self.from_b, self.now);
            if !a && !b {
                return;
            }
            self.now += 1;
        }
        panic!("the pair did not settle");
    }

    fn entries_frames(msgs: &[Message]) -> Vec<usize> {
        msgs.iter().filter_map(|m| if let Message::Entries(es) = m { Some(es.len()) } else { None }).collect()
    }
}

fn decode_frame(bytes: &[u8]) -> Message {
    let len = u32::from_be_bytes(bytes[..4].try_into().expect("header")) as usize;
    assert_eq!(len + 4, bytes.len(), "one frame per transmit");
    Message::decode(&bytes[4..]).expect("a frame we sent decodes")
}

/// The Close a connection sent last, if any.
fn close_code(msgs: &[Message]) -> Option<u16> {
    msgs.iter().rev().find_map(|m| if let Message::Close { code, .. } = m { Some(*code) } else { None })
}

/// A responder allowed to talk to us, started.
fn responder(node: &Node, limits: Limits) -> Conn {
    let mut c = Conn::new(author(100), false, false, limits, 0);
    c.drive(node, 0);
    c
}

/// `c` stays open a millisecond before `at` and ends locally at `at`, for a reason naming `why`.
fn ends_at(c: &mut Conn, at: u64, why: &str) {
    assert_eq!(c.poll_timeout(), Some(at));
    c.handle_timeout(at - 1);
    assert_eq!(c.end(), None, "open before {at}");
    c.handle_timeout(at);
    assert!(matches!(c.end(), Some(End::Local(s)) if s.contains(why)), "{:?}", c.end());
}

fn drain(c: &mut Conn, node: &Node, now: u64) -> Vec<Message> {
    std::iter::from_fn(|| c.poll_transmit(node, now)).map(|b| decode_frame(&b)).collect()
}

#[test]
fn two_nodes_exchange_what_each_lacks_and_both_end_done() {
    let (one, two) = (chain(1, 5, 8), chain(2, 3, 8));
    let mut p = Pair::new(Node::holding(&one), Node::holding(&two), false);
    p.run();
    for side in [&p.a, &p.b] {
        assert_eq!((side.node.count(1), side.node.count(2)), (5, 3));
        assert_eq!(side.conn.end(), Some(&End::Done));
        assert_eq!(side.conn.end().map(End::code), Some(0));
        assert!(side.conn.outcome.synced, "{}", if std::ptr::eq(side, &p.a) { "a" } else { "b" });
        assert!(side.conn.admitted());
    }
    let (oa, ob) = (&p.a.conn.outcome, &p.b.conn.outcome);
    assert_eq!((oa.entries_out, oa.entries_in, ob.entries_out, ob.entries_in), (5, 3, 3, 5));
    assert_eq!(oa.bytes_out, ob.bytes_in);
    assert_eq!(ob.bytes_out, oa.bytes_in);
    assert!(oa.bytes_out > 5 * 8 && ob.bytes_out > 3 * 8);
    assert_eq!(oa.peer, author(100));
    assert!(oa.rounds >= 1);
    let held = BTreeMap::from([(author(1), 5), (author(2), 3)]);
    assert_eq!((&oa.held, &ob.held), (&held, &held), "what each sent before synced and what it took");
    assert_eq!((p.a.conn.behind_by(&p.a.node), p.b.conn.behind_by(&p.b.node)), (0, 0));
    assert!(!p.a.conn.wants_changes(), "a one-shot session takes no changes");
    assert_eq!(close_code(&p.from_a), None);
}

/// Runs `p` until `a` finished its side, never telling `a` that `b`'s stream ended.
fn until_a_finishes(p: &mut Pair) -> u64 {
    for _ in 0..100 {
        p.a.conn.drive(&p.a.node, p.now);
        p.a.carry();
        while let Some(b) = p.a.conn.poll_transmit(&p.a.node, p.now) {
            p.b.conn.handle_input(&b, p.now);
        }
        if p.a.conn.poll_finish(p.now) {
            return p.now;
        }
        p.b.conn.drive(&p.b.node, p.now);
        p.b.carry();
        p.b.conn.drive(&p.b.node, p.now);
        while let Some(b) = p.b.conn.poll_transmit(&p.b.node, p.now) {
            p.a.conn.handle_input(&b, p.now);
        }
        p.now += 1;
    }
    panic!("a never finished");
}

#[test]
fn finish_is_signalled_once_and_the_linger_ends_a_side_whose_peer_never_closes() {
    let mut p = Pair::new(Node::holding(&chain(1, 2, 8)), Node::default(), false);
    let finished = until_a_finishes(&mut p);
    assert!(!p.a.conn.poll_finish(finished), "finish is signalled once");
    assert_eq!(p.a.conn.poll_timeout(), Some(finished + 5_000), "the linger");
    p.a.conn.handle_timeout(finished + 4_999);
    assert_eq!(p.a.conn.end(), None);
    p.a.conn.handle_timeout(finished + 5_000);
    assert_eq!(p.a.conn.end(), Some(&End::Done));
    assert_eq!(p.a.conn.poll_timeout(), None, "an ended connection has no timer");
}

#[test]
fn a_local_close_is_clean_only_once_our_side_finished() {
    let mut p = Pair::new(Node::holding(&chain(1, 2, 8)), Node::default(), false);
    until_a_finishes(&mut p);
    p.a.conn.close("transport lost".into());
    assert_eq!(p.a.conn.end(), Some(&End::Done), "a finished one-shot side is done whatever the stream does");
    p.b.conn.close("transport lost".into());
    assert_eq!(p.b.conn.end(), Some(&End::Local("transport lost".into())), "unfinished: a local end");
    assert_eq!(close_code(&drain(&mut p.b.conn, &p.b.node, 1)), None);
}

#[test]
fn a_stranger_that_does_not_introduce_itself_is_refused() {
    let b = Node { allowed: false, ..Node::default() };
    let mut p = Pair::new(Node::holding(&chain(1, 3, 8)), b, false);
    p.run();
    assert!(!p.b.conn.admitted());
    assert_eq!(p.b.conn.end(), Some(&End::Sync(SyncError::NotAllowed)));
    assert_eq!(close_code(&p.from_b), Some(6));
    assert_eq!(p.a.conn.end().map(End::code), Some(6), "the dialler reads the Close");
    assert!(matches!(p.a.conn.end(), Some(End::Sync(SyncError::PeerClosed { code: 6, .. }))));
    assert_eq!(close_code(&p.from_a), None, "a peer's Close is not answered with one");
    assert_eq!(p.b.node.count(1), 0);
}

#[test]
fn an_introduction_admits_a_stranger_and_is_answered_once() {
    let token = [7; 16];
    let a = Node { intro: Some(Message::Introduce { token, card: card() }), ..Node::holding(&chain(1, 3, 8)) };
    let answer = Message::Introduce { token, card: ContactCard { name: "Bob".into(), certs: Vec::new() } };
    let b = Node { allowed: false, answer: Some(answer.clone()), ..Node::default() };
    let mut p = Pair::new(a, b, false);
    p.run();
    assert_eq!(p.b.node.introductions, 1);
    assert!(p.b.conn.admitted());
    assert_eq!(p.b.node.count(1), 3, "then it syncs");
    assert_eq!(p.b.conn.end(), Some(&End::Done));
    let answers = p.from_b.iter().filter(|m| **m == answer).count();
    assert_eq!(answers, 1, "the responder answers with its card");
    assert!(matches!(p.from_a.first(), Some(Message::Introduce { .. })), "the introduction goes first");
}

#[test]
fn an_introduction_refused_or_unrecorded_ends_the_session() {
    for (introduced, code) in [(Ok(false), 6), (Err(LocalError("disk".into())), 100)] {
        let a = Node { intro: Some(Message::Introduce { token: [1; 16], card: card() }), ..Node::default() };
        let b = Node { allowed: false, introduced, ..Node::default() };
        let mut p = Pair::new(a, b, false);
        p.run();
        assert!(!p.b.conn.admitted());
        assert_eq!(p.b.conn.end().map(End::code), Some(code));
        assert_eq!(close_code(&p.from_b), (code == 6).then_some(6), "a local failure blames nobody");
    }
}

#[test]
fn a_known_peer_that_introduces_itself_again_gets_one_answer() {
    let node = Node { answer: Some(Message::Introduce { token: [3; 16], card: card() }), ..Node::default() };
    let mut c = responder(&node, Limits::default());
    drain(&mut c, &node, 0);
    for _ in 0..2 {
        c.handle_input(&frame(&Message::Introduce { token: [3; 16], card: card() }), 1);
    }
    c.drive(&node, 1);
    let out = drain(&mut c, &node, 1);
    assert_eq!(out.iter().filter(|m| matches!(m, Message::Introduce { .. })).count(), 1);
    assert!(c.poll_effect().is_none(), "an admitted peer's introduction is no effect");
    assert_eq!(c.end(), None);
}

#[test]
fn the_dialler_welcomes_the_card_of_a_short_invite_it_waits_for() {
    for (waits, welcomed) in [(true, 1), (false, 0)] {
        let node = Node { awaits_card: waits, ..Node::default() };
        let mut c = Conn::new(author(100), true, false, Limits::default(), 0);
        c.drive(&node, 0);
        c.handle_input(&frame(&Message::Introduce { token: [3; 16], card: card() }), 1);
        c.drive(&node, 1);
        let mut n = 0;
        while let Some(e) = c.poll_effect() {
            assert!(matches!(e, Effect::Welcome { token, .. } if token == [3; 16]));
            n += 1;
            c.handle_welcomed(Ok(()));
        }
        assert_eq!(n, welcomed);
        assert_eq!(c.end(), None);
    }
    let node = Node { awaits_card: true, ..Node::default() };
    let mut c = Conn::new(author(100), true, false, Limits::default(), 0);
    c.drive(&node, 0);
    c.handle_input(&frame(&Message::Introduce { token: [3; 16], card: card() }), 1);
    c.drive(&node, 1);
    assert!(c.poll_effect().is_some());
    assert_eq!(c.poll_timeout(), None, "waiting on our own write, no peer clock runs");
    c.handle_welcomed(Err(LocalError("disk".into())));
    assert_eq!(c.end().map(End::code), Some(100));
}

#[test]
fn grants_are_stored_once_per_session() {
    let node = Node::default();
    let mut c = responder(&node, Limits::default());
    c.handle_input(&frame(&Message::Grant(vec![[1; GRANT_TAG], [2; GRANT_TAG]])), 1);
    c.handle_input(&frame(&Message::Grant(vec![[3; GRANT_TAG]])), 1);
    c.drive(&node, 1);
    let Some(Effect::Grants(tags)) = c.poll_effect() else { panic!("a Grants effect") };
    assert_eq!(tags, vec![[1; GRANT_TAG], [2; GRANT_TAG]]);
    assert!(c.poll_effect().is_none(), "the second waits for the first's write");
    c.handle_granted(Ok(()));
    c.drive(&node, 2);
    assert_eq!(c.end(), Some(&End::Sync(SyncError::Protocol("a second Grant in one session"))));
    assert_eq!(close_code(&drain(&mut c, &node, 2)), Some(4));

    let mut c = responder(&node, Limits::default());
    c.handle_input(&frame(&Message::Grant(vec![[1; GRANT_TAG]])), 1);
    c.drive(&node, 1);
    assert!(c.poll_effect().is_some());
    c.handle_granted(Err(LocalError("disk".into())));
    assert_eq!(c.end().map(End::code), Some(100));
}

#[test]
fn our_grant_goes_out_when_the_session_begins() {
    let grant = Message::Grant(vec![[5; GRANT_TAG]]);
    let a = Node { grant: Some(grant.clone()), ..Node::default() };
    let mut p = Pair::new(a, Node::default(), false);
    p.run();
    assert_eq!(p.from_a.first(), Some(&grant));
    assert_eq!(p.b.node.granted, vec![vec![[5; GRANT_TAG]]]);
    assert_eq!(p.b.conn.end(), Some(&End::Done));
}

#[test]
fn entries_outside_the_accept_set_are_parked_until_a_certificate_admits_them() {
    // b accepts log 1 only; storing any entry of it admits log 2 (as a certificate would).
    let b = Node { accept: set(&[1]), admits: Some(set(&[1, 2])), ..Node::default() };
    let a = Node::holding(&[chain(1, 2, 8), chain(2, 3, 8)].concat());
    let mut p = Pair::new(a, b, false);
    p.run();
    assert_eq!((p.b.node.count(1), p.b.node.count(2)), (2, 3));
    assert_eq!(p.b.conn.outcome.entries_in, 5);
    assert!(p.b.conn.parked.is_empty());

    // Without the certificate the other log stays parked, and is never stored.
    let b = Node { accept: set(&[1]), ..Node::default() };
    let a = Node::holding(&[chain(1, 2, 8), chain(2, 3, 8)].concat());
    let mut p = Pair::new(a, b, false);
    p.run();
    assert_eq!((p.b.node.count(1), p.b.node.count(2)), (2, 0));
    assert_eq!(p.b.conn.parked.len(), 3);
    assert_eq!(p.b.conn.outcome.entries_in, 2);
}

#[test]
fn parked_entries_are_bounded() {
    let node = Node { accept: set(&[1]), ..Node::default() };
    let mut c = responder(&node, Limits::default());
    let e = chain(2, 1, 8).remove(0).encode();
    for _ in 0..10 {
        c.handle_input(&frame(&Message::Entries(vec![e.clone(); 500])), 1);
    }
    c.drive(&node, 1);
    assert!(c.poll_effect().is_none(), "nothing of an unaccepted log is ingested");
    assert_eq!(c.parked.len(), PARK_LIMIT);
    assert_eq!(c.inbox_entries, 0);
}

#[test]
fn entries_that_arrived_together_are_ingested_together() {
    let node = Node::default();
    let mut c = responder(&node, Limits::default());
    let es = chain(1, 3, 8);
    c.handle_input(&frame(&Message::Entries(vec![es[0].encode()])), 1);
    c.handle_input(&frame(&Message::Entries(vec![es[1].encode(), es[2].encode()])), 1);
    c.drive(&node, 1);
    let Some(Effect::Ingest(got)) = c.poll_effect() else { panic!("an ingest") };
    assert_eq!(got.len(), 3);
    assert!(c.poll_effect().is_none());
    assert_eq!(c.inbox_entries, 0);
    assert_eq!(c.outcome.held, BTreeMap::from([(author(1), 3)]));
}

#[test]
fn a_full_inbox_stops_reading_and_holds_the_peer_clocks() {
    let node = Node::default();
    let mut c = responder(&node, Limits::default());
    let e = chain(1, 1, 8).remove(0).encode();
    let batch = frame(&Message::Entries(vec![e; 500]));
    let mut sent = 0;
    while c.wants_input() {
        c.handle_input(&batch, 1);
        sent += 500;
    }
    assert_eq!(sent, INBOX_LIMIT, "reading stops exactly at the limit");
    assert_eq!(c.inbox_entries, sent);
    assert_eq!(c.poll_timeout(), None, "our backpressure is not the peer stalling");
    c.handle_timeout(u64::MAX / 2);
    assert_eq!(c.end(), None);
    c.drive(&node, 5_000);
    assert!(c.wants_input(), "taken into an ingest, the inbox is free again");
    let Some(Effect::Ingest(got)) = c.poll_effect() else { panic!("an ingest") };
    assert_eq!(got.len(), INGEST_BATCH);
    c.handle_ingested(Ok(Ingested { accepted: 1, misbehaviour: None, ..Ingested::default() }), &node);
    c.drive(&node, 9_000);
    // The rest is another ingest; once it is answered the peer's clocks restart from now.
    let Some(Effect::Ingest(_)) = c.poll_effect() else { panic!("the rest") };
    assert_eq!(c.poll_timeout(), None, "our second write: still no peer clock");
    c.handle_ingested(Ok(Ingested { accepted: 0, misbehaviour: None, ..Ingested::default() }), &node);
    c.drive(&node, 12_000);
    assert_eq!(c.poll_timeout(), Some(12_000 + 30_000));
}

/// A responder that received `e` and waits for its ingest to be answered.
fn awaiting_ingest(node: &Node, e: &Entry) -> Conn {
    let mut c = responder(node, Limits::default());
    c.handle_input(&frame(&Message::Entries(vec![e.encode()])), 1);
    c.drive(node, 1);
    assert!(matches!(c.poll_effect(), Some(Effect::Ingest(_))));
    c
}

#[test]
fn a_misbehaving_ingest_fails_the_session_and_a_failed_one_ends_it_locally() {
    let node = Node::default();
    let es = chain(1, 1, 8);
    let mut c = awaiting_ingest(&node, &es[0]);
    assert_eq!(c.poll_timeout(), None, "our write in flight: no peer clock");
    c.handle_ingested(
        Ok(Ingested { accepted: 0, misbehaviour: Some("bad signature".into()), ..Ingested::default() }),
        &node,
    );
    assert_eq!(c.end(), Some(&End::Sync(SyncError::InvalidEntry("bad signature".into()))));
    assert_eq!(close_code(&drain(&mut c, &node, 1)), Some(5));

    let mut c = awaiting_ingest(&node, &es[0]);
    c.handle_ingested(Err(LocalError("disk full".into())), &node);
    assert_eq!(c.end(), Some(&End::Local("local store: disk full".into())));
    assert_eq!(close_code(&drain(&mut c, &node, 1)), None);
    // An answer nobody asked for changes nothing.
    let mut c = responder(&node, Limits::default());
    c.handle_ingested(Err(LocalError("late".into())), &node);
    c.handle_introduced(Ok(false), &node);
    c.handle_granted(Err(LocalError("late".into())));
    c.handle_welcomed(Err(LocalError("late".into())));
    assert_eq!(c.end(), None);
}

#[test]
fn undecodable_input_fails_the_session_after_what_came_before() {
    let node = Node::default();
    let es = chain(1, 1, 8);
    let mut c = responder(&node, Limits::default());
    c.handle_input(&frame(&Message::Entries(vec![es[0].encode()])), 1);
    c.handle_input(&[0, 0, 0, 2, 0xc1, 0xc1], 1);
    assert!(!c.wants_input(), "nothing is read after bad input");
    let read = c.outcome.bytes_in;
    c.handle_input(&frame(&Message::Done), 1);
    assert_eq!(c.outcome.bytes_in, read, "nothing is read after bad input");
    c.drive(&node, 1);
    assert!(matches!(c.poll_effect(), Some(Effect::Ingest(_))), "what came first is still ingested");
    c.handle_ingested(Ok(Ingested { accepted: 1, misbehaviour: None, ..Ingested::default() }), &node);
    c.drive(&node, 1);
    assert!(matches!(c.end(), Some(End::Sync(SyncError::Malformed(_)))));
    assert_eq!(close_code(&drain(&mut c, &node, 1)), Some(1));

    // An entry that does not decode is the peer's invalid entry.
    let mut c = responder(&node, Limits::default());
    c.handle_input(&frame(&Message::Entries(vec![vec![1, 2, 3]])), 1);
    c.drive(&node, 1);
    assert!(matches!(c.end(), Some(End::Sync(SyncError::InvalidEntry(_)))));
}

#[test]
fn the_stream_ending_inside_a_frame_is_malformed_and_at_a_boundary_is_done() {
    let node = Node::default();
    let mut c = responder(&node, Limits::default());
    c.handle_input(&[0, 0, 0, 9, 1], 1);
    c.handle_eof(1);
    assert!(!c.wants_input());
    c.drive(&node, 1);
    assert!(matches!(c.end(), Some(End::Sync(SyncError::Malformed(_)))));

    let mut c = responder(&node, Limits::default());
    c.handle_eof(1);
    c.handle_eof(2);
    c.drive(&node, 1);
    assert_eq!(c.end(), Some(&End::Done));
    c.handle_input(&frame(&Message::Done), 3);
    assert_eq!(c.outcome.bytes_in, 0, "nothing is read after the end");
}

#[test]
fn a_session_receives_at_most_its_byte_limit() {
    let node = Node::default();
    let limits = Limits { session_bytes_in: 100, ..Limits::default() };
    let mut c = responder(&node, limits);
    // A frame that promises 200 bytes: 100 arrive, then one more.
    let mut partial = vec![0, 0, 0, 200];
    partial.resize(100, 0);
    c.handle_input(&partial, 1);
    assert_eq!(c.end(), None, "up to the limit is fine");
    c.handle_input(&[0], 1);
    assert_eq!(c.end(), Some(&End::Sync(SyncError::LimitExceeded("bytes received in one session"))));
    assert_eq!(close_code(&drain(&mut c, &node, 1)), Some(3));
    c.handle_input(&[0; 10], 2);
    assert_eq!(c.outcome.bytes_in, 101);
}

#[test]
fn a_closing_peer_ends_the_session_with_its_code() {
    let node = Node::default();
    let mut c = responder(&node, Limits::default());
    c.handle_input(&frame(&Message::Close { code: 4, reason: "nope".into() }), 1);
    c.drive(&node, 1);
    assert_eq!(c.end(), Some(&End::Sync(SyncError::PeerClosed { code: 4, reason: "nope".into() })));
    assert_eq!(c.end().map(End::code), Some(4));
    assert_eq!(close_code(&drain(&mut c, &node, 1)), None);
}

#[test]
fn a_local_read_failure_at_the_start_ends_without_blame() {
    let node = Node { fail_offer: true, ..Node::default() };
    let mut c = responder(&node, Limits::default());
    assert_eq!(c.end(), Some(&End::Local("local store: offer unreadable".into())));
    assert_eq!(drain(&mut c, &node, 0), Vec::new());
    c.drive(&node, 1);
    c.close("later".into());
    assert_eq!(c.end(), Some(&End::Local("local store: offer unreadable".into())), "the first end stays");
}

#[test]
fn reconciling_peers_must_keep_bytes_moving() {
    let node = Node::default();
    let mut c = responder(&node, Limits::default());
    assert_eq!(c.poll_timeout(), Some(30_000), "the reconcile idle limit");
    c.drive(&node, 20_000);
    assert_eq!(c.poll_timeout(), Some(30_000), "driving with nothing new is not progress");
    c.handle_timeout(29_999);
    assert_eq!(c.end(), None);
    c.handle_sent(29_999);
    // A byte sent is progress.
    ends_at(&mut c, 59_999, "nothing for 30s");
}

#[test]
fn a_lossy_link_stretches_the_idle_clock_but_not_past_the_grace() {
    let node = Node::default();
    let mut c = responder(&node, Limits::default());
    let mut now = 0;
    while now < 100_000 {
        now += 20_000;
        c.handle_alive(now);
        assert_eq!(c.end(), None);
        c.handle_timeout(now);
    }
    // The link grace counts from the last byte.
    ends_at(&mut c, 120_000, "lossy link");
}

#[test]
fn a_half_sent_frame_must_be_finished_in_time() {
    let node = Node::default();
    let mut c = responder(&node, Limits::default());
    c.handle_input(&[0, 0, 0, 9], 1_000);
    assert_eq!(c.poll_timeout(), Some(11_000), "the frame deadline");
    c.drive(&node, 5_000);
    assert_eq!(c.poll_timeout(), Some(11_000), "driving does not restart the peer's frame clock");
    let mut d = responder(&node, Limits::default());
    let mut bytes = frame(&Message::Introduce { token: [3; 16], card: card() });
    bytes.extend([0, 0, 0, 9]);
    d.handle_input(&bytes, 1_000);
    d.drive(&node, 5_000);
    assert_eq!(d.poll_timeout(), Some(11_000), "a whole message before a half one: no wait of ours to undo");
    ends_at(&mut c, 11_000, "inside a frame for 10s");

    // A vouched-for link extends the frame deadline, but the frame still has the grace.
    let mut c = responder(&node, Limits::default());
    c.handle_input(&[0, 0, 0, 9], 1_000);
    for now in (6_000..=116_000).step_by(5_000).chain([120_999]) {
        c.handle_alive(now);
        c.handle_timeout(now);
        assert_eq!(c.end(), None, "at {now}");
    }
    c.handle_alive(121_000);
    c.handle_timeout(121_000);
    assert!(matches!(c.end(), Some(End::Local(s)) if s.contains("inside a frame") && s.contains("lossy link")));
}

#[test]
fn a_live_session_pushes_new_entries_of_offered_logs() {
    let one = chain(1, 6, 8);
    let three = chain(3, 2, 8);
    let a = Node { offer: Some(set(&[1])), ..Node::holding(&one[..2]) };
    let mut p = Pair::new(a, Node::default(), true);
    p.run();
    assert!(p.a.conn.outcome.synced && p.a.conn.wants_changes() && p.b.conn.wants_changes());
    assert_eq!(p.a.conn.end(), None, "live sessions stay open");
    assert_eq!(p.b.node.count(1), 2);
    assert_eq!(p.a.conn.poll_timeout(), Some(p.a.conn.last_activity + 24 * 3600 * 1000), "the live idle");

    // New entries: pushed when told which logs moved, and counted as behind until then.
    p.a.node.store(&one[2..4]);
    p.a.node.store(&three);
    assert_eq!(p.a.conn.behind_by(&p.a.node), 2);
    p.a.conn.handle_changed(Some(&[(author(1), 4), (author(3), 2)]));
    p.run();
    assert_eq!(p.b.node.count(1), 4);
    assert_eq!(p.b.node.count(3), 0, "a log not offered is not pushed");
    assert_eq!(p.a.conn.behind_by(&p.a.node), 0);
    assert_eq!(p.a.conn.outcome.entries_out, 4, "2 in the session, 2 pushed");
    assert_eq!(p.a.conn.outcome.held, BTreeMap::from([(author(1), 2)]), "pushes are not counted as held");

    // Unknown changes: the offer is read again (log 3 is offered now) and everything is checked.
    p.a.node.offer = Some(set(&[1, 3]));
    p.a.node.store(&one[4..]);
    p.a.conn.handle_changed(None);
    p.run();
    assert_eq!((p.b.node.count(1), p.b.node.count(3)), (6, 2));
    p.a.conn.handle_changed(Some(&[(author(1), 6)]));
    p.run();
    assert_eq!(p.a.conn.outcome.entries_out, 8, "nothing is sent twice");
}

#[test]
fn pushes_wait_for_what_is_sendable() {
    let one = chain(1, 4, 8);
    let mut p = Pair::new(Node::holding(&one[..1]), Node::default(), true);
    p.run();
    p.a.node.store(&one[1..]);
    p.a.node.sendable.insert(author(1), 2);
    p.a.conn.handle_changed(Some(&[(author(1), 4)]));
    p.run();
    assert_eq!(p.b.node.count(1), 2, "only what is durable goes out");
    assert_eq!(p.a.conn.behind_by(&p.a.node), 0);
    p.a.node.sendable.remove(&author(1));
    assert_eq!(p.a.conn.behind_by(&p.a.node), 2);
    p.a.conn.handle_changed(Some(&[(author(1), 4)]));
    p.run();
    assert_eq!(p.b.node.count(1), 4);
}

#[test]
fn what_was_written_while_reconciling_goes_out_once_synced() {
    let one = chain(1, 3, 8);
    let mut p = Pair::new(Node::holding(&one[..1]), Node::default(), true);
    // Let the session start, then write before it is synced.
    Pair::turn(&mut p.a, &mut p.b, &mut p.from_a, 0);
    p.a.node.store(&one[1..]);
    p.run();
    assert_eq!(p.b.node.count(1), 3, "no change event needed");
}

#[test]
fn entries_go_out_in_frames_of_at_most_512_or_half_a_frame() {
    let a = Node::holding(&chain(1, 1_100, 8));
    let mut p = Pair::new(a, Node::default(), false);
    p.run();
    assert_eq!(Pair::entries_frames(&p.from_a), vec![512, 512, 76]);
    assert_eq!(p.b.node.count(1), 1_100);

    // One entry past a whole frame still goes out.
    let a = Node::holding(&chain(1, 513, 8));
    let mut p = Pair::new(a, Node::default(), false);
    p.run();
    assert_eq!(Pair::entries_frames(&p.from_a), vec![512, 1]);
    assert_eq!(p.b.node.count(1), 513);

    // 512 at most whatever the logs: two of 400 fill one frame and spill into the next.
    let a = Node::holding(&[chain(1, 400, 8), chain(2, 400, 8)].concat());
    let mut p = Pair::new(a, Node::default(), false);
    p.run();
    assert_eq!(Pair::entries_frames(&p.from_a), vec![512, 288]);

    // Two logs share a frame when they fit.
    let a = Node::holding(&[chain(1, 3, 8), chain(2, 4, 8)].concat());
    let mut p = Pair::new(a, Node::default(), false);
    p.run();
    assert_eq!(Pair::entries_frames(&p.from_a), vec![7]);

    // Large entries: as many as fit in half a frame with 8 bytes each for framing.
    let big = crate::log::MAX_PAYLOAD as usize;
    let a = Node::holding(&chain(1, 9, big));
    let per = a.logs.logs[&author(1)][0].encode().len();
    let fit = (MAX_FRAME / 2 - 16) / (per + 8);
    let mut p = Pair::new(a, Node::default(), false);
    p.run();
    let frames = Pair::entries_frames(&p.from_a);
    assert_eq!(frames[0], fit);
    assert_eq!(frames.iter().sum::<usize>(), 9);
}

#[test]
fn a_synced_session_notes_where_the_order_of_moves_stood() {
    // Nothing moved since admission: the admission point.
    let node = |point, moved| Node { point, moved, ..Node::holding(&chain(1, 2, 8)) };
    let mut p = Pair::new(node(Some((1, 5)), None), Node::default(), false);
    p.run();
    assert_eq!(*p.a.node.synced_at.borrow(), vec![(1, 5)]);
    assert!(p.b.node.synced_at.borrow().is_empty(), "a node without an order notes nothing");

    // Moved since, all held by the peer at our head: the later point.
    let mut p = Pair::new(node(Some((1, 5)), Some(vec![author(1)])), Node::default(), false);
    Pair::turn(&mut p.a, &mut p.b, &mut p.from_a, 0);
    p.a.node.point = Some((1, 6));
    p.run();
    assert_eq!(*p.a.node.synced_at.borrow(), vec![(1, 6)]);

    // Moved since and the peer lacks some of it: the admission point.
    let mut p = Pair::new(node(Some((1, 5)), Some(vec![author(2)])), Node::default(), false);
    Pair::turn(&mut p.a, &mut p.b, &mut p.from_a, 0);
    p.a.node.store(&chain(2, 1, 8));
    p.a.node.point = Some((1, 6));
    p.run();
    assert_eq!(*p.a.node.synced_at.borrow(), vec![(1, 5)]);

    // Too much moved to tell: the admission point.
    let mut p = Pair::new(node(Some((1, 5)), None), Node::default(), false);
    Pair::turn(&mut p.a, &mut p.b, &mut p.from_a, 0);
    p.a.node.point = Some((1, 6));
    p.run();
    assert_eq!(*p.a.node.synced_at.borrow(), vec![(1, 5)]);
}

#[test]
fn a_full_inbox_of_logs_we_do_not_take_still_restarts_the_peer_clocks() {
    let node = Node { accept: set(&[1]), ..Node::default() };
    let mut c = responder(&node, Limits::default());
    let e = chain(2, 1, 8).remove(0).encode();
    let batch = frame(&Message::Entries(vec![e; 500]));
    while c.wants_input() {
        c.handle_input(&batch, 1);
    }
    // Nothing to ingest: all of it parks, and our own backpressure was the only wait.
    c.drive(&node, 5_000);
    assert!(c.poll_effect().is_none());
    assert!(c.wants_input());
    assert_eq!(c.poll_timeout(), Some(5_000 + 30_000), "the peer's clocks start again when we read again");
}

#[test]
fn only_honest_refusals_are_not_misbehaviour() {
    use ValidationError as V;
    for honest in [
        V::Fork,
        V::Forked,
        V::Revoked { last_seq: 1 },
        V::WrongSeq { expected: 2, found: 3 },
        V::PrevMismatch,
        V::TimestampRegression { previous: 2, found: 1 },
    ] {
        assert!(!misbehaviour(&honest), "{honest:?}");
    }
    for bad in [
        V::BadSignature,
        V::PayloadHashMismatch,
        V::NonCanonical,
        V::Malformed("x".into()),
        V::PayloadSizeMismatch { expected: 1, found: 2 },
        V::Oversize { size: 2, limit: 1 },
    ] {
        assert!(misbehaviour(&bad), "{bad:?}");
    }
}

#[test]
fn a_connection_knows_its_peer_and_wants_changes_only_while_live_and_synced() {
    let mut p = Pair::new(Node::holding(&chain(1, 2, 8)), Node::default(), true);
    assert_eq!((p.a.conn.peer(), p.b.conn.peer()), (author(100), author(101)));
    assert!(!p.a.conn.wants_changes(), "not synced yet");
    p.run();
    assert!(p.a.conn.wants_changes());
    p.a.conn.close("bye".into());
    assert!(!p.a.conn.wants_changes(), "ended");
    let mut q = Pair::new(Node::holding(&chain(1, 2, 8)), Node::default(), false);
    until_a_finishes(&mut q);
    assert!(q.a.conn.outcome.synced && !q.a.conn.wants_changes(), "one-shot");
}

#[test]
fn a_stranger_may_close_before_it_is_admitted() {
    let node = Node { allowed: false, ..Node::default() };
    let mut c = responder(&node, Limits::default());
    c.handle_input(&frame(&Message::Close { code: 3, reason: "bye".into() }), 1);
    c.drive(&node, 1);
    assert_eq!(c.end(), Some(&End::Sync(SyncError::PeerClosed { code: 3, reason: "bye".into() })));
    assert_eq!(close_code(&drain(&mut c, &node, 1)), None);
}

#[test]
fn an_ingest_that_stored_nothing_leaves_the_rest_parked_even_if_more_is_accepted() {
    let one = chain(1, 1, 8);
    let mut node = Node { accept: set(&[1]), ..Node::holding(&one) };
    let mut c = responder(&node, Limits::default());
    let two = chain(2, 1, 8);
    c.handle_input(&frame(&Message::Entries(vec![one[0].encode(), two[0].encode()])), 1);
    c.drive(&node, 1);
    let Some(Effect::Ingest(got)) = c.poll_effect() else { panic!("an ingest") };
    assert_eq!(got.len(), 1);
    // The accept set grew elsewhere; this ingest brought nothing that could have grown it.
    node.accept = set(&[1, 2]);
    c.handle_ingested(Ok(Ingested { accepted: 0, misbehaviour: None, ..Ingested::default() }), &node);
    assert!(c.poll_effect().is_none());
    assert_eq!(c.parked.len(), 1);
}

#[test]
fn a_live_ingest_that_opens_more_logs_to_the_peer_pushes_them() {
    let one = chain(1, 3, 8);
    let three = chain(3, 2, 8);
    let b = Node { offer: Some(set(&[])), ..Node::holding(&three) };
    let mut p = Pair::new(Node::holding(&one[..1]), b, true);
    p.run();
    assert_eq!(p.a.node.count(3), 0, "not offered yet");
    // A live push from a opens log 3 to it (as a card it carries would).
    p.b.node.opens = Some(set(&[1, 3]));
    p.a.node.store(&one[1..]);
    p.a.conn.handle_changed(Some(&[(author(1), 3)]));
    p.run();
    assert_eq!(p.b.node.count(1), 3);
    assert_eq!(p.a.node.count(3), 2, "what the ingest opened is pushed at once");
}

#[test]
fn the_peers_last_done_and_end_of_stream_taken_together_still_count_as_synced() {
    let mut p = Pair::new(Node::holding(&chain(1, 2, 8)), Node::default(), false);
    until_a_finishes(&mut p);
    // b holds a's last Done, unread, and now the end of a's stream: one drive takes both.
    assert!(!p.b.conn.outcome.synced);
    p.b.conn.handle_eof(p.now);
    p.b.conn.drive(&p.b.node, p.now);
    assert_eq!(p.b.conn.end(), Some(&End::Done));
    assert!(p.b.conn.outcome.synced, "a synced session ended by the peer is recorded as synced");
    assert_eq!(p.b.node.count(1), 2);
}

#[test]
fn an_idle_live_session_looks_at_nothing_once_synced() {
    // Both hold the same: nothing moves, and nothing was written while reconciling, so the
    // offer is read once, at the start, and no log is scanned for pushes.
    let one = chain(1, 3, 8);
    let mut p = Pair::new(Node::holding(&one), Node::holding(&one), true);
    p.run();
    assert!(p.a.conn.outcome.synced);
    assert_eq!((p.a.node.offers.get(), p.b.node.offers.get()), (1, 1));
    assert_eq!(p.a.conn.outcome.entries_out + p.b.conn.outcome.entries_out, 0);
}

#[test]
fn half_a_frame_counts_eight_bytes_of_framing_per_entry_and_takes_an_exact_fit() {
    // Entries sized so that 16 + 8 × (entry + 8) is exactly half a frame (eight fit), and one
    // byte larger (seven fit). The peer holds the first entry (it has no `prev`, so it is
    // shorter): the nine sent are all one size.
    let overhead = chain(1, 2, 1_000)[1].encode().len() - 1_000;
    for (entry, fit) in [(65_526, 8), (65_527, 7)] {
        let es = chain(1, 10, entry - overhead);
        assert!(es[1..].iter().all(|e| e.encode().len() == entry));
        assert_eq!(16 + 8 * (entry + 8) > MAX_FRAME / 2, fit == 7);
        let mut p = Pair::new(Node::holding(&es), Node::holding(&es[..1]), false);
        p.run();
        assert_eq!(Pair::entries_frames(&p.from_a), vec![fit, 9 - fit], "entries of {entry} bytes");
    }
}

#[test]
fn a_live_session_still_reconciling_keeps_the_reconcile_limits() {
    let node = Node::default();
    let mut c = Conn::new(author(100), false, true, Limits::default(), 0);
    c.drive(&node, 0);
    assert!(!c.outcome.synced);
    assert_eq!(c.poll_timeout(), Some(30_000), "not the live idle until synced");
    c.handle_alive(100_000);
    c.handle_timeout(100_000);
    assert_eq!(c.end(), None);
    assert_eq!(c.poll_timeout(), Some(120_000), "the lossy-link grace applies while reconciling");
    c.handle_timeout(120_000);
    assert!(matches!(c.end(), Some(End::Local(s)) if s.contains("lossy link")));
}

#[test]
fn only_a_live_synced_session_counts_what_the_peer_is_behind() {
    let one = chain(1, 4, 8);
    let mut p = Pair::new(Node::holding(&one[..2]), Node::default(), false);
    until_a_finishes(&mut p);
    p.a.node.store(&one[2..]);
    assert_eq!(p.a.conn.behind_by(&p.a.node), 0, "a one-shot session says nothing of later writes");
    let mut q = Pair::new(Node::holding(&one[..2]), Node::default(), true);
    Pair::turn(&mut q.a, &mut q.b, &mut q.from_a, 0);
    q.a.node.store(&one[2..]);
    assert_eq!(q.a.conn.behind_by(&q.a.node), 0, "not synced yet: unknown");
    q.run();
    q.a.node.store(&chain(1, 5, 8)[4..]);
    assert_eq!(q.a.conn.behind_by(&q.a.node), 1, "live and synced: what it lacks");
}

#[test]
fn a_live_ingest_that_opens_nothing_new_scans_nothing() {
    // b offers what it holds; a push of more of a log b already offers changes no offer, so b
    // reads its offer once for the ingest and looks at no log for pushes.
    let one = chain(1, 3, 8);
    let mut p = Pair::new(Node::holding(&one[..1]), Node::holding(&one[..1]), true);
    p.run();
    let before = p.b.node.offers.get();
    p.a.node.store(&one[1..]);
    p.a.conn.handle_changed(Some(&[(author(1), 3)]));
    p.run();
    assert_eq!(p.b.node.count(1), 3);
    assert_eq!(p.b.node.offers.get() - before, 1, "one read of the offer, no rescan");
}

/// Entries ingest held back for their stamps (`ahead`) are offered again, first, once their
/// time has come, and only then; the session is not held meanwhile.
#[test]
fn entries_held_for_their_stamps_are_offered_again_when_due() {
    let node = Node::default();
    let es = chain(1, 3, 8);
    let mut c = awaiting_ingest(&node, &es[0]);
    assert_eq!(es.len(), 3);
    let held = es[1..].to_vec();
    c.handle_ingested(Ok(Ingested { accepted: 1, misbehaviour: None, held: held.clone(), held_for_ms: 5_000 }), &node);
    c.drive(&node, 1);
    assert_eq!(c.outcome.held_ahead, 2, "what the session holds is reported");
    assert!(c.poll_effect().is_none(), "not before their time");
    let due = c.poll_timeout().expect("a timer");
    assert!(due <= 5_001, "the held entries' time is a deadline: {due}");
    c.handle_timeout(5_000);
    c.drive(&node, 5_000);
    assert!(c.poll_effect().is_none(), "a millisecond early");
    c.handle_timeout(5_001);
    assert_eq!(c.end(), None, "their time is no stall");
    c.drive(&node, 5_001);
    let Some(Effect::Ingest(got)) = c.poll_effect() else { panic!("offered again") };
    assert_eq!(got, held);
    // Taken this time: nothing more is scheduled for them.
    c.handle_ingested(Ok(Ingested { accepted: 2, ..Ingested::default() }), &node);
    assert_eq!(c.outcome.held_ahead, 0, "taken: nothing held any more");
    c.drive(&node, 5_002);
    assert!(c.poll_effect().is_none());
    assert!(c.poll_timeout().is_some_and(|t| t > 5_002 + 1_000), "only the idle clock is left");
}
