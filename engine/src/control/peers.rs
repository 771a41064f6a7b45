//! `serve`, `sync`, `peers`, `peer allow`: the node on the network.

use std::net::SocketAddr;
use std::time::Duration;

use crate::node::Node;
use crate::store::PeerRecord;
use crate::text;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::render;
use super::{Cx, Out};

fn device_key(id: &str) -> Result<[u8; 32]> {
    text::decode_id(id).map(|(_, k)| k).with_context(|| format!("'{id}' is not a Libra id (ld… or lu…)"))
}

pub fn allow(cx: &Cx, out: &mut Out, id: &str, address: Option<&str>) -> Result<u8> {
    let key = device_key(id)?;
    if let Some(a) = address {
        crate::net::check_address(a)?;
    }
    let address = address.map(str::to_owned);
    // A running node learns of it at once: its handshake checks read the allow-list.
    cx.engine.allow(key, address.clone())?;
    out.set(&json!({ "allowed": id, "address": address }), || format!("allowed {id}\n"));
    Ok(0)
}

/// `online`: `None` when no node runs (unknown); else the address of the live session, if any.
fn peer_json(node: &Node, key: &[u8; 32], r: &PeerRecord, online: Option<Option<std::net::SocketAddr>>) -> Value {
    let ago = |ms: u64| if ms == 0 { Value::Null } else { json!(render::time(ms)) };
    json!({
        "id": render::author(node.store.trust(), key),
        "allowed": r.allowed,
        "address": r.address,
        "last_seen": ago(r.last_seen_ms),
        "last_sync": ago(r.last_sync_ms),
        "entries_in": r.entries_in,
        "entries_out": r.entries_out,
        "behind_by": r.behind_by,
        "online": online.map(|o| o.is_some()),
        // Where the live session runs (a relay's address when relayed). Local knowledge only.
        "connected_at": online.flatten().map(|a| a.to_string()),
    })
}

pub fn peers(cx: &Cx, out: &mut Out) -> Result<u8> {
    // Online status is known only to a running node.
    let online = cx.running.then(|| cx.engine.online());
    let rows: Vec<Value> = cx.read(|node| {
        Ok(node
            .store
            .peers()?
            .iter()
            .map(|(k, r)| peer_json(node, k, r, online.as_ref().map(|o| o.get(k).copied())))
            .collect())
    })?;
    out.set(&json!(rows), || {
        if rows.is_empty() {
            return "no peers yet: `libra peer allow ID` adds one\n".into();
        }
        rows.iter()
            .map(|r| {
                format!(
                    "{}  {}{}  last seen {}  last sync {}  in {} out {}  {}{}\n",
                    r["id"].as_str().unwrap_or(""),
                    match r["online"].as_bool() {
                        Some(true) => "online  ",
                        Some(false) => "offline  ",
                        None => "",
                    },
                    if r["allowed"] == json!(true) { "allowed" } else { "not allowed" },
                    r["last_seen"].as_str().unwrap_or("never"),
                    r["last_sync"].as_str().unwrap_or("never"),
                    r["entries_in"],
                    r["entries_out"],
                    match r["behind_by"].as_u64() {
                        Some(0) | None => "in sync".to_owned(),
                        Some(n) => format!("behind by {n}"),
                    },
                    r["connected_at"]
                        .as_str()
                        .or(r["address"].as_str())
                        .map(|a| format!("  at {a}"))
                        .unwrap_or_default()
                )
            })
            .collect()
    });
    Ok(0)
}

pub fn sync(cx: &Cx, out: &mut Out, target: &str, peer: Option<&str>) -> Result<u8> {
    let (addr, expected) = cx.read(|node| resolve(node, target, peer))?;
    let Some(host) = cx.host.clone() else {
        bail!("the running node is offline (its network could not start)");
    };
    // Commands run on a blocking thread of the node's runtime.
    let handle = tokio::runtime::Handle::current();
    let outcome = handle
        .block_on(async { tokio::time::timeout(Duration::from_secs(120), host.connect(addr, expected, false)).await });
    let out_ = match outcome {
        Ok(r) => r?,
        Err(_) => bail!("the sync did not finish within 120 s"),
    };
    report(out, &out_)
}

/// `HOST:PORT` (a name or an IP address) to the first socket address it resolves to.
fn lookup(a: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    crate::net::check_address(a)?;
    a.to_socket_addrs()
        .with_context(|| format!("could not resolve '{a}'"))?
        .next()
        .with_context(|| format!("'{a}' resolves to no address"))
}

fn resolve(node: &Node, target: &str, peer: Option<&str>) -> Result<(SocketAddr, Option<[u8; 32]>)> {
    let (addr, expected) = match device_key(target) {
        Err(_) => (lookup(target)?, peer.map(device_key).transpose()?),
        Ok(key) => {
            let rec = node.store.peer(&key)?.with_context(|| format!("{target} is not a known peer"))?;
            let a = rec.dial_addresses().into_iter().next().with_context(|| {
                format!("no address known for {target}; use `libra peer allow {target} --address HOST:PORT`")
            })?;
            (lookup(&a)?, Some(key))
        }
    };
    if let Some(k) = expected
        && !node.store.peer(&k)?.is_some_and(|r| r.allowed)
    {
        bail!("that peer is not allowed; run `libra peer allow` first");
    }
    Ok((addr, expected))
}

fn report(text_out: &mut Out, out: &crate::net::Outcome) -> Result<u8> {
    let v = json!({
        "synced": out.synced,
        "entries_in": out.entries_in,
        "entries_out": out.entries_out,
        "bytes_in": out.bytes_in,
        "bytes_out": out.bytes_out,
        "rounds": out.rounds,
        "forks_seen": out.forks,
    });
    text_out.set(&v, || {
        format!(
            "{}: received {} entries, sent {} ({} B in, {} B out, {} reconcile rounds)\n",
            if out.synced { "in sync" } else { "incomplete" },
            out.entries_in,
            out.entries_out,
            out.bytes_in,
            out.bytes_out,
            out.rounds
        )
    });
    Ok(if out.synced { 0 } else { 1 })
}
