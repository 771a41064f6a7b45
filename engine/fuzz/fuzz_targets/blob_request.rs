//! `libra/blob/1` requests: any allowed peer reaches this decoder and the range checks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::blob::{Request, check_request, max_response_len};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        assert_eq!(r.encode(), data, "a decoded request re-encodes to the same bytes");
        for size in [0u64, 1, 16_384, 140_048, 1 << 30] {
            if check_request(&r, size).is_ok() {
                assert!(max_response_len(size, &r.ranges) <= libra_engine::blob::MAX_RESPONSE);
            }
        }
    }
});
