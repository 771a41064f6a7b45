//! Runs one sync session over a QUIC connection: reconcile, transfer, then (optionally) stay
//! live and push new entries as they are written.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use quinn::SendStream;

use super::host::Shared;
use super::{NetError, frames, tls};
use crate::log::{Entry, ValidationError};
use crate::store::PeerRecord;
use crate::sync::{HeadItem, HeadSet, MAX_FRAME, Message, Session, SyncError};

/// Idle limit once live; QUIC keep-alives and the idle timeout watch the connection itself.
const LIVE_IDLE: Duration = Duration::from_secs(24 * 3600);
/// Frames read ahead of ingest.
const READ_AHEAD: usize = 64;
/// Most entries gathered into one ingest call.
const INGEST_BATCH: usize = 50_000;

/// A frame as the reader task hands it over: entries already decoded.
enum Incoming {
    Entries(Vec<Entry>),
    Message(Message),
}

/// Most entries held per session while waiting for the certificate that admits their log.
const PARK_LIMIT: usize = 4096;
/// Entries read from the store per chunk when sending.
const SEND_CHUNK: usize = 2048;

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
}

/// Reasons that mean the peer sent something no honest node sends.
fn misbehaviour(e: &ValidationError) -> bool {
    !matches!(
        e,
        ValidationError::Fork
            | ValidationError::Forked
            | ValidationError::WrongSeq { .. }
            | ValidationError::PrevMismatch
            | ValidationError::TimestampRegression { .. }
    )
}

async fn send_range(
    shared: &Shared,
    send: &mut SendStream,
    author: [u8; 32],
    from: u64,
    to: u64,
    out: &mut Outcome,
) -> Result<(), NetError> {
    let mut next = from;
    while next <= to {
        let want = usize::try_from(to - next + 1).unwrap_or(usize::MAX).min(SEND_CHUNK);
        let chunk = shared.with_store(|s| s.read_log(&author, next, want))?;
        let Some(last) = chunk.last() else { break };
        next = last.header().seq + 1;
        let mut frame: Vec<Vec<u8>> = Vec::new();
        let mut size = 16;
        for e in &chunk {
            let wire = e.encode();
            if size + wire.len() + 8 > MAX_FRAME && !frame.is_empty() {
                out.bytes_out += frames::write(send, &Message::Entries(std::mem::take(&mut frame))).await? as u64;
                size = 16;
            }
            size += wire.len() + 8;
            frame.push(wire);
        }
        out.entries_out += chunk.len() as u64;
        if !frame.is_empty() {
            out.bytes_out += frames::write(send, &Message::Entries(frame)).await? as u64;
        }
    }
    Ok(())
}

fn heads_snapshot(heads: &HeadSet) -> Vec<([u8; 32], u64)> {
    let mut h = heads.clone();
    let (a, b) = h.span(&None, &None);
    h.items(a, b).iter().map(|i| (i.author, i.seq)).collect()
}

/// The interest set as it stands now (it grows as certificates arrive).
fn interest_now(shared: &Shared) -> Result<BTreeSet<[u8; 32]>, crate::store::StoreError> {
    shared.with_store(|s| {
        let allowed: Vec<[u8; 32]> = s.peers()?.into_iter().filter(|(_, r)| r.allowed).map(|(k, _)| k).collect();
        Ok(crate::sync::interest_set(s.trust(), &shared.device, &allowed))
    })
}

/// Decodes and ingests a peer's entries; returns how many were accepted and the highest seq per
/// author the peer has shown us. A device log's first entry can bring its user into the
/// interest set, so entries left out are offered again after each pass that learned something.
async fn ingest(
    shared: &Arc<Shared>,
    entries: Vec<Entry>,
    interest: &mut BTreeSet<[u8; 32]>,
    parked: &mut Vec<Entry>,
) -> Result<(usize, BTreeMap<[u8; 32], u64>), NetError> {
    let mut pending = std::mem::take(parked);
    pending.extend(entries);
    let mut shown = BTreeMap::new();
    let mut accepted = 0;
    loop {
        let (take, rest): (Vec<Entry>, Vec<Entry>) =
            pending.into_iter().partition(|e| interest.contains(&e.header().author.0));
        pending = rest;
        if take.is_empty() {
            break;
        }
        for e in &take {
            let (a, seq) = (e.header().author.0, e.header().seq);
            shown.entry(a).and_modify(|s: &mut u64| *s = (*s).max(seq)).or_insert(seq);
        }
        let sh = shared.clone();
        let report =
            tokio::task::spawn_blocking(move || sh.with_store_mut(|s| s.ingest(take, crate::clock::wall_ms())))
                .await
                .map_err(|e| NetError::Stream(e.to_string()))??;
        accepted += report.accepted;
        if let Some(bad) = report.rejected.iter().find(|r| misbehaviour(&r.error)) {
            return Err(SyncError::InvalidEntry(format!("seq {}: {}", bad.seq, bad.error)).into());
        }
        let grown = interest_now(shared)?;
        if report.accepted == 0 || grown.len() == interest.len() {
            *interest = grown;
            break;
        }
        *interest = grown;
    }
    if accepted > 0 {
        // Messages from others are acknowledged at once; the acks travel with the next push.
        let sh = shared.clone();
        let _ = tokio::task::spawn_blocking(move || sh.acknowledge()).await;
        shared.notify_changed();
    }
    // Entries outside the interest set wait (a later frame may carry the certificate that
    // admits them), within a bound; beyond it they are dropped unread.
    pending.truncate(PARK_LIMIT);
    *parked = pending;
    Ok((accepted, shown))
}

/// Runs a session on `conn` until both sides are synced (and, if `live`, until the connection
/// ends), recording the peer's state locally.
pub(crate) async fn run(
    shared: Arc<Shared>,
    conn: quinn::Connection,
    initiator: bool,
    live: bool,
) -> Result<Outcome, NetError> {
    let peer = tls::peer_key(&conn).ok_or(NetError::NotAllowed)?;
    shared.set_online(peer, Some(conn.remote_address()));
    let result = session(&shared, &conn, peer, initiator, live).await;
    // Strangers refused before introducing themselves leave no trace in the peer records.
    if !shared.is_allowed(&peer) {
        shared.set_online(peer, None);
        let code = match &result {
            Err((_, NetError::Sync(s))) => s.code(),
            _ => 6,
        };
        conn.close(u32::from(code).into(), b"not allowed");
        return result.map_err(|(_, e)| e);
    }
    shared.set_online(peer, None);
    let now = crate::clock::wall_ms();
    let (mut out, err) = match result {
        Ok(o) => (o, None),
        Err((o, e)) => (o, Some(e)),
    };
    out.peer = peer;
    let _ = shared.with_store(|s| {
        let mut rec = s.peer(&peer)?.unwrap_or_default();
        rec.last_seen_ms = now;
        if out.synced {
            rec.last_sync_ms = now;
        }
        rec.entries_in += out.entries_in;
        rec.entries_out += out.entries_out;
        if out.synced {
            rec.behind_by = out.behind_by;
        }
        s.set_peer(&peer, &rec, false)
    });
    match err {
        None => {
            conn.close(0u32.into(), b"done");
            Ok(out)
        }
        Some(e) => {
            let code = match &e {
                NetError::Sync(s) => s.code(),
                _ => 100,
            };
            conn.close(u32::from(code).into(), e.to_string().as_bytes());
            tracing::info!(code, error = %e, "sync session closed with an error");
            Err(e)
        }
    }
}

type Failed = (Outcome, NetError);

async fn session(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    peer: [u8; 32],
    initiator: bool,
    live: bool,
) -> Result<Outcome, Failed> {
    let mut out = Outcome { peer, ..Outcome::default() };
    let streams = if initiator {
        conn.open_bi().await.map_err(NetError::from)
    } else {
        // A peer that connects and never opens its stream is not kept waiting on.
        match tokio::time::timeout(shared.limits.reconcile_idle, conn.accept_bi()).await {
            Ok(r) => r.map_err(NetError::from),
            Err(_) => Err(NetError::Timeout(shared.limits.reconcile_idle)),
        }
    };
    let (mut send, mut recv) = match streams {
        Ok(s) => s,
        Err(e) => return Err((out, e)),
    };
    // Dialing someone whose invite we added: introduce ourselves first, so they add us back.
    let mut admitted = initiator || shared.is_allowed(&peer);
    if initiator {
        let intro = shared.read_node(|n| {
            let token = n.store.peer(&peer).ok().flatten().and_then(|r| r.intro_token)?;
            Some(Message::Introduce { token: token.0, card: n.own_card().ok()? })
        });
        if let Some(m) = intro {
            match frames::write(&mut send, &m).await {
                Ok(n) => out.bytes_out += n as u64,
                Err(e) => return Err((out, e)),
            }
        }
    }
    let mut interest = match interest_now(shared) {
        Ok(v) => v,
        Err(e) => return Err((out, e.into())),
    };
    let heads = shared.with_store_mut(|s| {
        if s.heads().all(|(a, _)| interest.contains(&a)) {
            // The usual case: every held log is in the interest set; the cached set is used.
            s.head_set()
        } else {
            HeadSet::from_items(s.heads().filter(|(a, _)| interest.contains(a)).map(|(a, h)| HeadItem {
                author: a,
                seq: h.seq,
                id: h.id,
            }))
        }
    });
    let snapshot: Vec<([u8; 32], u64)> = heads_snapshot(&heads);
    let mut sess = Session::new(heads, initiator);
    let mut changes = shared.changed.subscribe();
    // A reader task makes frame reads cancel-safe under select!.
    let limits = shared.limits;
    let idle = Arc::new(AtomicU64::new(u64::try_from(limits.reconcile_idle.as_millis()).unwrap_or(u64::MAX)));
    // Up to this many frames are read (and their entries decoded) ahead of ingest, which runs
    // on a blocking thread meanwhile: receiving and validating overlap.
    let (tx, mut rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    let reader_idle = idle.clone();
    let reader = tokio::spawn(async move {
        loop {
            let limit = Duration::from_millis(reader_idle.load(Ordering::Relaxed));
            let r = frames::read(&mut recv, limit, limits.frame_deadline).await.and_then(|f| match f {
                Some((Message::Entries(raw), n)) => {
                    let es = raw.iter().map(|b| Entry::decode(b)).collect::<Result<Vec<_>, _>>();
                    es.map(|es| Some((Incoming::Entries(es), n)))
                        .map_err(|e| SyncError::InvalidEntry(e.to_string()).into())
                }
                Some((m, n)) => Ok(Some((Incoming::Message(m), n))),
                None => Ok(None),
            });
            // A wait that began while reconciling keeps the short limit; once the session is
            // live, running into it only means a quiet peer.
            if matches!(r, Err(NetError::Timeout(_)))
                && u128::from(reader_idle.load(Ordering::Relaxed)) > limit.as_millis()
            {
                continue;
            }
            let stop = !matches!(r, Ok(Some(_)));
            if tx.send(r).await.is_err() || stop {
                break;
            }
        }
    });
    let mut peer_known: BTreeMap<[u8; 32], u64> = BTreeMap::new();
    let mut parked: Vec<Entry> = Vec::new();
    // A frame taken from the queue while gathering a batch, handled right after it.
    let mut held: Option<Result<Option<(Incoming, usize)>, NetError>> = None;
    let r: Result<(), NetError> = async {
        loop {
            while let Some(t) = sess.poll_transfer() {
                send_range(shared, &mut send, t.author, t.from, t.to, &mut out).await?;
            }
            sess.transfers_sent();
            while let Some(m) = sess.poll_message() {
                out.bytes_out += frames::write(&mut send, &m).await? as u64;
            }
            if sess.is_synced() && !out.synced {
                out.synced = true;
                out.rounds = sess.stats.rounds;
                out.forks = sess.stats.forks_seen;
                if !live {
                    send.finish().map_err(|e| NetError::Stream(e.to_string()))?;
                    // Closing at once could cut off our last frames; wait (briefly) until the
                    // peer has read the stream to its end.
                    let _ = tokio::time::timeout(Duration::from_secs(5), send.stopped()).await;
                    return Ok(());
                }
                idle.store(u64::try_from(LIVE_IDLE.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
                // The peer now holds at least the heads this session reconciled (the snapshot
                // taken at its start, plus what it sent us); anything written since is pushed
                // right away by the change notification below.
                for (a, seq) in &snapshot {
                    let k = peer_known.entry(*a).or_insert(0);
                    *k = (*k).max(*seq);
                }
                shared.notify_changed();
            }
            // A frame held back while gathering a batch is handled before anything else, so
            // it is never lost to a change notification winning the select.
            let frame = match held.take() {
                Some(f) => Some(f),
                None => tokio::select! {
                    f = rx.recv() => f,
                    changed = changes.changed(), if out.synced && live => {
                        if changed.is_err() {
                            return Ok(());
                        }
                        let pushes: Vec<([u8; 32], u64, u64)> = shared.with_store(|s| {
                            interest.iter().filter_map(|a| {
                                let head = s.head(a)?.seq;
                                let known = peer_known.get(a).copied().unwrap_or(0);
                                (head > known).then_some((*a, known + 1, head))
                            }).collect()
                        });
                        for (a, from, to) in pushes {
                            send_range(shared, &mut send, a, from, to, &mut out).await?;
                            peer_known.insert(a, to);
                        }
                        continue;
                    }
                },
            };
            let Some(frame) = frame else { return Ok(()) };
            let Some((msg, n)) = frame? else { return Ok(()) };
            out.bytes_in += n as u64;
            if out.bytes_in > limits.session_bytes_in {
                return Err(SyncError::LimitExceeded("bytes received in one session").into());
            }
            if !admitted {
                // A stranger that passed the handshake (we have open invites) must present one.
                let Incoming::Message(Message::Introduce { token, card }) = msg else {
                    return Err(SyncError::NotAllowed.into());
                };
                let ok = shared
                    .with_node_mut(|n| n.accept_introduction(&token, &card, &peer))
                    .map_err(|e| NetError::Stream(e.to_string()))?;
                if !ok {
                    return Err(SyncError::NotAllowed.into());
                }
                admitted = true;
                interest = interest_now(shared)?;
                continue;
            }
            match msg {
                Incoming::Message(Message::Introduce { .. }) => {}
                Incoming::Entries(mut es) => {
                    // Take whatever else has already arrived into the same ingest: one
                    // validation pass and one fsync for all of it.
                    while es.len() < INGEST_BATCH {
                        match rx.try_recv() {
                            Ok(Ok(Some((Incoming::Entries(more), n)))) => {
                                out.bytes_in += n as u64;
                                es.extend(more);
                            }
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if out.bytes_in > limits.session_bytes_in {
                        return Err(SyncError::LimitExceeded("bytes received in one session").into());
                    }
                    let (accepted, shown) = ingest(shared, es, &mut interest, &mut parked).await?;
                    out.entries_in += accepted as u64;
                    for (a, s) in shown {
                        let k = peer_known.entry(a).or_insert(0);
                        *k = (*k).max(s);
                    }
                }
                Incoming::Message(other) => shared.with_store(|s| sess.handle(other, s))?,
            }
        }
    }
    .await;
    reader.abort();
    if out.synced {
        out.behind_by = if live {
            shared.with_store(|s| {
                interest
                    .iter()
                    .map(|a| s.head(a).map_or(0, |h| h.seq).saturating_sub(peer_known.get(a).copied().unwrap_or(0)))
                    .sum()
            })
        } else {
            0
        };
    }
    match r {
        Ok(()) => Ok(out),
        Err(e) => {
            if let NetError::Sync(s) = &e {
                let _ = frames::write(&mut send, &Message::Close { code: s.code(), reason: s.to_string() }).await;
            }
            Err((out, e))
        }
    }
}

impl Shared {
    pub(crate) fn record_allowed(
        &self,
        key: [u8; 32],
        address: Option<String>,
    ) -> Result<(), crate::store::StoreError> {
        self.with_store(|s| {
            let mut rec: PeerRecord = s.peer(&key)?.unwrap_or_default();
            rec.allowed = true;
            if address.is_some() {
                rec.address = address;
            }
            s.set_peer(&key, &rec, true)
        })?;
        self.allow_cache_insert(key);
        Ok(())
    }
}
