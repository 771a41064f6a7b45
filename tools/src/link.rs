//! `init --link CODE` and `init --restore`: a new device joins an existing identity.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use libra_engine::control::{identity_json, identity_text};
use libra_engine::engine::Engine;
use libra_engine::link::LinkCode;
use libra_engine::net::{Host, HostConfig, link_protocol};
use libra_engine::node::Node;
use serde_json::json;

use crate::cli::Cli;
use crate::commands::{data_dir, print, read_phrase, runtime};

/// The data directory, which must not hold an identity yet (this device joins one by `verb`).
fn fresh_data_dir(args: &Cli, verb: &str) -> Result<std::path::PathBuf> {
    let dir = data_dir(args)?;
    if libra_engine::keyfile::exists(&dir) {
        anyhow::bail!(
            "an identity already exists in {}; {verb} into an empty data directory (--data DIR)",
            dir.display()
        );
    }
    Ok(dir)
}

/// Links this new device: asks the device that showed the code for a certificate (over QUIC,
/// its key pinned by the code), creates the identity here, then syncs once with it so the
/// contacts and history are here when the command ends.
pub fn init_linked(args: &Cli, out: &mut String, code: &str, name: Option<&str>, address: Option<&str>) -> Result<u8> {
    let dir = fresh_data_dir(args, "link")?;
    let code = LinkCode::parse(code, libra_engine::clock::wall_ms())?;
    let extra: Vec<String> = address.into_iter().map(str::to_owned).collect();
    let rt = runtime()?;
    let device_name = name.map(str::to_owned).unwrap_or_else(|| format!("{} desktop", std::env::consts::OS));
    let linked = rt
        .block_on(link_protocol::request(&code, &device_name, &extra))
        .context("reaching the device that showed the code (is its node running, on this network?)")?;
    let (address, user_name) = (linked.address, linked.user_name.clone());
    let (node, _) = rt
        .block_on(link_protocol::create(&dir, linked))
        .with_context(|| format!("creating the linked device in {}", dir.display()))?;
    let engine = Engine::start(node);
    engine.allow(*code.device.as_bytes(), Some(address.to_string()))?;
    // The first sync brings the user's logs, contacts and history; a later `serve` keeps up.
    let synced = rt.block_on(async {
        let host = Arc::new(Host::new(engine.clone(), HostConfig::new(SocketAddr::from(([0, 0, 0, 0], 0))))?);
        // Each round can make more logs wanted (contacts learned from the notes it opened):
        // sync again until a round brings nothing new.
        let mut received = 0;
        let mut last = Ok(());
        for _ in 0..8 {
            match host.connect(address, Some(*code.device.as_bytes()), false).await {
                Ok(o) if o.entries_in > 0 => received += o.entries_in,
                Ok(_) => break,
                Err(e) => {
                    last = Err(e);
                    break;
                }
            }
        }
        host.shutdown().await;
        Ok::<_, anyhow::Error>(last.map(|()| received))
    })?;
    let received = synced.as_ref().map(|r| *r).unwrap_or(0);
    let mut v = engine.read(identity_json)?;
    engine.shutdown();
    v["linked_to"] = json!(code.device.to_string());
    v["entries_received"] = json!(received);
    if let Err(e) = &synced {
        v["sync_error"] = json!(e.to_string());
    }
    print(args, out, &v, || {
        let mut s = format!("Linked this device to {user_name}.\n{}", identity_text(&v));
        match &synced {
            Ok(_) => s += &format!("Received {received} entries. Run `libra serve` (or the app) to stay in sync.\n"),
            Err(e) => s += &format!("The first sync failed ({e}); `libra serve` retries.\n"),
        }
        s
    });
    Ok(0)
}

/// Restores an identity from its recovery phrase on this new device: a new device key,
/// certified by the user key; no old log is ever written again. With a backup, its logs and
/// the old devices' agreement secrets come back too, so contacts and history are here.
pub fn init_restored(args: &Cli, out: &mut String, backup: Option<&std::path::Path>) -> Result<u8> {
    let dir = fresh_data_dir(args, "restore")?;
    let secret = libra_engine::phrase::decode(&read_phrase())?;
    let mut v = match backup {
        None => {
            let node = Node::init_restored(&dir, secret, Vec::new())
                .with_context(|| format!("restoring into {}", dir.display()))?;
            identity_json(&node)
        }
        Some(file) => {
            let (engine, report) = libra_engine::control::backup::restore(&dir, secret, file)
                .with_context(|| format!("restoring {} into {}", file.display(), dir.display()))?;
            let mut v = engine.read(identity_json)?;
            engine.shutdown();
            v["entries_restored"] = report["entries_restored"].clone();
            v["entries_waiting"] = report["entries_waiting"].clone();
            v["backup_made"] = report["backup_made"].clone();
            v
        }
    };
    let restored = v.get("entries_restored").and_then(serde_json::Value::as_u64);
    v["restored_from_backup"] = json!(restored.is_some());
    print(args, out, &v, || {
        let mut s = format!("Restored your identity on this new device.\n{}", identity_text(&v));
        match restored {
            Some(n) => {
                s += &format!("Brought back {n} entries from the backup: your contacts and history are here.\n");
                if let Some(w) = v["entries_waiting"].as_u64().filter(|w| *w > 0) {
                    s += &format!(
                        "{w} entries wait in the store: they are stamped over a day ahead of this device's clock. The first bundle import after that time takes them.\n"
                    );
                }
            }
            None => {
                s += "Your contacts and other devices learn of it from an invite: run `libra invite` here and `libra contact add` there (your own devices accept your own invite).\n"
            }
        }
        s += "Revoke a lost device with `libra device revoke`.\n";
        s
    });
    Ok(0)
}
