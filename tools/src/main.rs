//! `libra`: the command line front end to a Libra node.

mod cli;
mod commands;
mod control;
mod net_cmds;
mod render;

use std::process::ExitCode;

use clap::Parser;
use libra_engine::node::NodeError;
use libra_engine::store::StoreError;

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
        result = control::forward(&dir).map(|(text, code)| {
            out = text;
            code
        });
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
