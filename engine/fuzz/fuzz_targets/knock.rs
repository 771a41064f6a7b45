//! Knocks: any client that reaches the QUIC port chooses the server name this parser reads.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    if let Ok(k) = libra_engine::knock::Knock::parse(name) {
        assert_eq!(k.server_name(), name, "a parsed knock writes back the same name");
        let _ = k.proves_key(&[7; 32], u64::MAX);
        let _ = k.proven_invite(&[[5; 16]], 0);
    }
});
