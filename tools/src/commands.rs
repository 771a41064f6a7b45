//! Carrying out commands against a node.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use libra_engine::codec::Bytes;
use libra_engine::engine::Engine;
use libra_engine::identity::UserId;
use libra_engine::log::{ChainPoint, validate_next};
use libra_engine::net::Host;
use libra_engine::node::Node;
use libra_engine::{text, vectors};
use serde_json::{Value, json};

use crate::cli::{Cli, Command, LogCommand, PeerCommand, VectorsCommand};
use crate::render;
use crate::{chat_cmds, net_cmds};

pub fn data_dir(args: &Cli) -> Result<PathBuf> {
    if let Some(d) = &args.data {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("org", "Libra", "libra")
        .map(|p| p.data_dir().to_path_buf())
        .context("no home directory found; pass --data DIR")
}

/// Appends a command's output, as JSON or text, to `out` (printed by main, or sent back over
/// the control socket).
pub fn print(args: &Cli, out: &mut String, value: &Value, text: impl FnOnce() -> String) {
    if args.json {
        out.push_str(&serde_json::to_string_pretty(value).unwrap_or_default());
        out.push('\n');
    } else {
        out.push_str(&text());
    }
}

/// Where a command finds its node: opened from the data directory, or the running node it was
/// forwarded to over the control socket.
pub enum Access {
    Local,
    /// A running node's engine, and its network host if it is online.
    Remote {
        engine: Engine,
        host: Option<Arc<Host>>,
    },
}

impl Access {
    /// Runs a command that writes (appends) on the node, exclusively.
    pub fn write<R>(&self, args: &Cli, f: impl FnOnce(&mut Node) -> Result<R>) -> Result<R> {
        match self {
            Access::Local => {
                let mut node = open(args)?;
                f(&mut node)
            }
            Access::Remote { engine, .. } => engine.write_here(f)?,
        }
    }

    /// Runs a read-only command on the node: a running node keeps syncing meanwhile.
    /// (Commands that write will take the node exclusively.)
    pub fn read<R>(&self, args: &Cli, f: impl FnOnce(&Node) -> Result<R>) -> Result<R> {
        match self {
            Access::Local => f(&open(args)?),
            Access::Remote { engine, .. } => engine.read(f)?,
        }
    }
}

pub fn run(args: &Cli, access: &Access, out: &mut String) -> Result<u8> {
    if matches!(access, Access::Remote { .. }) && matches!(args.command, Command::Init { .. } | Command::Serve { .. }) {
        bail!("a node is already running on this data directory");
    }
    match &args.command {
        Command::Init { name } => init(args, out, name),
        Command::Id => access.read(args, |node| id(args, out, node)),
        Command::Log(cmd) => access.read(args, |node| log(args, out, node, cmd)),
        Command::Vectors(cmd) => vectors_cmd(args, out, cmd),
        Command::Serve { listen } => net_cmds::serve(args, listen),
        Command::Sync { target, peer } => net_cmds::sync(args, access, out, target, peer.as_deref()),
        Command::Peers => net_cmds::peers(args, access, out),
        Command::Peer(PeerCommand::Allow { id, address }) => net_cmds::allow(args, access, out, id, address.as_deref()),
        Command::Invite { with_address, qr } => chat_cmds::invite(args, access, out, with_address.as_deref(), *qr),
        Command::Contact(cmd) => chat_cmds::contact(args, access, out, cmd),
        Command::Send { chat, text, reply_to } => chat_cmds::send(args, access, out, chat, text, reply_to.as_deref()),
        Command::Edit { chat, message, text } => chat_cmds::edit(args, access, out, chat, message, Some(text)),
        Command::Delete { chat, message } => chat_cmds::edit(args, access, out, chat, message, None),
        Command::Chats => chat_cmds::chats(args, access, out),
        Command::Chat { chat, limit, follow: _, mark_read, receipts, after } => {
            chat_cmds::chat(args, access, out, chat, *limit, *mark_read, *receipts, *after)
        }
        Command::Group(cmd) => chat_cmds::group(args, access, out, cmd),
    }
}

fn open(args: &Cli) -> Result<Node> {
    let dir = data_dir(args)?;
    Ok(Node::open(&dir)?)
}

fn identity_json(node: &Node) -> Value {
    let user = node.user_id();
    json!({
        "name": node.name(),
        "user_id": user.map(|u| u.to_string()),
        "user_short": user.map(|u| u.short()),
        "device_id": node.device_id().to_string(),
        "device_short": node.device_id().short(),
        "holds_user_key": node.secrets.user.is_some(),
        "data_dir": node.dir.display().to_string(),
    })
}

fn identity_text(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_owned();
    format!(
        "name:    {}\nuser:    {}\n         ({})\ndevice:  {}\n         ({})\ndata:    {}\n",
        s("name"),
        s("user_id"),
        s("user_short"),
        s("device_id"),
        s("device_short"),
        s("data_dir")
    )
}

fn init(args: &Cli, out: &mut String, name: &str) -> Result<u8> {
    let dir = data_dir(args)?;
    let node = Node::init(&dir, name).with_context(|| format!("creating an identity in {}", dir.display()))?;
    let v = identity_json(&node);
    print(args, out, &v, || format!("Created a new identity.\n{}", identity_text(&v)));
    Ok(0)
}

fn id(args: &Cli, out: &mut String, node: &Node) -> Result<u8> {
    let v = identity_json(node);
    print(args, out, &v, || identity_text(&v));
    Ok(0)
}

/// Resolves an author argument to a log key.
fn author_key(node: &Node, s: &str) -> Result<[u8; 32]> {
    match s {
        "device" => return Ok(*node.device_id().as_bytes()),
        "user" => {
            return node.user_id().map(|u| *u.as_bytes()).context("this device does not know its user");
        }
        _ => {}
    }
    if s.len() == 64
        && let Ok(b) = hex::decode(s)
    {
        return <[u8; 32]>::try_from(b.as_slice()).context("hex author must be 32 bytes");
    }
    text::decode_id(s)
        .map(|(_, k)| k)
        .with_context(|| format!("'{s}' is not an author (lu…, ld…, 64 hex digits, user or device)"))
}

fn log(args: &Cli, out: &mut String, node: &Node, cmd: &LogCommand) -> Result<u8> {
    let store = &node.store;
    let trust = store.trust();
    match cmd {
        LogCommand::List => {
            let rows: Vec<Value> = store
                .heads()
                .map(|(a, h)| {
                    json!({
                        "author": render::author(trust, &a),
                        "seq": h.seq,
                        "head": h.id.to_hex(),
                        "last_time": render::time(libra_engine::clock::physical_ms(h.timestamp)),
                        "forked": store.is_forked(&a),
                    })
                })
                .collect();
            print(args, out, &json!(rows), || {
                let mut out = String::new();
                for r in &rows {
                    out += &format!(
                        "{}  {:>8} entries  head {}  {}{}\n",
                        r["author"].as_str().unwrap_or(""),
                        r["seq"],
                        &r["head"].as_str().unwrap_or("")[..16],
                        r["last_time"].as_str().unwrap_or(""),
                        if r["forked"] == json!(true) { "  FORKED" } else { "" }
                    );
                }
                out
            });
        }
        LogCommand::Show { author, from, limit } => {
            let key = author_key(node, author)?;
            if store.head(&key).is_none() {
                bail!("no log by {author} in this store");
            }
            let entries = store.read_log(&key, *from, *limit)?;
            let rows: Vec<Value> = entries.iter().map(|e| render::entry_json(e, false)).collect();
            print(args, out, &json!(rows), || {
                rows.iter()
                    .map(|r| {
                        format!(
                            "{:>6}  {}  {}  {:<14} {:>6} B\n",
                            r["seq"],
                            &r["id"].as_str().unwrap_or("")[..16],
                            r["time"].as_str().unwrap_or(""),
                            r["kind_name"].as_str().unwrap_or(""),
                            r["payload_size"]
                        )
                    })
                    .collect()
            });
        }
        LogCommand::Verify => {
            let problems = store.verify()?;
            let rows: Vec<Value> = problems
                .iter()
                .map(|p| json!({ "log": p.author.map(|a| render::author(trust, &a)), "problem": p.what }))
                .collect();
            let v = json!({ "logs": store.heads().count(), "entries": store.entry_count(), "problems": rows });
            print(args, out, &v, || {
                let mut out = format!("checked {} logs, {} entries\n", v["logs"], v["entries"]);
                for r in &rows {
                    out += &format!(
                        "PROBLEM {}: {}\n",
                        r["log"].as_str().unwrap_or("store"),
                        r["problem"].as_str().unwrap_or("")
                    );
                }
                if rows.is_empty() {
                    out += "all chains, heads, fork proofs and views verify\n";
                }
                out
            });
            if !problems.is_empty() {
                return Ok(1);
            }
        }
        LogCommand::Replay { author } => return replay(args, out, node, author),
        LogCommand::Forks => {
            let rows: Vec<Value> = store
                .forks()?
                .iter()
                .map(|(a, proof)| {
                    json!({
                        "author": render::author(trust, a),
                        "valid": proof.verify().is_ok(),
                        "seq": proof.verify().map(|(_, s)| s).ok(),
                        "proof": hex::encode(proof.encode()),
                        "first": hex::encode(&proof.first.0),
                        "second": hex::encode(&proof.second.0),
                    })
                })
                .collect();
            print(args, out, &json!(rows), || {
                if rows.is_empty() {
                    return "no forks\n".into();
                }
                rows.iter()
                    .map(|r| {
                        format!(
                            "{} equivocated at seq {}; proof {}\n",
                            r["author"].as_str().unwrap_or(""),
                            r["seq"],
                            r["proof"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            });
        }
    }
    Ok(0)
}

/// The audit view: every entry re-validated from seq 1 as it is printed.
fn replay(args: &Cli, out: &mut String, node: &Node, author: &str) -> Result<u8> {
    let key = author_key(node, author)?;
    let store = &node.store;
    if store.head(&key).is_none() {
        bail!("no log by {author} in this store");
    }
    let mut at: Option<ChainPoint> = None;
    let mut rows = Vec::new();
    let mut failure = None;
    let mut from = 1;
    'outer: loop {
        let chunk = store.read_log(&key, from, 4096)?;
        let Some(last) = chunk.last() else { break };
        from = last.header().seq + 1;
        for e in &chunk {
            match validate_next(at.as_ref(), e) {
                Ok(p) => at = Some(p),
                Err(err) => {
                    failure = Some(format!("seq {}: {err}", e.header().seq));
                    break 'outer;
                }
            }
            rows.push(render::entry_json(e, true));
        }
    }
    let owner = store.trust().owner_of(&libra_engine::identity::DeviceId(Bytes(key)));
    let v = json!({
        "author": render::author(store.trust(), &key),
        "owner": owner.map(|u: UserId| u.to_string()),
        "verified": failure.is_none(),
        "failure": failure,
        "entries": rows,
    });
    print(args, out, &v, || {
        let mut out = format!("log {}\n", v["author"].as_str().unwrap_or(""));
        for r in &rows {
            out += &format!(
                "{:>6}  {}  {}  {:<14} {}\n",
                r["seq"],
                &r["id"].as_str().unwrap_or("")[..16],
                r["time"].as_str().unwrap_or(""),
                r["kind_name"].as_str().unwrap_or(""),
                r["payload"]
            );
        }
        out += &match &failure {
            None => format!("verified: {} entries, chain intact\n", rows.len()),
            Some(f) => format!("VERIFICATION FAILED at {f}\n"),
        };
        out
    });
    Ok(if failure.is_some() { 1 } else { 0 })
}

fn vectors_cmd(args: &Cli, out: &mut String, cmd: &VectorsCommand) -> Result<u8> {
    match cmd {
        VectorsCommand::Generate { dir } => {
            let names = vectors::write_dir(dir)?;
            print(args, out, &json!({ "dir": dir.display().to_string(), "files": names }), || {
                format!("wrote {} to {}\n", names.join(", "), dir.display())
            });
            Ok(0)
        }
        VectorsCommand::Verify { dir } => {
            let report = vectors::verify_dir(dir)?;
            let failures: Vec<Value> = report
                .failures
                .iter()
                .map(|f| json!({ "file": f.file, "case": f.case, "problem": f.problem }))
                .collect();
            let v = json!({
                "cases": report.cases,
                "failures": failures,
                "differs_from_generated": report.differs_from_generated,
                "ok": report.ok(),
            });
            print(args, out, &v, || {
                let mut out = format!("checked {} cases in {}\n", report.cases, dir.display());
                for f in &report.failures {
                    out += &format!("FAIL {} {}: {}\n", f.file, f.case, f.problem);
                }
                for f in &report.differs_from_generated {
                    out += &format!("DIFFERS {f}: not what this version generates\n");
                }
                if report.ok() {
                    out += "all vectors verify\n";
                }
                out
            });
            Ok(if report.ok() { 0 } else { 1 })
        }
    }
}
