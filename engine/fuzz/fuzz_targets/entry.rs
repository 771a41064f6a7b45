//! Wire entries from peers and bundles: decoding and validation must never panic, and whatever
//! decodes must re-encode to the same bytes (one canonical form).
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::log::{Entry, validate_next};

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Entry::decode(data) {
        assert_eq!(e.encode(), data);
        let _ = validate_next(None, &e);
    }
});
