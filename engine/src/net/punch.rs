//! Hole punching through a mutual contact (spec/connectivity.md, section 4), on
//! `libra/relay/1`: a node asks a contact that both it and the target are connected to to
//! introduce them; the introducer tells the target the requester's addresses (where the
//! introducer sees it — its public, reflexive address — and the local ones it listed), and, if
//! the target agrees, tells the requester the target's; each also learns where the introducer
//! sees it. Both dial every address of the other at once, so each NAT sees outgoing packets
//! before the other's arrive, and two nodes behind one NAT meet at their local addresses. The
//! introducer relays nothing.

use std::net::SocketAddr;
use std::time::Duration;

use super::relay::{Refusal, RelayProtocol, answer, dial_on, read, refuse};
use super::{Host, NetError, RELAY_ALPN};
use crate::engine::{Engine, PathKind};
use crate::relay_wire::{self, Introduction, Kind, Request};
use crate::sync::{ALPN, Outcome};

/// How long the target keeps dialling the requester.
const PUNCH_WINDOW: Duration = Duration::from_secs(8);

async fn read_addr(recv: &mut quinn::RecvStream) -> Result<SocketAddr, NetError> {
    let mut family = [0u8; 1];
    read(recv, &mut family).await?;
    let rest_len = relay_wire::addr_rest_len(family[0]).map_err(|e| NetError::Stream(e.to_string()))?;
    let mut bytes = vec![0u8; 1 + rest_len];
    bytes[0] = family[0];
    read(recv, &mut bytes[1..]).await?;
    relay_wire::decode_addr(&bytes).map_err(|e| NetError::Stream(e.to_string()))
}

async fn read_list(recv: &mut quinn::RecvStream) -> Result<Vec<SocketAddr>, NetError> {
    let mut count = [0u8; 1];
    read(recv, &mut count).await?;
    let n = relay_wire::list_count(count[0]).map_err(|e| NetError::Stream(e.to_string()))?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(read_addr(recv).await?);
    }
    Ok(out)
}

async fn read_introduction(recv: &mut quinn::RecvStream) -> Result<Introduction, NetError> {
    Ok(Introduction { seen: read_addr(recv).await?, local: read_list(recv).await?, you: read_addr(recv).await? })
}

/// Where this node listens on its own networks: each interface's address with the endpoint's
/// port (or the one address it is bound to). Not loopback, and not IPv6 link-local (an
/// address without its interface is no use to another host). First, if the user set a STUN
/// server, the public address it gave (section 4.3): an introducer on our own network sees
/// only our private one.
fn local_addresses(endpoint: &quinn::Endpoint, engine: &Engine) -> Vec<SocketAddr> {
    let Ok(bound) = endpoint.local_addr() else { return Vec::new() };
    let public = engine.stun_public().map(|(_, a, _)| a).filter(|a| super::reaches(bound, *a));
    let interfaces = super::lan::own_socket_addrs(bound).into_iter().filter(|a| match a.ip() {
        std::net::IpAddr::V4(ip) => !ip.is_loopback() && !ip.is_unspecified(),
        std::net::IpAddr::V6(ip) => !ip.is_loopback() && !ip.is_unspecified() && !ip.is_unicast_link_local(),
    });
    let mut out: Vec<SocketAddr> = public.into_iter().collect();
    out.extend(interfaces.filter(|a| Some(*a) != public));
    out.truncate(relay_wire::MAX_LOCAL);
    out
}

/// The other side's addresses, the one the introducer sees first.
fn candidates(i: &Introduction) -> Vec<SocketAddr> {
    let mut out = vec![i.seen];
    out.extend(i.local.iter().filter(|a| **a != i.seen));
    out
}

/// Dials `peer` at all of `addrs` at once; the first handshake that completes wins (the
/// others are dropped).
async fn dial_any(
    endpoint: &quinn::Endpoint,
    engine: &Engine,
    seed: &[u8; 32],
    addrs: &[SocketAddr],
    peer: [u8; 32],
) -> Result<quinn::Connection, NetError> {
    let mut dials = tokio::task::JoinSet::new();
    for &addr in addrs {
        let (endpoint, engine, seed) = (endpoint.clone(), engine.clone(), *seed);
        dials.spawn(async move { dial_on(&endpoint, &engine, &seed, addr, Some(peer), ALPN).await });
    }
    let mut last = NetError::Stream("no address to dial".into());
    while let Some(done) = dials.join_next().await {
        match done {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => last = e,
            Err(e) => last = NetError::Stream(e.to_string()),
        }
    }
    Err(last)
}

impl RelayProtocol {
    /// The introducer's side: `from` (seen at `from_addr`) asks to reach `target`.
    pub(crate) async fn introduce(
        &self,
        from: [u8; 32],
        from_addr: SocketAddr,
        target: [u8; 32],
        send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) -> Result<(), NetError> {
        let from_local = read_list(&mut recv).await?;
        if target == from || target == self.engine.device() || !self.engine.is_allowed(&target) {
            return Err(refuse(send, Refusal::NotAllowed).await);
        }
        // The target's address as we see it: only a path of our own shows it.
        let Some(target_addr) = self.engine.links().get(&target).filter(|l| !l.path.is_relayed()).map(|l| l.addr)
        else {
            return Err(refuse(send, Refusal::Unreachable).await);
        };
        let Some(endpoint) = self.endpoint.get() else { return Err(NetError::Stream("no endpoint".into())) };
        let asked = async {
            let conn = dial_on(endpoint, &self.engine, &self.seed, target_addr, Some(target), RELAY_ALPN).await?;
            let (mut t_send, mut t_recv) = conn.open_bi().await?;
            let mut msg = Request { kind: Kind::PunchFrom, device: from }.encode().to_vec();
            let to_target = Introduction { seen: from_addr, local: from_local, you: target_addr };
            msg.extend_from_slice(&to_target.encode());
            t_send.write_all(&msg).await.map_err(|e| NetError::Stream(e.to_string()))?;
            let mut answer = [0u8; 1];
            read(&mut t_recv, &mut answer).await?;
            if answer[0] != 0 {
                return Ok(None);
            }
            Ok::<_, NetError>(Some(read_list(&mut t_recv).await?))
        };
        match asked.await {
            Ok(Some(target_local)) => {
                let to_from = Introduction { seen: target_addr, local: target_local, you: from_addr };
                answer(send, &[&[0][..], &to_from.encode()].concat()).await;
                Ok(())
            }
            Ok(None) => Err(refuse(send, Refusal::NotAllowed).await),
            Err(_) => Err(refuse(send, Refusal::Unreachable).await),
        }
    }

    /// The target's side: `introducer` says `source` wants to reach us. If we punch at all
    /// and `source` is our contact, agree (telling our local addresses) and dial it for a while.
    pub(crate) async fn punched(
        &self,
        introducer: [u8; 32],
        source: [u8; 32],
        send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) -> Result<(), NetError> {
        let intro = read_introduction(&mut recv).await?;
        if !self.punch || !self.engine.is_allowed(&source) {
            return Err(refuse(send, Refusal::NotAllowed).await);
        }
        self.engine.seen_by(introducer, intro.you);
        let Some(endpoint) = self.endpoint.get().cloned() else { return Err(refuse(send, Refusal::Unreachable).await) };
        answer(send, &[&[0][..], &relay_wire::encode_list(&local_addresses(&endpoint, &self.engine))].concat()).await;
        self.engine.punching(source, PUNCH_WINDOW + super::host::HANDSHAKE_TIMEOUT);
        let addrs = candidates(&intro);
        let (engine, seed, limits) = (self.engine.clone(), self.seed, self.limits);
        // A session we hold with `source` already may be on a path that died on its side (its
        // network changed): only a session that starts from now on ends the punch.
        let asked_ms = crate::clock::wall_ms();
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + PUNCH_WINDOW;
            while tokio::time::Instant::now() < until && !engine.direct_since(&source, asked_ms) {
                // Our packets open our NAT towards the requester; its packets open its own.
                if let Ok(conn) = dial_any(&endpoint, &engine, &seed, &addrs, source).await {
                    let _ = super::sync_protocol::session(&engine, conn, true, true, limits, PathKind::Punched).await;
                    return;
                }
            }
        });
        Ok(())
    }
}

impl Host {
    /// Reaches `target` directly through both NATs, introduced by `introducer` (a contact
    /// connected to both), and runs a sync session with it.
    pub async fn punch_via(
        &self,
        introducer_addr: SocketAddr,
        introducer: [u8; 32],
        target: [u8; 32],
        live: bool,
    ) -> Result<Outcome, NetError> {
        if !self.punch {
            return Err(NetError::Relay("hole punching is turned off".into()));
        }
        let local = relay_wire::encode_list(&local_addresses(&self.endpoint, &self.engine));
        let (conn, _send, mut recv) = self.request(introducer_addr, introducer, Kind::Punch, target, &local).await?;
        let intro = read_introduction(&mut recv).await?;
        conn.close(0u32.into(), b"done");
        self.engine.seen_by(introducer, intro.you);
        // The target dials us at the same time: its connection, if it wins, is punched too.
        self.engine.punching(target, PUNCH_WINDOW + super::host::HANDSHAKE_TIMEOUT);
        let conn = dial_any(&self.endpoint, &self.engine, &self.seed, &candidates(&intro), target).await?;
        super::sync_protocol::session(&self.engine, conn, true, live, self.limits, PathKind::Punched).await
    }
}
