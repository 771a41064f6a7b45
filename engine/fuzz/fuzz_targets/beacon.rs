//! LAN beacons: any datagram on the local network reaches this decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = libra_engine::discovery::Beacon::decode(data) {
        assert_eq!(b.encode(), data, "a decoded beacon re-encodes to the same bytes");
        assert!(b.tags.len() <= libra_engine::discovery::MAX_TAGS);
    }
});
