//! Carrying out control requests on an engine: the data of every `libra` command that reads or
//! writes a node, as JSON (the `--json` form) with its text rendering beside it.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::render;
use super::{Cx, LogCommand, Out, Request};
use super::{audit, bundle, chat, contact, invite, nearby, peers};
use crate::codec::Bytes;
use crate::identity::UserId;
use crate::log::{ChainPoint, validate_next};
use crate::node::Node;
use crate::text;

/// Carries out `req`; the exit status is the command's (1 where a check found problems).
pub fn run(cx: &Cx, out: &mut Out, req: &Request) -> Result<u8> {
    match req {
        Request::Id => id(cx, out),
        Request::Log(cmd) => cx.read(|node| log(out, node, cmd)),
        Request::Sync { target, peer } => peers::sync(cx, out, target, peer.as_deref()),
        Request::Peers => peers::peers(cx, out),
        Request::PeerAllow { id, address } => peers::allow(cx, out, id, address.as_deref()),
        Request::Invite(cmd) => invite::invite(cx, out, cmd),
        Request::Nearby(cmd) => nearby::nearby(cx, out, cmd),
        Request::StunAsk { server } => nearby::stun_ask(cx, out, server),
        Request::Bundle(cmd) => bundle::bundle(cx, out, cmd),
        Request::AuditChat { chat: c } => audit::chat(cx, out, c),
        Request::Contact(cmd) => contact::contact(cx, out, cmd),
        Request::Send { chat: c, text, file: Some(path), .. } => super::files::send(cx, out, c, path, text),
        Request::Send { chat: c, text, reply_to, file: None } => chat::send(cx, out, c, text, reply_to.as_deref()),
        Request::File(cmd) => super::files::run(cx, out, cmd),
        Request::Edit { chat: c, message, text } => chat::edit(cx, out, c, message, Some(text)),
        Request::Delete { chat: c, message } => chat::edit(cx, out, c, message, None),
        Request::Chats => chat::chats(cx, out),
        Request::Chat { chat: c, limit, mark_read, receipts, after } => {
            chat::chat(cx, out, c, *limit, *mark_read, *receipts, *after)
        }
        Request::Group(cmd) => chat::group(cx, out, cmd),
        Request::Device(cmd) => super::devices::run(cx, out, cmd),
        Request::Backup { file, with_files, phrase } => {
            super::backup::backup(cx, out, std::path::Path::new(file), *with_files, phrase.as_deref())
        }
    }
}

/// The identity as `libra id` shows it.
pub fn identity_json(node: &Node) -> Value {
    let user = node.user_id();
    json!({
        "name": node.name(),
        "user_id": user.map(|u| u.to_string()),
        "user_short": user.map(|u| u.short()),
        "device_id": node.device_id().to_string(),
        "device_short": node.device_id().short(),
        "holds_user_key": node.secrets.user.is_some(),
        "data_dir": node.dir.display().to_string(),
        "clock_ahead_ms": node.clock_ahead_ms(crate::clock::wall_ms()),
    })
}

/// The warning for a device whose own log is stamped over a day ahead of its clock.
pub fn clock_ahead_text(ahead_ms: u64) -> String {
    let hour = 3_600_000;
    format!(
        "This device's messages are stamped {} h ahead of its clock (the clock once ran fast). Contacts hold what it writes for about {} h more; check the date and time settings.",
        (ahead_ms + hour / 2) / hour,
        ahead_ms.saturating_sub(crate::clock::MAX_AHEAD_MS).div_ceil(hour)
    )
}

/// The text form of [`identity_json`].
pub fn identity_text(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_owned();
    let mut t = format!(
        "name:    {}\nuser:    {}\n         ({})\ndevice:  {}\n         ({})\ndata:    {}\n",
        s("name"),
        s("user_id"),
        s("user_short"),
        s("device_id"),
        s("device_short"),
        s("data_dir")
    );
    if let Some(ms) = v["clock_ahead_ms"].as_u64() {
        t += &format!("warning: {}\n", clock_ahead_text(ms));
    }
    t
}

/// The identity, and (from a running node with a STUN server set) the public address.
fn id(cx: &Cx, out: &mut Out) -> Result<u8> {
    let mut v = cx.read(|node| Ok(identity_json(node)))?;
    let public = cx.engine.stun_public();
    v["public_address"] = json!(public.as_ref().map(|(_, a, _)| a.to_string()));
    v["public_address_from"] = json!(public.as_ref().map(|(s, _, _)| s.clone()));
    v["public_address_since"] = json!(public.as_ref().map(|(_, _, ms)| render::time(*ms)));
    out.set(&v, || {
        let mut t = identity_text(&v);
        if let Some((server, addr, _)) = &public {
            t += &format!("public:  {addr} (as the STUN server {} sees this node)\n", text::for_terminal(server));
        }
        t
    });
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

fn log(out: &mut Out, node: &Node, cmd: &LogCommand) -> Result<u8> {
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
                        "last_time": render::time(crate::clock::physical_ms(h.timestamp)),
                        "forked": store.is_forked(&a),
                    })
                })
                .collect();
            out.set(&json!(rows), || {
                let mut out = String::new();
                for r in &rows {
                    out += &format!(
                        "{}  {:>8} entries  head {}  {}{}\n",
                        r["author"].as_str().unwrap_or(""),
                        r["seq"],
                        &r["head"].as_str().unwrap_or("")[..16],
                        render::local(r["last_time"].as_str().unwrap_or("")),
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
            out.set(&json!(rows), || {
                rows.iter()
                    .map(|r| {
                        format!(
                            "{:>6}  {}  {}  {:<14} {:>6} B\n",
                            r["seq"],
                            &r["id"].as_str().unwrap_or("")[..16],
                            render::local(r["time"].as_str().unwrap_or("")),
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
            out.set(&v, || {
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
        LogCommand::Replay { author } => return replay(out, node, author),
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
            out.set(&json!(rows), || {
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
fn replay(out: &mut Out, node: &Node, author: &str) -> Result<u8> {
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
    let owner = store.trust().owner_of(&crate::identity::DeviceId(Bytes(key)));
    let v = json!({
        "author": render::author(store.trust(), &key),
        "owner": owner.map(|u: UserId| u.to_string()),
        "verified": failure.is_none(),
        "failure": failure,
        "entries": rows,
    });
    out.set(&v, || {
        let mut out = format!("log {}\n", v["author"].as_str().unwrap_or(""));
        for r in &rows {
            out += &render::entry_line(r);
        }
        out += &match &failure {
            None => format!("verified: {} entries, chain intact\n", rows.len()),
            Some(f) => format!("VERIFICATION FAILED at {f}\n"),
        };
        out
    });
    Ok(if failure.is_some() { 1 } else { 0 })
}
