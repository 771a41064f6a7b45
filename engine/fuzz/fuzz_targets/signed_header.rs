#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::log::SignedHeader;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = SignedHeader::decode(data) {
        assert_eq!(h.encode(), data);
    }
});
