//! Invites as typed, pasted or scanned (spec/messaging.md, section 8.2), and control-socket
//! request lines (any local process of the user may write one).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(i) = libra_engine::messenger::Invite::parse(&text) {
        assert!(libra_engine::messenger::Invite::parse(&i.to_text()).is_ok(), "a parsed invite parses again");
    }
    let _ = libra_engine::control::decode_request(&text);
});
