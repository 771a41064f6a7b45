//! Payloads are decoded by projections from any peer's entries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::payload::Payload;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let kind = u16::from_le_bytes([data[0], data[1]]);
    if let Ok(p) = Payload::decode(kind, &data[2..]) {
        let _ = p.to_json();
    }
});
