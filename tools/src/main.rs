//! `libra`: the command line front end to a Libra node.

use std::process::ExitCode;

use clap::Parser;
use libra_engine::node::NodeError;
use libra_engine::store::StoreError;
use libra_tools::{cli, commands, control};

/// Whether the command failed only because a running node holds the store.
fn locked(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(c.downcast_ref::<StoreError>(), Some(StoreError::Locked(_)))
            || matches!(c.downcast_ref::<NodeError>(), Some(NodeError::Store(StoreError::Locked(_))))
    })
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let mut out = String::new();
    let dir = commands::data_dir(&args).ok();
    let argv: Vec<String> = std::env::args().collect();
    // A running node answers on its control socket: ask it first, without touching the store
    // (opening a store another process holds only fails, and slowly).
    let running = match (&args.command, &dir) {
        (cli::Command::Vectors(_), _) | (_, None) => None,
        (_, Some(d)) => control::connect(d),
    };
    let mut forwarded = running.is_some();
    let mut result = match running {
        Some(stream) => control::forward_on(stream, argv.clone()).map(|(text, code)| {
            out = text;
            code
        }),
        None => commands::run(&args, &commands::Access::Local, &mut out),
    };
    // A node that started between the check and the open holds the store: nothing ran
    // locally (opening the store failed first), so forwarding is safe.
    if !forwarded
        && let Err(e) = &result
        && locked(e)
        && let Some(d) = &dir
    {
        forwarded = true;
        result = control::forward(d, argv).map(|(text, code)| {
            out = text;
            code
        });
    }
    match (&result, &args.command, &dir) {
        (Ok(0), cli::Command::Chat { chat, follow: true, .. }, Some(d)) if forwarded => {
            print!("{out}");
            return follow(d, chat);
        }
        (Ok(0), cli::Command::Chat { follow: true, .. }, _) => {
            out.push_str("(--follow needs a running node: start `libra serve` or the app)\n");
        }
        _ => {}
    }
    print!("{out}");
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Polls the running node for messages newer than the last one shown, until interrupted.
fn follow(dir: &std::path::Path, chat: &str) -> ExitCode {
    let mut after = 0u64;
    loop {
        let argv = vec![
            "libra".to_owned(),
            "--json".into(),
            "chat".into(),
            chat.to_owned(),
            "--after".into(),
            after.to_string(),
        ];
        match control::forward(dir, argv) {
            Ok((text, 0)) => {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                    for m in v["messages"].as_array().into_iter().flatten() {
                        if after > 0 {
                            print!("{}", libra_tools::message_line(m));
                        }
                        after = after.max(m["timestamp"].as_u64().unwrap_or(0));
                    }
                    if after == 0 {
                        after = 1;
                    }
                }
            }
            Ok((_, code)) => return ExitCode::from(code),
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
