//! Ids typed or pasted by people.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok((kind, key)) = libra_engine::text::decode_id(s) {
            assert_eq!(libra_engine::text::encode_id(kind, &key), s.trim().to_ascii_lowercase());
        }
    }
});
