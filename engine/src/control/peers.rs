//! `serve`, `sync`, `peers`, `peer allow`: the node on the network.

use std::net::SocketAddr;
use std::time::Duration;

use crate::engine::{Link, PathKind, Reach};
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

type Names = std::collections::BTreeMap<crate::identity::UserId, String>;
/// Who owns a device (`Node::device_owners`).
type Owner<'a> = dyn Fn(&[u8; 32]) -> Option<crate::identity::UserId> + 'a;

/// What a running node knows of a peer's connection: `None` when no node runs (unknown).
struct Live<'a> {
    link: Option<&'a Link>,
    reach: Option<&'a Reach>,
    /// Where this peer last said it sees us (when it introduced us in a hole punch).
    seen_as: Option<&'a (std::net::SocketAddr, u64)>,
}

fn peer_json(
    node: &Node,
    (names, owner): (&Names, &Owner<'_>),
    key: &[u8; 32],
    r: &PeerRecord,
    live: Option<Live<'_>>,
) -> Value {
    let ago = |ms: u64| if ms == 0 { Value::Null } else { json!(render::time(ms)) };
    let link = live.as_ref().and_then(|l| l.link);
    let via = link.and_then(|l| match l.path {
        PathKind::Relayed { via } => Some(via),
        _ => None,
    });
    let name_of = |k: &[u8; 32]| owner(k).map(|u| names.get(&u).cloned().unwrap_or_else(|| node.display_name(&u)));
    json!({
        "id": render::author(node.store.trust(), key),
        "name": name_of(key),
        "allowed": r.allowed,
        "address": r.address,
        "last_seen": ago(r.last_seen_ms),
        "last_sync": ago(r.last_sync_ms),
        "entries_in": r.entries_in,
        "entries_out": r.entries_out,
        "behind_by": r.behind_by,
        "synced_ever": r.last_sync_ms > 0,
        "online": live.as_ref().map(|l| l.link.is_some()),
        // How the live session runs; where its packets go (a relay's address when relayed).
        // Local knowledge only.
        "path": link.map(|l| l.path.label()),
        "via": via.map(|v| render::author(node.store.trust(), &v)),
        "via_name": via.and_then(|v| name_of(&v)),
        "connected_at": link.map(|l| l.addr.to_string()),
        "connected_since": link.map(|l| render::time(l.since_ms)),
        "why_offline": live.as_ref().filter(|l| l.link.is_none()).map(|l| Reach::explain(l.reach, r)),
        // Our own public (reflexive) address as this peer sees it, from its last introduction.
        "sees_you_at": live.as_ref().and_then(|l| l.seen_as).map(|(a, _)| a.to_string()),
        "sees_you_since": live.as_ref().and_then(|l| l.seen_as).map(|(_, ms)| render::time(*ms)),
    })
}

fn peer_line(r: &Value) -> String {
    let s = |k: &str| r[k].as_str().unwrap_or("");
    let who = match r["name"].as_str() {
        Some(n) => format!("{}  {}", text::for_terminal(n), s("id")),
        None => s("id").to_owned(),
    };
    let state = match (r["online"].as_bool(), r["path"].as_str()) {
        (Some(true), Some("relayed")) => {
            let via = r["via_name"].as_str().unwrap_or(s("via"));
            format!("online, relayed via {}  ", text::for_terminal(via))
        }
        (Some(true), Some(p)) => format!("online ({p})  "),
        (Some(false), _) => "offline  ".into(),
        _ => String::new(),
    };
    let sync = match (r["synced_ever"].as_bool(), r["behind_by"].as_u64()) {
        (Some(false), _) => "never synced".to_owned(),
        (_, Some(0) | None) => "in sync".to_owned(),
        (_, Some(n)) => format!("behind by {n}"),
    };
    let mut line = format!(
        "{who}\n  {state}{}  last seen {}  last sync {}  in {} out {}  {sync}{}\n",
        if r["allowed"] == json!(true) { "allowed" } else { "not allowed" },
        r["last_seen"].as_str().map_or_else(|| "never".to_owned(), render::local),
        r["last_sync"].as_str().map_or_else(|| "never".to_owned(), render::local),
        r["entries_in"],
        r["entries_out"],
        r["connected_at"].as_str().or(r["address"].as_str()).map(|a| format!("  at {a}")).unwrap_or_default()
    );
    if let Some(why) = r["why_offline"].as_str() {
        line += &format!("  why: {}\n", text::for_terminal(why));
    }
    if let Some(at) = r["sees_you_at"].as_str() {
        line += &format!("  sees you at {at} (your public address, as it told you when it introduced you)\n");
    }
    line
}

pub fn peers(cx: &Cx, out: &mut Out) -> Result<u8> {
    // Connections are known only to a running node.
    let (links, reach, seen_as) = (cx.engine.links(), cx.engine.reach(), cx.engine.seen_as());
    let rows: Vec<Value> = cx.read(|node| {
        let names = node.distinct_names();
        let owner = node.device_owners()?;
        Ok(node
            .store
            .peers()?
            .iter()
            .map(|(k, r)| {
                let live =
                    cx.running.then(|| Live { link: links.get(k), reach: reach.get(k), seen_as: seen_as.get(k) });
                peer_json(node, (&names, &owner), k, r, live)
            })
            .collect())
    })?;
    out.set(&json!(rows), || {
        if rows.is_empty() {
            return "no peers yet: `libra contact add INVITE` (or `libra peer allow ID`) adds one\n".into();
        }
        rows.iter().map(peer_line).collect()
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
        // No port: a contact (name or short id), reached at the first of their devices with a
        // known address.
        Err(_) if !target.contains(':') && peer.is_none() => {
            let user = node.contact(target)?;
            let mut found = None;
            for c in node.device_certs(&user)? {
                let key = *c.body.device.as_bytes();
                if let Some(a) = node.store.peer(&key)?.and_then(|r| r.dial_addresses().into_iter().next()) {
                    found = Some((lookup(&a)?, Some(key)));
                    break;
                }
            }
            found.with_context(|| {
                format!(
                    "no address known for {target}'s devices; `libra sync HOST:PORT --peer DEVICE`, or wait for \
                     LAN discovery or an introduction while `libra serve` runs"
                )
            })?
        }
        Err(_) => {
            let Some(peer) = peer else {
                bail!(
                    "dialing an address needs `--peer DEVICE`: a node answers only a dial that names its device \
                     (spec/sync.md, section 3.2a)"
                );
            };
            (lookup(target)?, Some(device_key(peer)?))
        }
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
        "held_ahead": out.held_ahead,
    });
    text_out.set(&v, || {
        let mut t = format!(
            "{}: received {} entries, sent {} ({} B in, {} B out, {} reconcile rounds)\n",
            if out.synced { "in sync" } else { "incomplete" },
            out.entries_in,
            out.entries_out,
            out.bytes_in,
            out.bytes_out,
            out.rounds
        );
        if out.held_ahead > 0 {
            t += &format!(
                "{} entries held back: stamped over a day ahead of this device's clock (their author's clock runs fast); a sync after their time takes them\n",
                out.held_ahead
            );
        }
        t
    });
    Ok(if out.synced { 0 } else { 1 })
}
