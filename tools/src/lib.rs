//! The `libra` command line as a library, so other front ends (the desktop app) can answer the
//! same commands over the control socket while they hold the data directory.

mod chat_cmds;
pub mod cli;
pub mod commands;
pub mod control;
mod net_cmds;
mod render;

pub use chat_cmds::message_line;
