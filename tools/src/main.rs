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
    let mut result = commands::run(&args, &commands::Access::Local, &mut out);
    if let Err(e) = &result
        && locked(e)
        && let Ok(dir) = commands::data_dir(&args)
    {
        // Nothing ran locally (opening the store failed first), so forwarding is safe.
        result = control::forward(&dir, std::env::args().collect()).map(|(text, code)| {
            out = text;
            code
        });
        if let (Ok(0), cli::Command::Chat { chat, follow: true, .. }) = (&result, &args.command) {
            print!("{out}");
            return follow(&dir, chat);
        }
    } else if let (Ok(0), cli::Command::Chat { follow: true, .. }) = (&result, &args.command) {
        out.push_str("(--follow needs a running node: start `libra serve` or the app)\n");
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
