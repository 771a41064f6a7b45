//! One connection's whole protocol as a deterministic state machine (like quinn-proto's
//! `Connection`): introductions, interest, reconciliation, transfer, parking, live push and
//! closing. Bytes and time go in (`handle_input`, `handle_timeout`); bytes, effects and timers
//! come out (`poll_transmit`, `poll_effect`, `poll_timeout`). Writes the connection needs —
//! ingesting entries, accepting an introduction — are effects the driver carries out and
//! answers (`handle_ingested`, `handle_introduced`). It runs over QUIC, an in-memory pair, or
//! any other ordered reliable byte stream alike.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::HeadSet;
use super::framing::FrameDecoder;
use super::local::{ChangePoint, Local, LocalError, LogSet, Offer};
use super::{GRANT_TAG, MAX_FRAME, Message, Session, SyncError, Transfer, frame};
use crate::log::{Entry, ValidationError};
use crate::messaging::ContactCard;

/// Most entries held per session while waiting for the certificate that admits their log.
pub const PARK_LIMIT: usize = 4096;
/// Most entries gathered into one ingest.
pub const INGEST_BATCH: usize = 50_000;
/// Input entries held before the connection stops reading (backpressure).
const INBOX_LIMIT: usize = 2 * INGEST_BATCH;
/// Entries read from the store per outgoing frame at most.
const SEND_CHUNK: usize = 512;
/// Idle limit once live; transports watch the connection itself (QUIC keep-alives).
const LIVE_IDLE: Duration = Duration::from_secs(24 * 3600);
/// However long the transport vouches for a lossy link (`handle_alive`), a frame must arrive
/// and, while reconciling, a byte must move within this: a peer that keeps a connection "alive"
/// with keep-alives alone cannot hold a half-sent frame or an unfinished session forever.
pub const LINK_GRACE: Duration = Duration::from_secs(120);
/// How long a one-shot initiator waits for the peer to finish after finishing its own side.
const LINGER: Duration = Duration::from_secs(5);

/// Per-peer limits that keep a hostile or broken peer from holding memory or time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest a peer may take to deliver one frame once it has started (slowloris).
    pub frame_deadline: Duration,
    /// Longest time without a byte moving in either direction while reconciling.
    pub reconcile_idle: Duration,
    /// Most bytes one session may receive; a longer stream is cut and may reconnect.
    pub session_bytes_in: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            frame_deadline: Duration::from_secs(10),
            reconcile_idle: Duration::from_secs(30),
            session_bytes_in: 4 << 30,
        }
    }
}

/// What a session did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub peer: [u8; 32],
    pub entries_in: u64,
    pub entries_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rounds: u32,
    pub synced: bool,
    pub forks: usize,
    /// Entries of logs we offer that the peer had not received when the session ended.
    pub behind_by: u64,
    /// Entries from the peer held back for their stamps (over a day ahead of our clock) and
    /// not yet taken: what a later session brings once they are due.
    pub held_ahead: u64,
    /// Per log, the highest seq the peer holds by this session: what it sent us, and what we
    /// sent it before synced (bounded by the accept and offer sets). Read once synced.
    pub held: BTreeMap<[u8; 32], u64>,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Cleanly: synced and finished, or the peer finished its side.
    Done,
    /// A protocol error (codes 1–6, or the peer's Close).
    Sync(SyncError),
    /// Code 100: a timeout, a stalled frame, or a local store error.
    Local(String),
}

impl End {
    /// The close code (spec/sync.md, section 10).
    pub fn code(&self) -> u16 {
        match self {
            End::Done => 0,
            End::Sync(e) => e.code(),
            End::Local(_) => 100,
        }
    }
}

/// What an ingest did, as far as the connection cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    pub accepted: usize,
    /// The first refusal that no honest peer causes (see [`misbehaviour`]), described.
    pub misbehaviour: Option<String>,
    /// Entries stamped too far ahead of our clock to be stored yet (`ahead`): offered to
    /// ingest again in `held_for_ms`, if the session still runs.
    pub held: Vec<Entry>,
    pub held_for_ms: u64,
}

/// A write the driver carries out for the connection.
#[derive(Debug)]
pub enum Effect {
    /// Validate and store these entries; answer with [`Conn::handle_ingested`].
    Ingest(Vec<Entry>),
    /// A stranger presented an invite token and its card; answer with
    /// [`Conn::handle_introduced`] (whether it is now a contact).
    Introduce { token: [u8; 16], card: ContactCard },
    /// The peer's identity grants its logs to these tags; store them (replacing earlier ones)
    /// and answer with [`Conn::handle_granted`].
    Grants(Vec<[u8; GRANT_TAG]>),
    /// The device of a short invite we dialled answered our introduction with its card: add
    /// it as a contact if it is the one we wait for; answer with [`Conn::handle_welcomed`].
    Welcome { token: [u8; 16], card: ContactCard },
}

enum In {
    Entries(Vec<Entry>),
    Msg(Message),
    /// The peer finished its side of the stream.
    End,
    /// Input that does not decode: fails the session once what came before is handled.
    Fail(SyncError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Nothing,
    Ingest,
    Introduction,
    Grants,
    Welcome,
}

/// Reasons that mean the peer sent something no honest node sends.
pub fn misbehaviour(e: &ValidationError) -> bool {
    !matches!(
        e,
        ValidationError::Fork
            | ValidationError::Forked
            // An honest peer may hold entries a revoked device wrote before the revocation
            // reached it.
            | ValidationError::Revoked { .. }
            | ValidationError::WrongSeq { .. }
            | ValidationError::PrevMismatch
            | ValidationError::TimestampRegression { .. }
            // An honest peer relays what an author with a fast clock wrote.
            | ValidationError::Ahead { .. }
    )
}

pub struct Conn {
    peer: [u8; 32],
    initiator: bool,
    live: bool,
    limits: Limits,
    started: bool,
    admitted: bool,
    sess: Option<Session>,
    decoder: FrameDecoder,
    input_closed: bool,
    inbox: VecDeque<In>,
    inbox_entries: usize,
    wait: Wait,
    effects: VecDeque<Effect>,
    /// Entries outside the interest set, kept for a certificate that may admit them.
    parked: Vec<Entry>,
    /// Entries of the ingest in flight that were outside the interest set.
    waiting: Vec<Entry>,
    /// Entries ingest held back for their stamps (`ahead`), and when to offer them again.
    early: Vec<Entry>,
    early_at: Option<u64>,
    /// Time of the last drive: what an effect's answer counts from.
    now: u64,
    /// The logs offered to this peer (reconciled, sent, pushed).
    offered: Offer,
    /// The logs we accept from anyone.
    accepted: LogSet,
    /// Heads offered when reconciliation started (shared with the store, not copied): once
    /// synced, the peer holds at least these.
    snapshot: Option<Arc<HeadSet>>,
    /// Where our order of head moves stood at admission.
    point: Option<ChangePoint>,
    /// Per log, the highest seq the peer is known to hold (live push sends what is above);
    /// a log not in it is known at its seq in `snapshot`.
    known: BTreeMap<[u8; 32], u64>,
    sends: VecDeque<Transfer>,
    out: VecDeque<Vec<u8>>,
    /// Logs to check for pushes (all of them when `push_all`).
    push: BTreeSet<[u8; 32]>,
    push_all: bool,
    finish: bool,
    finished_at: Option<u64>,
    /// Our own write (an effect) or our own backpressure held the session: the peer's clocks
    /// restart when it resumes.
    held_by_us: bool,
    grant_seen: bool,
    /// The token a stranger introduced itself with: our answer carries it back.
    intro_token: Option<[u8; 16]>,
    /// We answered an Introduce already (once per session is enough).
    answered_intro: bool,
    last_activity: u64,
    /// Like `last_activity`, but not moved on by `handle_alive` (the `LINK_GRACE` clock).
    last_progress: u64,
    end: Option<End>,
    pub outcome: Outcome,
}

impl Conn {
    /// A connection with `peer` (its key proven by the transport), opened by us if `initiator`.
    /// `live` keeps it open and pushing once synced.
    pub fn new(peer: [u8; 32], initiator: bool, live: bool, limits: Limits, now_ms: u64) -> Conn {
        Conn {
            peer,
            initiator,
            live,
            limits,
            started: false,
            admitted: false,
            sess: None,
            decoder: FrameDecoder::default(),
            input_closed: false,
            inbox: VecDeque::new(),
            inbox_entries: 0,
            wait: Wait::Nothing,
            effects: VecDeque::new(),
            parked: Vec::new(),
            early: Vec::new(),
            early_at: None,
            now: now_ms,
            waiting: Vec::new(),
            offered: Offer::default(),
            accepted: LogSet::default(),
            snapshot: None,
            point: None,
            known: BTreeMap::new(),
            sends: VecDeque::new(),
            out: VecDeque::new(),
            push: BTreeSet::new(),
            push_all: false,
            finish: false,
            finished_at: None,
            held_by_us: false,
            grant_seen: false,
            intro_token: None,
            answered_intro: false,
            last_activity: now_ms,
            last_progress: now_ms,
            end: None,
            outcome: Outcome { peer, ..Outcome::default() },
        }
    }

    pub fn peer(&self) -> [u8; 32] {
        self.peer
    }

    /// Whether the peer passed as allowed or introduced itself (strangers leave no record).
    pub fn admitted(&self) -> bool {
        self.admitted
    }

    /// Bytes received from the peer.
    pub fn handle_input(&mut self, bytes: &[u8], now_ms: u64) {
        if self.end.is_some() || self.input_closed || bytes.is_empty() {
            return;
        }
        self.touch(now_ms);
        self.outcome.bytes_in += bytes.len() as u64;
        if self.outcome.bytes_in > self.limits.session_bytes_in {
            return self.fail(SyncError::LimitExceeded("bytes received in one session"));
        }
        let frames = match self.decoder.push(bytes, now_ms) {
            Ok(f) => f,
            Err(e) => return self.fail(e),
        };
        for body in frames {
            let item = Message::decode(&body).and_then(|m| match m {
                Message::Entries(raw) => raw
                    .iter()
                    .map(|b| Entry::decode(b))
                    .collect::<Result<Vec<_>, _>>()
                    .map(In::Entries)
                    .map_err(|e| SyncError::InvalidEntry(e.to_string())),
                m => Ok(In::Msg(m)),
            });
            let item = item.unwrap_or_else(In::Fail);
            match &item {
                In::Entries(es) => self.inbox_entries += es.len(),
                In::Fail(_) => self.input_closed = true,
                _ => {}
            }
            self.inbox.push_back(item);
            // Past the limit the driver stops reading: that wait is ours.
            self.held_by_us |= self.inbox_entries >= INBOX_LIMIT;
            if self.input_closed {
                return;
            }
        }
    }

    /// The peer finished its side of the stream.
    pub fn handle_eof(&mut self, now_ms: u64) {
        if self.input_closed || self.end.is_some() {
            return;
        }
        self.touch(now_ms);
        self.input_closed = true;
        if self.decoder.partial_since().is_some() {
            self.inbox.push_back(In::Fail(SyncError::Malformed("the stream ended inside a frame".into())));
        } else {
            self.inbox.push_back(In::End);
        }
    }

    /// Whether the driver should read more input now (backpressure while entries wait).
    pub fn wants_input(&self) -> bool {
        self.end.is_none() && !self.input_closed && self.inbox_entries < INBOX_LIMIT
    }

    /// Whether local changes matter to this connection now (it is live and synced).
    pub fn wants_changes(&self) -> bool {
        self.end.is_none() && self.live && self.outcome.synced
    }

    /// Logs changed locally (`None`: unknown which, or who may see what changed: check all):
    /// pushes what the peer lacks.
    pub fn handle_changed(&mut self, logs: Option<&[([u8; 32], u64)]>) {
        match logs {
            None => self.push_all = true,
            Some(ls) => {
                self.push.extend(ls.iter().map(|(a, _)| *a));
            }
        }
    }

    /// Some of what `poll_transmit` produced reached the transport: the session is moving, even
    /// while nothing arrives (a slow peer draining a large transfer is not idle).
    pub fn handle_sent(&mut self, now_ms: u64) {
        self.touch(now_ms);
    }

    /// The transport under the stream vouches that the peer is alive behind a lossy link (a
    /// QUIC connection losing packets and retransmitting): a slow link, not a stalled peer.
    /// Restarts the idle and partial-frame clocks; a dead peer is the transport's to detect.
    pub fn handle_alive(&mut self, now_ms: u64) {
        self.last_activity = now_ms;
        self.decoder.extend_for_link(now_ms);
    }

    /// Something moved (a byte in or out, or our own wait ended): both idle clocks restart.
    fn touch(&mut self, now_ms: u64) {
        self.last_activity = now_ms;
        self.last_progress = now_ms;
    }

    /// Processes what has arrived, as far as it can without waiting for an effect.
    pub fn drive(&mut self, local: &impl Local, now_ms: u64) {
        if self.end.is_some() {
            return;
        }
        if let Err(e) = self.drive_inner(local, now_ms) {
            self.end_with(e);
        }
    }

    /// Whether the session waits on us: an effect in flight, or input paused by backpressure.
    fn waiting_on_us(&self) -> bool {
        self.wait != Wait::Nothing || self.inbox_entries >= INBOX_LIMIT
    }

    /// Once our own wait is over, the time we spent is not the peer's: its idle and frame
    /// clocks start again.
    fn resume(&mut self, now_ms: u64) {
        if self.held_by_us && !self.waiting_on_us() {
            self.held_by_us = false;
            self.touch(now_ms);
            self.decoder.restart_clock(now_ms);
        }
    }

    fn drive_inner(&mut self, local: &impl Local, now_ms: u64) -> Result<(), End> {
        self.now = now_ms;
        self.resume(now_ms);
        if self.wait == Wait::Nothing && self.early_at.is_some_and(|t| now_ms >= t) {
            // Their time has come: offered again, before whatever else waits.
            self.early_at = None;
            let mut pending = std::mem::take(&mut self.early);
            pending.append(&mut self.parked);
            self.offer(pending);
        }
        if !self.started {
            self.started = true;
            self.touch(now_ms);
            if self.initiator {
                // Dialing someone whose invite we added: introduce ourselves first.
                if let Some(m) = local.introduction(&self.peer) {
                    self.queue(&m);
                }
                self.admitted = true;
                self.begin(local)?;
            } else if local.is_allowed(&self.peer) {
                self.admitted = true;
                self.begin(local)?;
            }
        }
        while self.wait == Wait::Nothing {
            let Some(item) = self.inbox.pop_front() else { break };
            match item {
                In::Fail(e) => return Err(End::Sync(e)),
                In::End => {
                    // The peer's last Done and the end of its stream can arrive together: a
                    // session that is synced is recorded as such before it ends.
                    if self.sess.as_ref().is_some_and(Session::is_synced) && !self.outcome.synced {
                        self.on_synced(local);
                    }
                    return Err(End::Done);
                }
                In::Msg(Message::Close { code, reason }) => {
                    return Err(End::Sync(SyncError::PeerClosed { code, reason }));
                }
                _ if !self.admitted => {
                    // A stranger that passed the handshake (we have open invites) must present one.
                    let In::Msg(Message::Introduce { token, card }) = item else {
                        return Err(End::Sync(SyncError::NotAllowed));
                    };
                    self.intro_token = Some(token);
                    self.effects.push_back(Effect::Introduce { token, card });
                    self.wait = Wait::Introduction;
                    self.held_by_us = true;
                }
                In::Msg(Message::Introduce { token, card }) => {
                    if !self.initiator {
                        // A known peer introduced itself again: answer with our card, so a
                        // short invite's holder that missed our first answer completes it.
                        self.answer_introduction(token, local);
                    } else if local.awaits_card(&self.peer) {
                        self.effects.push_back(Effect::Welcome { token, card });
                        self.wait = Wait::Welcome;
                        self.held_by_us = true;
                    }
                }
                In::Msg(Message::Grant(tags)) => {
                    // One per session (spec/sync.md, section 6.9a): each costs the peer a write.
                    if self.grant_seen {
                        return Err(End::Sync(SyncError::Protocol("a second Grant in one session")));
                    }
                    self.grant_seen = true;
                    self.effects.push_back(Effect::Grants(tags));
                    self.wait = Wait::Grants;
                    self.held_by_us = true;
                }
                In::Entries(mut es) => {
                    self.inbox_entries -= es.len();
                    // Take whatever else has already arrived into the same ingest: one
                    // validation pass and one fsync for all of it.
                    while es.len() < INGEST_BATCH {
                        match self.inbox.front() {
                            Some(In::Entries(_)) => {
                                if let Some(In::Entries(more)) = self.inbox.pop_front() {
                                    self.inbox_entries -= more.len();
                                    es.extend(more);
                                }
                            }
                            _ => break,
                        }
                    }
                    let mut pending = std::mem::take(&mut self.parked);
                    pending.extend(es);
                    self.offer(pending);
                }
                In::Msg(m) => {
                    let Some(sess) = self.sess.as_mut() else {
                        return Err(End::Sync(SyncError::Protocol("message before the session began")));
                    };
                    sess.handle(m, local).map_err(|e| match e {
                        // Our own store failed: not the peer's doing, no Close blames it.
                        SyncError::Local(s) => End::Local(s),
                        e => End::Sync(e),
                    })?;
                }
            }
        }
        // A full inbox taken without a write (all of it parked) ends our wait here.
        self.resume(now_ms);
        Ok(())
    }

    /// Starts reconciliation over the logs this peer may exchange with us.
    fn begin(&mut self, local: &impl Local) -> Result<(), End> {
        if let Some(m) = local.grants(&self.peer) {
            self.queue(&m);
        }
        self.offered = local.offer(&self.peer).map_err(local_end)?;
        self.accepted = local.accept().map_err(local_end)?;
        let heads = local.heads(&self.offered).map_err(local_end)?;
        // Read under the same lock as the heads: what moves after it counts as moved.
        self.point = local.change_point();
        let since = local.moved_since(&self.peer, super::MAX_SINCE);
        self.snapshot = Some(heads.clone());
        self.sess = Some(Session::with_since(heads, self.initiator, since));
        Ok(())
    }

    /// Offers entries to ingest: those of logs in the interest set go out as one effect; the
    /// rest wait for its answer (it may bring the certificate that admits them).
    fn offer(&mut self, pending: Vec<Entry>) {
        let (take, rest): (Vec<Entry>, Vec<Entry>) =
            pending.into_iter().partition(|e| self.accepted.contains(&e.header().author.0));
        if take.is_empty() {
            self.park(rest);
            return;
        }
        for e in &take {
            let (a, seq) = (e.header().author.0, e.header().seq);
            let k = self.known(&a).max(seq);
            self.known.insert(a, k);
            hold(&mut self.outcome.held, a, seq);
        }
        self.waiting = rest;
        self.effects.push_back(Effect::Ingest(take));
        self.wait = Wait::Ingest;
        self.held_by_us = true;
    }

    fn park(&mut self, mut rest: Vec<Entry>) {
        // Beyond the bound, entries are dropped unread (spec/sync.md, section 4).
        rest.truncate(PARK_LIMIT);
        self.parked = rest;
    }

    /// The answer to [`Effect::Ingest`].
    pub fn handle_ingested(&mut self, report: Result<Ingested, LocalError>, local: &impl Local) {
        if self.wait != Wait::Ingest || self.end.is_some() {
            return;
        }
        self.wait = Wait::Nothing;
        let report = match report {
            Ok(r) => r,
            Err(e) => return self.end_with(local_end(e)),
        };
        self.outcome.entries_in += report.accepted as u64;
        if let Some(bad) = report.misbehaviour {
            return self.fail(SyncError::InvalidEntry(bad));
        }
        if !report.held.is_empty() {
            // Kept within the park bound, in memory for this session only (a later session
            // brings them again otherwise).
            self.early.extend(report.held);
            self.early.truncate(PARK_LIMIT);
            let at = self.now.saturating_add(report.held_for_ms);
            self.early_at = Some(self.early_at.map_or(at, |t| t.min(at)));
        }
        self.outcome.held_ahead = self.early.len() as u64;
        // A certificate that arrived may admit more logs, both ways.
        let (accept, offer) = match (local.accept(), local.offer(&self.peer)) {
            (Ok(a), Ok(o)) => (a, o),
            (Err(e), _) | (_, Err(e)) => return self.end_with(local_end(e)),
        };
        // Cached sets: the same set is the same pointer; only a new one is compared.
        let grew = !Arc::ptr_eq(&accept, &self.accepted) && accept.difference(&self.accepted).next().is_some();
        if !Arc::ptr_eq(&offer.logs, &self.offered.logs) && offer.logs.difference(&self.offered.logs).next().is_some() {
            self.push_all = true;
        }
        self.accepted = accept;
        self.offered = offer;
        let rest = std::mem::take(&mut self.waiting);
        if report.accepted > 0 && grew {
            self.offer(rest);
        } else {
            self.park(rest);
        }
    }

    /// The answer to [`Effect::Introduce`]: whether the stranger is now a contact.
    pub fn handle_introduced(&mut self, accepted: Result<bool, LocalError>, local: &impl Local) {
        if self.wait != Wait::Introduction || self.end.is_some() {
            return;
        }
        self.wait = Wait::Nothing;
        match accepted {
            Ok(true) => {
                self.admitted = true;
                if let Some(token) = self.intro_token.take() {
                    self.answer_introduction(token, local);
                }
                if let Err(e) = self.begin(local) {
                    self.end_with(e);
                }
            }
            Ok(false) => self.fail(SyncError::NotAllowed),
            Err(e) => self.end_with(local_end(e)),
        }
    }

    /// The responder's answer to an Introduce: its own, with the same token and its card
    /// (spec/sync.md, section 6.10), at most once a session.
    fn answer_introduction(&mut self, token: [u8; 16], local: &impl Local) {
        if self.answered_intro {
            return;
        }
        self.answered_intro = true;
        if let Some(m) = local.introduction_answer(token) {
            self.queue(&m);
        }
    }

    /// The answer to [`Effect::Welcome`]: whatever it did, the session goes on (a card that
    /// did not fit leaves the short invite waiting).
    pub fn handle_welcomed(&mut self, done: Result<(), LocalError>) {
        if self.wait != Wait::Welcome || self.end.is_some() {
            return;
        }
        self.wait = Wait::Nothing;
        if let Err(e) = done {
            self.end_with(local_end(e));
        }
    }

    /// The answer to [`Effect::Grants`].
    pub fn handle_granted(&mut self, stored: Result<(), LocalError>) {
        if self.wait != Wait::Grants || self.end.is_some() {
            return;
        }
        self.wait = Wait::Nothing;
        if let Err(e) = stored {
            self.end_with(local_end(e));
        }
    }

    /// The next write the driver must carry out.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    fn queue(&mut self, m: &Message) {
        let f = frame(m);
        self.outcome.bytes_out += f.len() as u64;
        self.out.push_back(f);
    }

    /// The next bytes to send, if any. Reads the entries it sends from `local` one frame at a
    /// time, so memory stays bounded whatever the transfer.
    pub fn poll_transmit(&mut self, local: &impl Local, now_ms: u64) -> Option<Vec<u8>> {
        let bytes = self.next_transmit(local);
        if bytes.is_some() {
            self.touch(now_ms);
        }
        bytes
    }

    fn next_transmit(&mut self, local: &impl Local) -> Option<Vec<u8>> {
        if let Some(b) = self.out.pop_front() {
            return Some(b);
        }
        if self.end.is_some() {
            return None;
        }
        loop {
            if let Some(sess) = self.sess.as_mut()
                && self.sends.is_empty()
            {
                while let Some(t) = sess.poll_transfer() {
                    self.sends.push_back(t);
                }
            }
            if !self.sends.is_empty() {
                match self.entries_frame(local) {
                    Ok(Some(f)) => return Some(f),
                    Ok(None) => continue,
                    Err(e) => {
                        self.end_with(local_end(e));
                        return self.out.pop_front();
                    }
                }
            }
            let sess = self.sess.as_mut()?;
            sess.transfers_sent();
            if let Some(m) = sess.poll_message() {
                self.queue(&m);
                return self.out.pop_front();
            }
            if sess.is_synced() && !self.outcome.synced {
                self.on_synced(local);
            }
            if self.outcome.synced && self.live && self.plan_pushes(local) {
                continue;
            }
            return None;
        }
    }

    /// Reconciliation and its transfers are over on both sides.
    fn on_synced(&mut self, local: &impl Local) {
        self.outcome.synced = true;
        if let Some(p) = self.point {
            // The peer now holds what we offered at admission: the next session with it needs
            // to look only at what moved after this point (section 8.9). Moves since then that
            // the peer holds at our head (its own entries we took, or ours we sent) need no
            // second look either: the point then is now.
            let now = local.change_point().filter(|now| *now != p).filter(|_| {
                local.moved_after(p, super::MAX_SINCE).is_some_and(|moved| {
                    moved.iter().all(|a| local.sendable_seq(a).is_none_or(|head| head <= self.known(a)))
                })
            });
            local.note_synced(&self.peer, now.unwrap_or(p));
        }
        if let Some(s) = &self.sess {
            self.outcome.rounds = s.stats.rounds;
            self.outcome.forks = s.stats.forks_seen;
        }
        if !self.live {
            self.finish = true;
            return;
        }
        // The peer now holds at least the heads this session reconciled (`snapshot`), and what
        // it sent us (`known`).
        let known = std::mem::take(&mut self.known);
        for (a, seq) in known {
            let at_start = self.snapshot.as_ref().and_then(|s| s.get(&a)).map_or(0, |h| h.seq);
            self.known.insert(a, seq.max(at_start));
        }
        // What was written while we reconciled goes out now. The engine's events about it
        // waited for us; a transport without them is told here. Nothing written (the store
        // still shares the set we started from) is the idle case: nothing to look at.
        let unchanged = match (local.heads(&self.offered), &self.snapshot) {
            (Ok(now), Some(then)) => Arc::ptr_eq(&now, then),
            _ => false,
        };
        self.push_all = !unchanged;
    }

    /// The highest seq of `author` the peer is known to hold.
    fn known(&self, author: &[u8; 32]) -> u64 {
        match self.known.get(author) {
            Some(k) => *k,
            None => self.snapshot.as_ref().and_then(|s| s.get(author)).map_or(0, |h| h.seq),
        }
    }

    /// Queues the entries the peer lacks of the logs that changed. Returns whether any were.
    fn plan_pushes(&mut self, local: &impl Local) -> bool {
        let logs: Vec<[u8; 32]> = if self.push_all {
            self.push_all = false;
            self.push.clear();
            // Who may see what can have changed (a grant, a contact, a certificate).
            match local.offer(&self.peer) {
                Ok(o) => self.offered = o,
                Err(e) => {
                    self.end_with(local_end(e));
                    return false;
                }
            }
            self.offered.logs.iter().copied().collect()
        } else {
            let p = std::mem::take(&mut self.push);
            p.into_iter().filter(|a| self.offered.logs.contains(a)).collect()
        };
        let mut any = false;
        for a in logs {
            let Some(head) = local.sendable_seq(&a) else { continue };
            let known = self.known(&a);
            if head > known {
                self.sends.push_back(Transfer { author: a, from: known + 1, to: head });
                self.known.insert(a, head);
                any = true;
            }
        }
        any
    }

    /// One Entries frame from the front transfers, as many as fit (one per differing log is the
    /// common case, and a frame each would cost its header per log); `None` when they had
    /// nothing left.
    fn entries_frame(&mut self, local: &impl Local) -> Result<Option<Vec<u8>>, LocalError> {
        let mut wire: Vec<Vec<u8>> = Vec::new();
        let mut size = 16;
        while let Some(t) = self.sends.front_mut() {
            let room = SEND_CHUNK - wire.len();
            if room == 0 {
                break;
            }
            let want = usize::try_from(t.to.saturating_sub(t.from) + 1).unwrap_or(usize::MAX).min(room);
            let chunk = if t.from > t.to { Vec::new() } else { local.read(&t.author, t.from, want)? };
            let mut last = None;
            let mut full = false;
            for e in chunk.iter().take_while(|e| e.header().seq <= t.to) {
                let w = e.encode();
                if size + w.len() + 8 > MAX_FRAME / 2 && !wire.is_empty() {
                    full = true;
                    break;
                }
                size += w.len() + 8;
                wire.push(w);
                last = Some(e.header().seq);
            }
            let Some(last) = last else {
                if full {
                    break;
                }
                // Nothing (more) to read: what is not sendable yet goes with a later push.
                let t = *t;
                self.sends.pop_front();
                if self.live && self.outcome.synced {
                    // Not readable now (it should be): the peer is known to hold only what was
                    // sent; the next change retries, never this same call (no busy loop).
                    let k = self.known(&t.author).min(t.from.saturating_sub(1));
                    self.known.insert(t.author, k);
                }
                continue;
            };
            t.from = last + 1;
            let (author, done) = (t.author, t.from > t.to);
            if done {
                self.sends.pop_front();
            }
            // Before our Done the peer has read it once synced; a push after it may be lost
            // with the connection, so it does not count.
            if !self.outcome.synced {
                hold(&mut self.outcome.held, author, last);
            }
            if full || !done {
                break;
            }
        }
        if wire.is_empty() {
            return Ok(None);
        }
        self.outcome.entries_out += wire.len() as u64;
        let f = frame(&Message::Entries(wire));
        self.outcome.bytes_out += f.len() as u64;
        Ok(Some(f))
    }

    /// Whether the driver should finish its sending side now (a one-shot session is synced and
    /// everything is sent). Returns `true` once.
    pub fn poll_finish(&mut self, now_ms: u64) -> bool {
        if self.finish && self.out.is_empty() && self.finished_at.is_none() && self.end.is_none() {
            self.finished_at = Some(now_ms);
            return true;
        }
        false
    }

    /// When [`Conn::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.end.is_some() {
            return None;
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut t = Vec::new();
        if let Some(f) = self.finished_at {
            t.push(f.saturating_add(ms(LINGER)));
        }
        // While the session waits on us (our write, our backpressure) the peer is not stalling.
        if self.waiting_on_us() {
            return t.into_iter().min();
        }
        t.extend(self.early_at);
        if let Some(p) = self.decoder.partial_since() {
            t.push(p.saturating_add(ms(self.limits.frame_deadline)));
        }
        if let Some(p) = self.decoder.partial_since_hard() {
            t.push(p.saturating_add(ms(LINK_GRACE.max(self.limits.frame_deadline))));
        }
        let live = self.outcome.synced && self.live;
        let idle = if live { LIVE_IDLE } else { self.limits.reconcile_idle };
        t.push(self.last_activity.saturating_add(ms(idle)));
        if !live {
            t.push(self.last_progress.saturating_add(ms(LINK_GRACE.max(idle))));
        }
        t.into_iter().min()
    }

    pub fn handle_timeout(&mut self, now_ms: u64) {
        if self.end.is_some() {
            return;
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if self.finished_at.is_some_and(|f| now_ms >= f.saturating_add(ms(LINGER))) {
            return self.end_with(End::Done);
        }
        if self.waiting_on_us() {
            return;
        }
        if self.decoder.partial_since().is_some_and(|p| now_ms >= p.saturating_add(ms(self.limits.frame_deadline))) {
            return self
                .end_with(End::Local(format!("peer stalled inside a frame for {:?}", self.limits.frame_deadline)));
        }
        let hard_frame = LINK_GRACE.max(self.limits.frame_deadline);
        if self.decoder.partial_since_hard().is_some_and(|p| now_ms >= p.saturating_add(ms(hard_frame))) {
            return self.end_with(End::Local(format!("peer stalled inside a frame for {hard_frame:?} (lossy link)")));
        }
        let live = self.outcome.synced && self.live;
        let idle = if live { LIVE_IDLE } else { self.limits.reconcile_idle };
        if now_ms >= self.last_activity.saturating_add(ms(idle)) {
            return self.end_with(End::Local(format!("peer stalled: nothing for {idle:?}")));
        }
        let hard_idle = LINK_GRACE.max(idle);
        if !live && now_ms >= self.last_progress.saturating_add(ms(hard_idle)) {
            self.end_with(End::Local(format!("peer stalled: no byte moved for {hard_idle:?} (lossy link)")));
        }
    }

    /// Fails the session with a protocol error: a Close goes out first.
    fn fail(&mut self, e: SyncError) {
        self.end_with(End::Sync(e));
    }

    fn end_with(&mut self, end: End) {
        if self.end.is_some() {
            return;
        }
        if let End::Sync(e) = &end
            && !matches!(e, SyncError::PeerClosed { .. })
        {
            self.queue(&Message::Close { code: e.code(), reason: e.to_string() });
        }
        self.end = Some(end);
    }

    /// How the connection ended, once it has (then drain `poll_transmit` and close).
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// Closes locally (shutdown, transport lost).
    pub fn close(&mut self, why: String) {
        // A one-shot session that finished its side is done whatever happens to the stream.
        if self.finished_at.is_some() {
            return self.end_with(End::Done);
        }
        self.end_with(End::Local(why));
    }

    /// Entries of the logs we offer that the peer is not known to hold (0 after a one-shot
    /// session that reached synced).
    pub fn behind_by(&self, local: &impl Local) -> u64 {
        if !self.outcome.synced || !self.live {
            return 0;
        }
        self.offered.logs.iter().map(|a| local.sendable_seq(a).unwrap_or(0).saturating_sub(self.known(a))).sum()
    }
}

fn hold(held: &mut BTreeMap<[u8; 32], u64>, author: [u8; 32], seq: u64) {
    let h = held.entry(author).or_default();
    *h = (*h).max(seq);
}

fn local_end(e: LocalError) -> End {
    End::Local(e.to_string())
}

#[cfg(test)]
mod tests;
