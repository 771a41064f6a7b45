//! Sealed payloads (spec/messaging.md, section 4): any carrier's entry reaches the decoder and
//! the opening with our key; neither may panic, and what opens re-encodes canonically.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::messaging::Sealed;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Sealed::decode(data) {
        assert_eq!(s.encode(), data);
        let secret = x25519_dalek::StaticSecret::from([7u8; 32]);
        let _ = s.open(&secret, b"libra-msg-v1");
    }
});
