//! `libra send --file`, `libra file list|get|auto`: files as the chats projection knows them,
//! their blobs' state here and the progress of downloads (spec/blobs.md).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::render;
use super::{Cx, FileCommand, Out};
use crate::blob::FileRef;
use crate::engine::Transfer;
use crate::store::FileEntry;
use crate::store::blobs::BlobState;
use crate::text::for_terminal;

/// Digits of a blob's root that name a file in the CLI.
const ID_LEN: usize = 12;

pub fn run(cx: &Cx, out: &mut Out, cmd: &FileCommand) -> Result<u8> {
    match cmd {
        FileCommand::List => list(cx, out),
        FileCommand::Get { id, out: to, wait_secs } => get(cx, out, id, Path::new(to), *wait_secs),
        FileCommand::Auto { bytes } => auto(cx, out, *bytes),
    }
}

/// Sends a file (an absolute path: a forwarded command runs in the node's process).
pub fn send(cx: &Cx, out: &mut Out, chat: &str, path: &str, text: &str) -> Result<u8> {
    let target = cx.read(|n| Ok(n.chat(chat)?))?;
    let (entry, file) =
        cx.engine.send_file(&target, Path::new(path), text, None).with_context(|| format!("sending {path}"))?;
    out.set(
        &json!({ "id": entry.id.to_hex(), "chat": target.title, "delivery": "sent", "file": file_json(&file) }),
        || {
            format!(
                "sent {} ({}) to {} ({})\n",
                for_terminal(&file.name),
                render::bytes(file.size),
                for_terminal(&target.title),
                &entry.id.to_hex()[..8]
            )
        },
    );
    Ok(0)
}

/// A file as JSON (no key: that stays inside the store).
pub fn file_json(f: &FileRef) -> Value {
    json!({
        "id": &f.root_hex()[..ID_LEN],
        "name": f.name,
        "size": f.size,
        "media_type": f.media_type,
        "root": f.root_hex(),
    })
}

fn state_json(cx: &Cx, transfers: &BTreeMap<[u8; 32], Transfer>, f: &FileRef) -> Value {
    let t = transfers.get(&f.root.0);
    let blob_size = f.blob_size().max(1);
    // Verified bytes are of the encrypted blob; shown as the share of the file they cover.
    let (state, blob_have) = match cx.engine.blobs().state(&f.root.0) {
        BlobState::Complete => ("complete", blob_size),
        BlobState::Partial(n) if t.is_some() => ("downloading", n),
        BlobState::Partial(n) => ("partial", n),
        BlobState::Missing => ("not downloaded", 0),
    };
    json!({
        "state": state,
        "have": file_bytes(f, blob_have),
        "percent": (blob_have.min(blob_size) as f64 * 100.0 / blob_size as f64).round(),
        "rate": t.map(|t| t.rate.round()),
        "eta_secs": t.and_then(|t| t.eta_secs()),
        "sources": t.map(|t| t.sources),
        "blob_size": blob_size,
    })
}

fn list(cx: &Cx, out: &mut Out) -> Result<u8> {
    let files = shown(cx)?;
    let transfers = cx.engine.transfers();
    let rows: Vec<Value> = files
        .iter()
        .map(|e| {
            let mut v = file_json(&e.row.file);
            v["message"] = json!(e.id.to_hex());
            v["chat"] = json!(e.row.chat.to_hex());
            v["time"] = json!(render::time(crate::clock::physical_ms(e.row.ts)));
            if let (Some(o), Value::Object(s)) = (v.as_object_mut(), state_json(cx, &transfers, &e.row.file)) {
                o.extend(s);
            }
            v
        })
        .collect();
    let value = json!(rows);
    out.set(&value, || {
        if rows.is_empty() {
            return "no files yet (send one with: libra send CHAT --file PATH)\n".into();
        }
        rows.iter()
            .map(|v| {
                format!(
                    "{}  {:<32} {:>10}  {}{}\n",
                    v["id"].as_str().unwrap_or(""),
                    for_terminal(v["name"].as_str().unwrap_or("")),
                    render::bytes(v["size"].as_u64().unwrap_or(0)),
                    v["state"].as_str().unwrap_or(""),
                    match v["state"].as_str() {
                        Some("complete") | Some("not downloaded") => String::new(),
                        _ => format!(" {}%", v["percent"]),
                    }
                )
            })
            .collect()
    });
    Ok(0)
}

/// The share of `file` that `blob_bytes` verified bytes of its blob stand for.
fn file_bytes(file: &FileRef, blob_bytes: u64) -> u64 {
    (blob_bytes.min(file.blob_size()) as f64 / file.blob_size().max(1) as f64 * file.size as f64) as u64
}

/// The files a user sees: not those of deleted messages or of blocked contacts.
fn shown(cx: &Cx) -> Result<Vec<FileEntry>> {
    cx.read(|n| {
        let mut files = n.store.files()?;
        files.retain(|e| n.store.file_visible(e));
        Ok(files)
    })
}

/// Whether file `id` is known here and not complete (writing it out needs the network).
pub fn file_needs_fetch(engine: &crate::engine::Engine, id: &str) -> bool {
    let cx = Cx::local(engine.clone());
    find(&cx, id).is_ok_and(|e| engine.blobs().state(&e.row.file.root.0) != BlobState::Complete)
}

/// The one file whose id (root) or message id starts with `id`.
fn find(cx: &Cx, id: &str) -> Result<FileEntry> {
    let p = id.trim().to_ascii_lowercase();
    if p.len() < 6 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("give at least 6 hex digits of the file id (as `libra file list` shows it)");
    }
    let mut hits: Vec<FileEntry> = shown(cx)?
        .into_iter()
        .filter(|e| e.row.file.root_hex().starts_with(&p) || e.id.to_hex().starts_with(&p))
        .collect();
    hits.dedup_by(|a, b| a.row.file.root == b.row.file.root);
    match hits.len() {
        0 => bail!("no file {id} (see libra file list)"),
        1 => Ok(hits.remove(0)),
        _ => bail!("{id} matches more than one file; give more digits"),
    }
}

fn get(cx: &Cx, out: &mut Out, id: &str, to: &Path, wait_secs: u64) -> Result<u8> {
    let entry = find(cx, id)?;
    let file = entry.row.file;
    if to.exists() {
        bail!("{} exists; choose another name", to.display());
    }
    let blobs = cx.engine.blobs();
    if blobs.state(&file.root.0) != BlobState::Complete {
        cx.engine.want_file(&file)?;
        // Only a node with the network up fetches.
        if !cx.running && cx.host.is_none() {
            let have = match blobs.state(&file.root.0) {
                BlobState::Partial(n) => file_bytes(&file, n),
                _ => 0,
            };
            bail!(
                "{} is not downloaded yet ({} of {}); it is fetched while Libra runs and a peer that has it is \
                 connected (start the app or `libra serve`, then run this again)",
                file.name,
                render::bytes(have),
                render::bytes(file.size)
            );
        }
        // A forwarded command must answer before the control client gives up (180 s).
        let wait = if cx.running { wait_secs.min(170) } else { wait_secs };
        let until = Instant::now() + Duration::from_secs(wait);
        loop {
            let state = blobs.state(&file.root.0);
            if state == BlobState::Complete {
                break;
            }
            let have = if let BlobState::Partial(n) = state { file_bytes(&file, n) } else { 0 };
            cx.report("downloading", have, file.size);
            if Instant::now() >= until {
                bail!(
                    "{} is not downloaded yet ({} of {}); the download goes on while Libra runs",
                    file.name,
                    render::bytes(have),
                    render::bytes(file.size)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    blobs.export(&file, to).with_context(|| format!("writing {}", to.display()))?;
    out.set(&json!({ "file": file_json(&file), "written": to.display().to_string() }), || {
        format!("wrote {} ({}) to {}\n", for_terminal(&file.name), render::bytes(file.size), to.display())
    });
    Ok(0)
}

fn auto(cx: &Cx, out: &mut Out, bytes: Option<u64>) -> Result<u8> {
    if let Some(b) = bytes {
        cx.read(|n| Ok(n.store.set_auto_download(b)?))?;
        cx.engine.files_changed();
    }
    let now = cx.read(|n| Ok(n.store.auto_download()?))?;
    out.set(&json!({ "auto_download": now }), || {
        if now == 0 {
            return "files download only when you ask (libra file get)\n".to_owned();
        }
        format!(
            "files up to {} download by themselves; larger ones when you ask (libra file get)\n",
            render::bytes(now)
        )
    });
    Ok(0)
}
