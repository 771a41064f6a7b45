//! Carrying out commands against a node.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use libra_engine::codec::Bytes;
use libra_engine::identity::UserId;
use libra_engine::log::{ChainPoint, validate_next};
use libra_engine::node::Node;
use libra_engine::{text, vectors};
use serde_json::{Value, json};

use crate::cli::{Cli, Command, LogCommand, PeerCommand, VectorsCommand};
use crate::net_cmds;
use crate::render;

pub fn data_dir(args: &Cli) -> Result<PathBuf> {
    if let Some(d) = &args.data {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("org", "Libra", "libra")
        .map(|p| p.data_dir().to_path_buf())
        .context("no home directory found; pass --data DIR")
}

pub fn print(args: &Cli, value: &Value, text: impl FnOnce() -> String) {
    if args.json {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
    } else {
        print!("{}", text());
    }
}

pub fn run(args: &Cli) -> Result<ExitCode> {
    match &args.command {
        Command::Init { name } => init(args, name),
        Command::Id => id(args),
        Command::Log(cmd) => log(args, cmd),
        Command::Vectors(cmd) => vectors_cmd(args, cmd),
        Command::Serve { listen } => net_cmds::serve(args, listen),
        Command::Sync { target, peer } => net_cmds::sync(args, target, peer.as_deref()),
        Command::Peers => net_cmds::peers(args),
        Command::Peer(PeerCommand::Allow { id, address }) => net_cmds::allow(args, id, address.as_deref()),
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

fn init(args: &Cli, name: &str) -> Result<ExitCode> {
    let dir = data_dir(args)?;
    let node = Node::init(&dir, name).with_context(|| format!("creating an identity in {}", dir.display()))?;
    let v = identity_json(&node);
    print(args, &v, || format!("Created a new identity.\n{}", identity_text(&v)));
    Ok(ExitCode::SUCCESS)
}

fn id(args: &Cli) -> Result<ExitCode> {
    let node = open(args)?;
    let v = identity_json(&node);
    print(args, &v, || identity_text(&v));
    Ok(ExitCode::SUCCESS)
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

fn log(args: &Cli, cmd: &LogCommand) -> Result<ExitCode> {
    let node = open(args)?;
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
            print(args, &json!(rows), || {
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
            let key = author_key(&node, author)?;
            if store.head(&key).is_none() {
                bail!("no log by {author} in this store");
            }
            let entries = store.read_log(&key, *from, *limit)?;
            let rows: Vec<Value> = entries.iter().map(|e| render::entry_json(e, false)).collect();
            print(args, &json!(rows), || {
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
            print(args, &v, || {
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
                return Ok(ExitCode::from(1));
            }
        }
        LogCommand::Replay { author } => return replay(args, &node, author),
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
            print(args, &json!(rows), || {
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
    Ok(ExitCode::SUCCESS)
}

/// The audit view: every entry re-validated from seq 1 as it is printed.
fn replay(args: &Cli, node: &Node, author: &str) -> Result<ExitCode> {
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
    print(args, &v, || {
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
    Ok(if failure.is_some() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn vectors_cmd(args: &Cli, cmd: &VectorsCommand) -> Result<ExitCode> {
    match cmd {
        VectorsCommand::Generate { dir } => {
            let names = vectors::write_dir(dir)?;
            print(args, &json!({ "dir": dir.display().to_string(), "files": names }), || {
                format!("wrote {} to {}\n", names.join(", "), dir.display())
            });
            Ok(ExitCode::SUCCESS)
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
            print(args, &v, || {
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
            Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}
