//! `libra/link/1` (spec/devices.md, "Linking"): the new device sends one [`LinkRequest`] on a
//! bidirectional stream, the linking device answers one [`LinkGrant`]. Frames are a 4-byte
//! big-endian length and canonical MessagePack, with limits checked before allocating.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::router::ProtocolHandler;
use super::{NetError, tls};
use crate::codec::{self, Bytes};
use crate::engine::Engine;
use crate::identity::DeviceKeys;
use crate::link::{LinkCode, LinkGrant, LinkRequest, MAX_GRANT, MAX_REQUEST, clip_name, proof};

pub use crate::link::LINK_ALPN;

/// Longest wait for either message.
const LINK_TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) struct LinkProtocol {
    pub(crate) engine: Engine,
}

impl ProtocolHandler for LinkProtocol {
    fn accept(&self, conn: quinn::Connection) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let engine = self.engine.clone();
        Box::pin(async move {
            let Some(peer) = tls::peer_key(&conn) else { return };
            if let Err(e) = serve(&engine, peer, &conn).await {
                tracing::info!(error = %e, "link request ended");
            }
        })
    }
}

async fn serve(engine: &Engine, peer: [u8; 32], conn: &quinn::Connection) -> Result<(), NetError> {
    let (send, mut recv) =
        tokio::time::timeout(LINK_TIMEOUT, conn.accept_bi()).await.map_err(|_| NetError::Timeout(LINK_TIMEOUT))??;
    let bytes = read_frame(&mut recv, MAX_REQUEST).await?;
    let grant = match codec::decode::<LinkRequest>(&bytes) {
        Ok(req) if req.version == 1 => {
            let engine = engine.clone();
            tokio::task::spawn_blocking(move || engine.answer_link(peer, req))
                .await
                .map_err(|e| NetError::Stream(e.to_string()))?
        }
        _ => LinkGrant::refused("malformed request"),
    };
    let mut send = send;
    let granted = grant.refusal.is_empty();
    write_frame(&mut send, &codec::encode(&grant)).await?;
    if granted {
        // The content keys this device kept: the new one reads the history whose agreement
        // secrets are gone (spec/devices.md, "Retention").
        // A page at a time, read off the runtime: memory stays at one frame whatever the
        // history's size.
        let mut after = None;
        loop {
            let engine = engine.clone();
            let page = tokio::task::spawn_blocking(move || {
                engine.read(|n| n.store.kept_keys_after(after.as_ref(), KEYS_PER_FRAME))
            })
            .await
            .map_err(|e| NetError::Stream(e.to_string()))?
            .map_err(|e| NetError::Stream(e.to_string()))?
            .map_err(|e| NetError::Stream(e.to_string()))?;
            let Some(last) = page.last() else { break };
            after = Some(last.0);
            let pairs: Vec<(Bytes<32>, Bytes<32>)> = page.iter().map(|(i, k)| (Bytes(*i), Bytes(*k))).collect();
            write_frame(&mut send, &codec::encode(&pairs)).await?;
        }
    }
    let end: Vec<(Bytes<32>, Bytes<32>)> = Vec::new();
    let body = codec::encode(&end);
    let mut last = (body.len() as u32).to_be_bytes().to_vec();
    last.extend_from_slice(&body);
    super::relay::answer(send, &last).await;
    Ok(())
}

/// Content keys per frame after a grant.
const KEYS_PER_FRAME: usize = 1024;
/// Largest key frame: 1024 pairs of two `bin 32` and their array headers.
const MAX_KEY_FRAME: usize = 80 * 1024;

async fn write_frame(send: &mut quinn::SendStream, body: &[u8]) -> Result<(), NetError> {
    let write = async {
        send.write_all(&(body.len() as u32).to_be_bytes()).await?;
        send.write_all(body).await
    };
    tokio::time::timeout(LINK_TIMEOUT, write)
        .await
        .map_err(|_| NetError::Timeout(LINK_TIMEOUT))?
        .map_err(|e| NetError::Stream(e.to_string()))
}

async fn read_frame(recv: &mut quinn::RecvStream, limit: usize) -> Result<Vec<u8>, NetError> {
    let read = async {
        let mut len = [0u8; 4];
        recv.read_exact(&mut len).await.map_err(|e| NetError::Stream(e.to_string()))?;
        let n = u32::from_be_bytes(len) as usize;
        if n > limit {
            return Err(NetError::Stream(format!("link frame of {n} bytes exceeds {limit}")));
        }
        let mut body = vec![0u8; n];
        recv.read_exact(&mut body).await.map_err(|e| NetError::Stream(e.to_string()))?;
        Ok(body)
    };
    tokio::time::timeout(LINK_TIMEOUT, read).await.map_err(|_| NetError::Timeout(LINK_TIMEOUT))?
}

/// What linking gave the new device.
pub struct Linked {
    pub keys: DeviceKeys,
    pub cert: crate::identity::DeviceCert,
    pub history: Vec<x25519_dalek::StaticSecret>,
    pub user_name: String,
    /// The address that answered.
    pub address: SocketAddr,
    /// The content keys the linking device kept, still to be read.
    pub kept: KeptKeys,
}

/// The content keys a linking device sends after its grant, read in batches.
pub struct KeptKeys {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    recv: quinn::RecvStream,
    done: bool,
}

impl KeptKeys {
    /// The next batch of `(entry id, content key)`; `None` once all were read.
    pub async fn next(&mut self) -> Result<Option<Vec<crate::store::KeptKey>>, NetError> {
        if self.done {
            return Ok(None);
        }
        let bytes = read_frame(&mut self.recv, MAX_KEY_FRAME).await?;
        let pairs: Vec<(Bytes<32>, Bytes<32>)> =
            codec::decode(&bytes).map_err(|e| NetError::Stream(format!("kept keys: {e}")))?;
        if pairs.is_empty() {
            self.done = true;
            self.conn.close(0u32.into(), b"done");
            self.endpoint.close(0u32.into(), b"linked");
            return Ok(None);
        }
        Ok(Some(pairs.into_iter().map(|(i, k)| (i.0, k.0)).collect()))
    }
}

/// The new device's side: fresh keys, then each address of the code in turn until the linking
/// device (and only it: its key is pinned) answers. Must run within a tokio runtime.
pub async fn request(code: &LinkCode, name: &str, extra: &[String]) -> Result<Linked, NetError> {
    let keys = DeviceKeys::generate();
    let seed = keys.signing.to_bytes();
    let me = keys.id();
    let agreement = keys.agreement_public();
    let name = clip_name(name);
    let req = LinkRequest {
        version: 1,
        proof: Bytes(proof(&code.secret.0, &code.device, &me, &agreement, &name)),
        agreement: Bytes(agreement),
        name,
    };
    let linker = *code.device.as_bytes();
    let allow: tls::Allow = Arc::new(move |k: &[u8; 32]| *k == linker);
    let tls = tls::client_config(&seed, me.as_bytes(), allow, Some(*code.device.as_bytes()), LINK_ALPN)?;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| NetError::Stream(e.to_string()))?;
    let client = quinn::ClientConfig::new(Arc::new(quic));
    let endpoint = quinn::Endpoint::client(SocketAddr::from(([0, 0, 0, 0], 0)))?;
    let mut last = NetError::Address("the link code has no address: give one with --address".into());
    for text in code.addresses.iter().chain(extra) {
        let addrs = match super::dialer::resolve(text).await {
            Ok(a) => a,
            Err(e) => {
                last = e;
                continue;
            }
        };
        for addr in addrs {
            match ask(&endpoint, client.clone(), addr, &linker, &req).await {
                Ok((grant, conn, recv)) => {
                    let cert = grant.check(code, &me, &agreement).map_err(|e| NetError::Stream(e.to_string()))?;
                    let history = grant.history.iter().map(|s| x25519_dalek::StaticSecret::from(s.0)).collect();
                    let kept = KeptKeys { endpoint, conn, recv, done: false };
                    return Ok(Linked { keys, cert, history, user_name: grant.user_name, address: addr, kept });
                }
                Err(e) => last = e,
            }
        }
    }
    endpoint.close(0u32.into(), b"");
    Err(last)
}

async fn ask(
    endpoint: &quinn::Endpoint,
    client: quinn::ClientConfig,
    addr: SocketAddr,
    linker: &[u8; 32],
    req: &LinkRequest,
) -> Result<(LinkGrant, quinn::Connection, quinn::RecvStream), NetError> {
    let name = tls::knock_name(linker, None);
    let conn = tokio::time::timeout(super::HANDSHAKE_TIMEOUT, endpoint.connect_with(client, addr, &name)?)
        .await
        .map_err(|_| NetError::Timeout(super::HANDSHAKE_TIMEOUT))??;
    let (mut send, mut recv) = conn.open_bi().await?;
    let body = codec::encode(req);
    send.write_all(&(body.len() as u32).to_be_bytes()).await.map_err(|e| NetError::Stream(e.to_string()))?;
    send.write_all(&body).await.map_err(|e| NetError::Stream(e.to_string()))?;
    let _ = send.finish();
    let bytes = read_frame(&mut recv, MAX_GRANT).await?;
    let grant = codec::decode(&bytes).map_err(|e| NetError::Stream(format!("link grant: {e}")))?;
    Ok((grant, conn, recv))
}

/// Creates the linked device in `dir` from what linking gave, keeping the content keys the
/// linking device sends as they arrive. Returns the node and how many keys it kept.
pub async fn create(dir: &std::path::Path, linked: Linked) -> anyhow::Result<(crate::node::Node, usize)> {
    let Linked { keys, cert, history, mut kept, .. } = linked;
    let node = crate::node::Node::init_linked(dir, keys, history, cert)?;
    let mut count = 0;
    while let Some(batch) = kept.next().await? {
        node.store.keep_content_keys(&batch)?;
        count += batch.len();
    }
    node.store.persist_now()?;
    Ok((node, count))
}
