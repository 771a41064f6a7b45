//! The sync state machine (spec/sync.md) fed what a hostile peer sends: raw and framed chunks,
//! timeouts and local changes, each followed by a drive and the answers to every effect (the
//! harness is `libra_engine::sync::hostile`, shared with `cargo test`'s corpus replay). Nothing
//! may panic, and a peer cannot make the connection send without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    libra_engine::sync::hostile::feed(data);
});
