//! The engine's integration tests: one binary, one module per scenario.

mod ahead;
mod crash;
mod crash_node;
mod crypto_vectors;
mod devices;
mod diskfull;
mod files;
mod fjall_workers;
mod fuzz_corpus;
mod keyfile;
mod messaging;
mod net;
mod parking;
mod projection;
mod props;
mod relay;
mod short_invites;
mod sim;
mod store;
mod sync;
mod sync_points;
mod trust_props;
mod util;
mod validation;
mod vectors;
mod wire_limits;
