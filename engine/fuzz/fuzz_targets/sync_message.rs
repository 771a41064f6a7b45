//! Sync messages (spec/sync.md): every peer that finishes the handshake reaches this decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::sync::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        assert_eq!(m.encode(), data, "a decoded message re-encodes to the same bytes");
    }
});
