//! Length-prefixed frames on a QUIC stream, with the size limit checked before allocating and a
//! deadline per frame so a peer trickling bytes (slowloris) is cut off.

use std::time::Duration;

use quinn::{RecvStream, SendStream};

use super::NetError;
use crate::sync::{MAX_FRAME, Message, SyncError, frame};

pub async fn write(send: &mut SendStream, msg: &Message) -> Result<usize, NetError> {
    let bytes = frame(msg);
    send.write_all(&bytes).await.map_err(|e| NetError::Stream(e.to_string()))?;
    Ok(bytes.len())
}

/// Reads one frame. `idle` bounds the wait for its first byte; the rest must follow within
/// `deadline`. Returns `None` when the peer finished the stream cleanly.
pub async fn read(
    recv: &mut RecvStream,
    idle: Duration,
    deadline: Duration,
) -> Result<Option<(Message, usize)>, NetError> {
    let mut len = [0u8; 4];
    let first = tokio::time::timeout(idle, recv.read(&mut len[..1])).await.map_err(|_| NetError::Timeout(idle))?;
    match first.map_err(|e| NetError::Stream(e.to_string()))? {
        None | Some(0) => return Ok(None),
        Some(_) => {}
    }
    let body = tokio::time::timeout(deadline, async {
        recv.read_exact(&mut len[1..]).await.map_err(|e| NetError::Stream(e.to_string()))?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_FRAME {
            return Err(NetError::Sync(SyncError::FrameTooLarge(n)));
        }
        let mut buf = vec![0u8; n];
        recv.read_exact(&mut buf).await.map_err(|e| NetError::Stream(e.to_string()))?;
        Ok(buf)
    })
    .await
    .map_err(|_| NetError::StalledFrame(deadline))??;
    let msg = Message::decode(&body)?;
    Ok(Some((msg, body.len() + 4)))
}
