//! `libra/blob/1` (spec/blobs.md, section 5), the serving side: on each bidirectional stream a
//! contact asks for chunk ranges of a blob by its root, and gets them bao-encoded from what
//! this node has verified. Its own connection, so files never hold up messages.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::router::ProtocolHandler;
use super::{NetError, tls};
use crate::blob::{MAX_REQUEST_FRAME, Request, Status};
use crate::engine::Engine;

pub const BLOB_ALPN: &[u8] = b"libra/blob/1";

/// Longest wait for the next request on a stream.
pub(crate) const REQUEST_IDLE: Duration = Duration::from_secs(30);

pub(crate) struct BlobProtocol {
    pub(crate) engine: Engine,
}

impl ProtocolHandler for BlobProtocol {
    fn accept(&self, conn: quinn::Connection) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let engine = self.engine.clone();
        Box::pin(async move {
            // The handshake lets strangers with an invite through to introduce themselves;
            // blobs are for peers we allow.
            if !tls::peer_key(&conn).is_some_and(|k| engine.is_allowed(&k)) {
                conn.close(2u32.into(), b"not allowed");
                return;
            }
            while let Ok((send, recv)) = conn.accept_bi().await {
                let engine = engine.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_stream(&engine, send, recv).await {
                        tracing::info!(error = %e, "blob stream ended");
                    }
                });
            }
        })
    }
}

/// Reads requests and prepares each answer on a blocking thread while the one before is being
/// sent (two prepared at most: memory stays at a few MiB per stream); answers go out in order.
async fn serve_stream(engine: &Engine, send: quinn::SendStream, mut recv: quinn::RecvStream) -> Result<(), NetError> {
    let blobs = engine.blobs();
    let spare = Spares::default();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<tokio::task::JoinHandle<(Status, Spare)>>(2);
    let writer = tokio::spawn(async move {
        let mut send = send;
        while let Some(answer) = rx.recv().await {
            let (status, bytes) = answer.await.map_err(|e| NetError::Stream(e.to_string()))?;
            respond(&mut send, status, bytes).await?;
        }
        let _ = send.finish();
        Ok::<(), NetError>(())
    });
    let read = async {
        loop {
            let mut len = [0u8; 4];
            match tokio::time::timeout(REQUEST_IDLE, recv.read_exact(&mut len)).await {
                Err(_) => return Err(NetError::Timeout(REQUEST_IDLE)),
                Ok(Err(quinn::ReadExactError::FinishedEarly(0))) => return Ok(()),
                Ok(Err(e)) => return Err(NetError::Stream(e.to_string())),
                Ok(Ok(())) => {}
            }
            let n = u32::from_be_bytes(len) as usize;
            if n > MAX_REQUEST_FRAME {
                let _ = tx.send(tokio::spawn(async { (Status::Refused, Spare::default()) })).await;
                return Err(NetError::Stream("request frame too long".into()));
            }
            let mut body = vec![0u8; n];
            tokio::time::timeout(REQUEST_IDLE, recv.read_exact(&mut body))
                .await
                .map_err(|_| NetError::Timeout(REQUEST_IDLE))?
                .map_err(|e| NetError::Stream(e.to_string()))?;
            let answer = match Request::decode(&body) {
                Ok(req) => {
                    let (blobs, spare) = (blobs.clone(), spare.clone());
                    tokio::task::spawn_blocking(move || {
                        let mut out = spare.take();
                        let status = blobs.serve_into(&req, &mut out.buf);
                        (status, out)
                    })
                }
                Err(_) => tokio::spawn(async { (Status::Refused, Spare::default()) }),
            };
            if tx.send(answer).await.is_err() {
                return Ok(()); // the writer stopped: its error says why
            }
        }
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(|e| NetError::Stream(e.to_string()))?;
    read.and(written)
}

/// Response buffers of one stream that quinn has let go of: a fresh 1 MiB buffer per
/// response costs its page faults, a few percent of serving a file.
#[derive(Clone, Default)]
struct Spares(std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

/// Most spare buffers a stream keeps (those in flight come back when the peer has them).
const SPARES: usize = 4;

impl Spares {
    fn take(&self) -> Spare {
        let buf = self.0.lock().ok().and_then(|mut v| v.pop()).unwrap_or_default();
        Spare { buf, home: Some(self.clone()) }
    }
}

/// A response buffer that returns to its stream's spares when dropped.
#[derive(Default)]
struct Spare {
    buf: Vec<u8>,
    home: Option<Spares>,
}

impl AsRef<[u8]> for Spare {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        if let Some(home) = self.home.take()
            && let Ok(mut v) = home.0.lock()
            && v.len() < SPARES
        {
            v.push(std::mem::take(&mut self.buf));
        }
    }
}

/// Writes one answer; a peer that stops reading for [`REQUEST_IDLE`] loses the stream (it
/// would otherwise hold the answers prepared for it).
async fn respond(send: &mut quinn::SendStream, status: Status, bytes: Spare) -> Result<(), NetError> {
    let mut head = [0u8; 5];
    head[0] = status as u8;
    head[1..].copy_from_slice(&(bytes.buf.len() as u32).to_be_bytes());
    // Handed over, not copied: quinn keeps the buffer until the peer has it, then it goes
    // back to the stream's spares.
    let mut chunks = [bytes::Bytes::copy_from_slice(&head), bytes::Bytes::from_owner(bytes)];
    let write = send.write_all_chunks(&mut chunks);
    tokio::time::timeout(REQUEST_IDLE, write)
        .await
        .map_err(|_| NetError::Timeout(REQUEST_IDLE))?
        .map_err(|e| NetError::Stream(e.to_string()))
}
