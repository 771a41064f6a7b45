//! `serve`, `sync`, `peers`, `peer allow`: the node on the network.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use libra_engine::engine::Engine;
use libra_engine::net::{Host, HostConfig};
use libra_engine::node::Node;
use libra_engine::store::PeerRecord;
use libra_engine::text;
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::commands::{Access, data_dir, print};
use crate::render;

fn open(args: &Cli) -> Result<Node> {
    Ok(Node::open(&data_dir(args)?)?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

fn device_key(id: &str) -> Result<[u8; 32]> {
    text::decode_id(id).map(|(_, k)| k).with_context(|| format!("'{id}' is not a Libra id (ld… or lu…)"))
}

pub fn allow(args: &Cli, access: &Access, out: &mut String, id: &str, address: Option<&str>) -> Result<u8> {
    let key = device_key(id)?;
    if let Some(a) = address {
        libra_engine::net::check_address(a)?;
    }
    let address = address.map(str::to_owned);
    match access {
        // A running node must learn of it at once: its handshake checks read the allow-list.
        Access::Remote { engine, .. } => engine.allow(key, address.clone())?,
        Access::Local => {
            let node = open(args)?;
            let mut rec = node.store.peer(&key)?.unwrap_or_default();
            rec.allowed = true;
            if let Some(a) = &address {
                rec.remember_address(a, libra_engine::store::AddressSource::Typed);
            }
            node.store.set_peer(&key, &rec, true)?;
        }
    }
    print(args, out, &json!({ "allowed": id, "address": address }), || format!("allowed {id}\n"));
    Ok(0)
}

fn peer_json(node: &Node, key: &[u8; 32], r: &PeerRecord, online: Option<bool>) -> Value {
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
        "online": online,
    })
}

pub fn peers(args: &Cli, access: &Access, out: &mut String) -> Result<u8> {
    // Online status is known only to a running node.
    let online = match access {
        Access::Remote { engine, .. } => Some(engine.online()),
        Access::Local => None,
    };
    let rows: Vec<Value> = access.read(args, |node| {
        Ok(node
            .store
            .peers()?
            .iter()
            .map(|(k, r)| peer_json(node, k, r, online.as_ref().map(|o| o.contains_key(k))))
            .collect())
    })?;
    print(args, out, &json!(rows), || {
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
                    r["address"].as_str().map(|a| format!("  at {a}")).unwrap_or_default()
                )
            })
            .collect()
    });
    Ok(0)
}

pub fn sync(args: &Cli, access: &Access, out: &mut String, target: &str, peer: Option<&str>) -> Result<u8> {
    let (addr, expected) = access.read(args, |node| resolve(node, target, peer))?;
    let outcome = match access {
        Access::Remote { host: None, .. } => bail!("the running node is offline (its network could not start)"),
        Access::Remote { host: Some(host), .. } => {
            // Forwarded commands run on a blocking thread of the node's runtime.
            let handle = tokio::runtime::Handle::current();
            handle.block_on(async {
                tokio::time::timeout(Duration::from_secs(120), host.connect(addr, expected, false)).await
            })
        }
        Access::Local => {
            let engine = Engine::start(open(args)?);
            let rt = runtime()?;
            rt.block_on(async {
                let host = Host::new(engine, HostConfig::new("0.0.0.0:0".parse().expect("literal")))?;
                let r = tokio::time::timeout(Duration::from_secs(120), host.connect(addr, expected, false)).await;
                host.shutdown().await;
                Ok::<_, anyhow::Error>(r)
            })?
        }
    };
    let out_ = match outcome {
        Ok(r) => r?,
        Err(_) => bail!("the sync did not finish within 120 s"),
    };
    report(args, out, &out_)
}

/// `HOST:PORT` (a name or an IP address) to the first socket address it resolves to.
fn lookup(a: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    libra_engine::net::check_address(a)?;
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

fn report(args: &Cli, text_out: &mut String, out: &libra_engine::net::Outcome) -> Result<u8> {
    let v = json!({
        "synced": out.synced,
        "entries_in": out.entries_in,
        "entries_out": out.entries_out,
        "bytes_in": out.bytes_in,
        "bytes_out": out.bytes_out,
        "rounds": out.rounds,
        "forks_seen": out.forks,
    });
    print(args, text_out, &v, || {
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

pub fn serve(args: &Cli, listen: &str) -> Result<u8> {
    let listen: SocketAddr = listen.parse().with_context(|| format!("'{listen}' is not HOST:PORT"))?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let dir = data_dir(args)?;
    let engine = Engine::start(open(args)?);
    let rt = runtime()?;
    rt.block_on(async move {
        let host = std::sync::Arc::new(Host::new(engine.clone(), HostConfig::new(listen))?);
        // The bound address goes to the user's terminal only, never into logs or to peers.
        println!("listening on {}", host.local_addr()?);
        println!("device {}", libra_engine::identity::DeviceId(libra_engine::codec::Bytes(host.device())));
        host.dial_known();
        let control = tokio::spawn(crate::control::serve(engine.clone(), Some(host.clone()), dir));
        let server = host.clone();
        tokio::select! {
            () = server.serve() => {}
            _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
        }
        control.abort();
        host.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}
