//! Hole punching through a mutual contact (spec/connectivity.md, section 4), on
//! `libra/relay/1`: a node asks a contact that both it and the target are connected to to
//! introduce them; the introducer tells the target the requester's address (as the
//! introducer sees it: its public, reflexive address), and, if the target agrees, tells the
//! requester the target's; both dial each other at once, so each NAT sees outgoing packets
//! before the other's arrive. The introducer relays nothing.

use std::net::SocketAddr;
use std::time::Duration;

use super::relay::{Refusal, RelayProtocol, answer, dial_on, read, refuse};
use super::{Host, NetError, RELAY_ALPN};
use crate::engine::PathKind;
use crate::relay_wire::{self, Kind, Request};
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

impl RelayProtocol {
    /// The introducer's side: `from` (seen at `from_addr`) asks to reach `target`.
    pub(crate) async fn introduce(
        &self,
        from: [u8; 32],
        from_addr: SocketAddr,
        target: [u8; 32],
        send: quinn::SendStream,
    ) -> Result<(), NetError> {
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
            msg.extend_from_slice(&relay_wire::encode_addr(from_addr));
            t_send.write_all(&msg).await.map_err(|e| NetError::Stream(e.to_string()))?;
            let mut answer = [0u8; 1];
            read(&mut t_recv, &mut answer).await?;
            Ok::<u8, NetError>(answer[0])
        };
        match asked.await {
            Ok(0) => {
                answer(send, &[&[0][..], &relay_wire::encode_addr(target_addr)].concat()).await;
                Ok(())
            }
            Ok(_) => Err(refuse(send, Refusal::NotAllowed).await),
            Err(_) => Err(refuse(send, Refusal::Unreachable).await),
        }
    }

    /// The target's side: the introducer says `source` wants to reach us. If we punch at all
    /// and `source` is our contact, agree and dial it for a while.
    pub(crate) async fn punched(
        &self,
        source: [u8; 32],
        send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) -> Result<(), NetError> {
        let addr = read_addr(&mut recv).await?;
        if !self.punch || !self.engine.is_allowed(&source) {
            return Err(refuse(send, Refusal::NotAllowed).await);
        }
        answer(send, &[0]).await;
        self.engine.punching(source, PUNCH_WINDOW + super::host::HANDSHAKE_TIMEOUT);
        let Some(endpoint) = self.endpoint.get().cloned() else { return Ok(()) };
        let (engine, seed, limits) = (self.engine.clone(), self.seed, self.limits);
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + PUNCH_WINDOW;
            while tokio::time::Instant::now() < until && !engine.direct(&source) {
                // Our packets open our NAT towards the requester; its packets open its own.
                if let Ok(conn) = dial_on(&endpoint, &engine, &seed, addr, Some(source), ALPN).await {
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
        let (conn, _send, mut recv) = self.request(introducer_addr, introducer, Kind::Punch, target).await?;
        let addr = read_addr(&mut recv).await?;
        conn.close(0u32.into(), b"done");
        // The target dials us at the same time: its connection, if it wins, is punched too.
        self.engine.punching(target, PUNCH_WINDOW + super::host::HANDSHAKE_TIMEOUT);
        self.connect_on(addr, Some(target), live, PathKind::Punched).await
    }
}
