//! The `libra` command line as a library (its integration tests and benches use it): the
//! grammar, and carrying out commands here or on the running node through the engine's
//! control channel.

pub mod cli;
pub mod commands;
pub mod link;
pub mod stun_server;
