//! `libra`: the command line front end to a Libra node.

// glibc's malloc spent a quarter of the engine's writer thread consolidating freed memtable nodes
// at 300k messages; jemalloc does not (ARCHITECTURE.md, "Choices worth knowing").
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use libra_engine::control::{self, Request};
use libra_engine::engine::EngineError;
use libra_engine::node::NodeError;
use libra_engine::store::StoreError;
use libra_tools::{cli, commands};

/// Whether the command failed only because a running node holds the store.
fn locked(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(c.downcast_ref::<StoreError>(), Some(StoreError::Locked(_)))
            || matches!(c.downcast_ref::<NodeError>(), Some(NodeError::Store(StoreError::Locked(_))))
            || matches!(
                c.downcast_ref::<EngineError>(),
                Some(EngineError::Node(NodeError::Store(StoreError::Locked(_))))
            )
    })
}

/// Sends a request to the node running on `dir`.
fn forward(dir: &std::path::Path, req: &Request) -> Result<control::Reply> {
    let stream = control::connect(dir).ok_or_else(|| {
        anyhow::anyhow!("the store is in use, and no running node answers at {}", dir.join(control::SOCKET).display())
    })?;
    Ok(control::call(stream, req)?)
}

fn main() -> ExitCode {
    let mut args = cli::Cli::parse();
    if let Err(e) = commands::read_stdin_args(&mut args) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let mut out = String::new();
    let dir = commands::data_dir(&args).ok();
    let req = commands::request(&args.command);
    // A running node answers on its control socket: ask it first, without touching the store
    // (opening a store another process holds only fails, and slowly).
    let running = match (&args.command, &dir) {
        (cli::Command::Vectors(_) | cli::Command::Completions { .. }, _) | (_, None) => None,
        (_, Some(d)) => control::connect(d),
    };
    let mut forwarded = running.is_some();
    let mut result = match (running, &req) {
        (Some(_), None) => Err(anyhow::anyhow!("a node is already running on this data directory")),
        // Writing out a file a running node is still fetching: a progress bar while it does.
        (Some(stream), Some(Request::File(control::FileCommand::Get { id, out: to, wait_secs })))
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) =>
        {
            drop(stream);
            let d = dir.clone().unwrap_or_default();
            commands::file_get_watching(&d, id, to, *wait_secs).map(|reply| {
                out = commands::show(&args, &reply);
                reply.code
            })
        }
        (Some(stream), Some(r)) => control::call(stream, r).map_err(Into::into).map(|reply| {
            out = commands::show(&args, &reply);
            reply.code
        }),
        (None, _) => commands::run(&args, &mut out),
    };
    // A node that started between the check and the open holds the store: nothing ran
    // locally (opening the store failed first), so forwarding is safe.
    if !forwarded
        && let Err(e) = &result
        && locked(e)
        && let (Some(d), Some(r)) = (&dir, &req)
    {
        forwarded = true;
        result = forward(d, r).map(|reply| {
            out = commands::show(&args, &reply);
            reply.code
        });
    }
    match (&result, &args.command, &dir) {
        (Ok(0), cli::Command::Chat { chat, follow: true, .. }, Some(d)) if forwarded => {
            if emit(&out).is_err() {
                return ExitCode::SUCCESS;
            }
            return follow(d, chat);
        }
        (Ok(0), cli::Command::Chat { follow: true, .. }, _) => {
            out.push_str("(--follow needs a running node: start `libra serve` or the app)\n");
        }
        _ => {}
    }
    // A reader that went away (`libra … | head`) is not an error of ours.
    let _ = emit(&out);
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            if args.json {
                // One object with a stable code, for scripts (spec/messaging.md, section 12).
                let code = match e.downcast_ref::<control::ControlError>() {
                    Some(c) => c.code.clone(),
                    None => control::error_code(&e).to_owned(),
                };
                let v = serde_json::json!({ "error": { "code": code, "message": format!("{e:#}") } });
                let _ = emit(&format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()));
            }
            ExitCode::from(2)
        }
    }
}

/// Writes to standard output; an error means nobody reads it any more.
fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Polls the running node and prints each message once, as it arrives (whatever its
/// timestamp: a late delivery with an earlier time is not missed), and edits and deletions of
/// messages already shown as they happen, until interrupted.
fn follow(dir: &std::path::Path, chat: &str) -> ExitCode {
    // What each message shown looked like: its text and whether it was deleted.
    let mut shown: std::collections::HashMap<String, (Option<String>, bool)> = std::collections::HashMap::new();
    let mut first = true;
    loop {
        let req = Request::Chat { chat: chat.to_owned(), limit: 500, mark_read: false, receipts: false, after: None };
        match forward(dir, &req) {
            Ok(reply) if reply.code == 0 => {
                for m in reply.value["messages"].as_array().into_iter().flatten() {
                    let id = m["id"].as_str().unwrap_or("").to_owned();
                    let now = (m["text"].as_str().map(str::to_owned), m["deleted"] == true);
                    let line = match shown.get(&id) {
                        // The first answer is what `chat` just printed.
                        None if first => String::new(),
                        None => control::message_line(m),
                        Some(before) if *before == now => String::new(),
                        Some(_) if now.1 => format!("  deleted {}\n", &id[..8.min(id.len())]),
                        Some(_) => format!(
                            "  edited {}: {}\n",
                            &id[..8.min(id.len())],
                            libra_engine::text::for_terminal(now.0.as_deref().unwrap_or(""))
                        ),
                    };
                    if emit(&line).is_err() {
                        return ExitCode::SUCCESS;
                    }
                    shown.insert(id, now);
                }
                first = false;
            }
            Ok(reply) => return ExitCode::from(reply.code),
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
