//! Runs a [`Conn`] over any ordered, reliable byte stream (a QUIC stream, an in-memory pipe, a
//! relayed stream): reads and writes concurrently, carries out the connection's effects on the
//! engine, feeds it the engine's change events and its timers. Nothing protocol-specific lives
//! here.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::engine::{Engine, Event, NodeLocal};
use crate::sync::{Conn, Effect, Ingested, LocalError};

/// Bytes gathered from the connection into one write.
const WRITE_BATCH: usize = 256 * 1024;
/// Longest an ended session waits to hand over its last bytes.
const FLUSH_ON_END: Duration = Duration::from_secs(5);
/// Bytes read at a time.
const READ_BUF: usize = 64 * 1024;

enum Answer {
    Ingested(Result<Ingested, LocalError>),
    Introduced(Result<bool, LocalError>),
    Granted(Result<(), LocalError>),
    Welcomed(Result<(), LocalError>),
}

/// An engine write's outcome and the write's own, as the connection takes them.
fn flat<T>(r: Result<Result<T, impl std::fmt::Display>, impl std::fmt::Display>) -> Result<T, LocalError> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(LocalError(e.to_string())),
        Err(e) => Err(LocalError(e.to_string())),
    }
}

type Pending = Pin<Box<dyn Future<Output = Answer> + Send>>;

fn start(engine: &Engine, effect: Effect, peer: [u8; 32]) -> Pending {
    let engine = engine.clone();
    match effect {
        Effect::Ingest(entries) => Box::pin(async move {
            let r = engine
                .ingest(entries)
                .await
                .map_err(|e| LocalError(e.to_string()))
                .map(|report| report.summary(crate::clock::wall_ms()));
            Answer::Ingested(r)
        }),
        Effect::Introduce { token, card } => Box::pin(async move {
            Answer::Introduced(flat(engine.write_async(move |n| n.accept_introduction(&token, &card, &peer)).await))
        }),
        Effect::Welcome { token, card } => Box::pin(async move {
            let r = engine.write_async(move |n| n.complete_short_invite(&peer, &token, &card)).await;
            Answer::Welcomed(flat(r).map(|_| ()))
        }),
        Effect::Grants(tags) => Box::pin(async move {
            Answer::Granted(flat(engine.write_async(move |n| n.receive_grants(&peer, &tags)).await).map(|_| ()))
        }),
    }
}

/// Drives `conn` until it ends; returns it (its `end()` and `outcome` say how it went).
pub async fn run<R, W>(engine: &Engine, conn: Conn, r: R, w: W) -> Conn
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    run_with(engine, conn, r, w, Watch::default()).await
}

/// Whether the transport under a stream shows a live but lossy link to the peer: then a slow
/// stream is a slow link, not a stalled peer.
pub type Alive<'a> = &'a (dyn Fn() -> bool + Send + Sync);

/// What a driver knows about the transport under a stream, beyond its bytes.
#[derive(Default, Clone, Copy)]
pub struct Watch<'a> {
    /// Whether the transport still hears from the peer: a lossy link that delays the stream
    /// (QUIC backing off its retransmissions) is not a stalled peer.
    pub alive: Option<Alive<'a>>,
    /// Signalled when this node ends the session: a better path to the peer replaced this
    /// one, or the peer was blocked.
    pub replaced: Option<&'a tokio::sync::Notify>,
}

/// [`run`], with what the driver knows about the transport.
pub async fn run_with<R, W>(engine: &Engine, mut conn: Conn, mut r: R, mut w: W, watch: Watch<'_>) -> Conn
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let clock = Instant::now();
    let now = move || u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut events = engine.subscribe();
    let mut buf = vec![0u8; READ_BUF];
    let mut outbuf: Vec<u8> = Vec::new();
    let mut pos = 0;
    // Written but maybe not flushed: a TLS stream takes bytes into its own buffer when the
    // transport under it is full, and sends them only on a later write or flush.
    let mut unflushed = false;
    let mut effect: Option<Pending> = None;
    let peer = conn.peer();
    loop {
        let read = engine.read(|n| {
            let local = NodeLocal { engine, node: n };
            conn.drive(&local, now());
            if pos == outbuf.len() {
                outbuf.clear();
                pos = 0;
                while outbuf.len() < WRITE_BATCH {
                    match conn.poll_transmit(&local, now()) {
                        Some(b) => outbuf.extend_from_slice(&b),
                        None => break,
                    }
                }
            }
        });
        if let Err(e) = read {
            conn.close(e.to_string());
        }
        if effect.is_none()
            && let Some(e) = conn.poll_effect()
        {
            effect = Some(start(engine, e, peer));
        }
        if conn.end().is_some() {
            // What is left (a Close) gets a bounded time: a peer that stops reading cannot
            // hold an ended session open.
            let mut rest = outbuf.split_off(pos);
            let _ = engine.read(|n| {
                let local = NodeLocal { engine, node: n };
                while let Some(b) = conn.poll_transmit(&local, now()) {
                    rest.extend_from_slice(&b);
                }
            });
            let _ = tokio::time::timeout(FLUSH_ON_END, w.write_all(&rest)).await;
            break;
        }
        if pos == outbuf.len() && conn.poll_finish(now()) {
            // A stream that does not take its end in time ends the session (LINGER runs anyway).
            let _ = tokio::time::timeout(FLUSH_ON_END, w.shutdown()).await;
        }
        let deadline = conn.poll_timeout().map(|t| clock + Duration::from_millis(t));
        tokio::select! {
            answer = async {
                match effect.as_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            }, if effect.is_some() => {
                effect = None;
                let r = engine.read(|n| {
                    let local = NodeLocal { engine, node: n };
                    match answer {
                        Answer::Ingested(i) => conn.handle_ingested(i, &local),
                        Answer::Introduced(i) => conn.handle_introduced(i, &local),
                        Answer::Granted(g) => conn.handle_granted(g),
                        Answer::Welcomed(w) => conn.handle_welcomed(w),
                    }
                });
                if let Err(e) = r {
                    conn.close(e.to_string());
                }
            }
            n = write_or_flush(&mut w, &outbuf[pos..]), if pos < outbuf.len() || unflushed => match n {
                Ok(Some(0)) | Err(_) => {
                    conn.close("the stream closed while writing".into());
                    outbuf.clear();
                    pos = 0;
                    unflushed = false;
                }
                Ok(Some(n)) => {
                    pos += n;
                    unflushed = true;
                    conn.handle_sent(now());
                }
                Ok(None) => unflushed = false,
            },
            n = r.read(&mut buf), if conn.wants_input() => match n {
                Ok(0) => conn.handle_eof(now()),
                Ok(n) => conn.handle_input(&buf[..n], now()),
                Err(e) => conn.close(format!("stream: {e}")),
            },
            ev = events.recv(), if conn.wants_changes() => match ev {
                Ok(Event::Stored { logs }) => conn.handle_changed(Some(&logs)),
                Ok(Event::Interest) | Err(RecvError::Lagged(_)) => conn.handle_changed(None),
                Ok(_) => {}
                Err(RecvError::Closed) => conn.close("the engine stopped".into()),
            },
            () = replaced(watch.replaced) => conn.close("this node ended the session (a better path replaced it, or the peer was blocked)".into()),
            () = sleep_until(deadline), if deadline.is_some() => {
                if watch.alive.is_some_and(|f| f()) {
                    conn.handle_alive(now());
                }
                conn.handle_timeout(now());
            }
            else => conn.close("nothing left to wait for".into()),
        }
    }
    let _ = tokio::time::timeout(FLUSH_ON_END, w.flush()).await;
    conn
}

/// Writes what is left of the batch, or once it is all written, flushes it: before the session
/// waits on its peer, every byte it wrote must be on its way.
async fn write_or_flush<W: AsyncWrite + Unpin>(w: &mut W, rest: &[u8]) -> std::io::Result<Option<usize>> {
    if rest.is_empty() { w.flush().await.map(|()| None) } else { w.write(rest).await.map(Some) }
}

async fn replaced(n: Option<&tokio::sync::Notify>) {
    match n {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
