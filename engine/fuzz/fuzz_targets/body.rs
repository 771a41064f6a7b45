//! Message bodies: the plaintext of any sealed entry that opens for us, written by any
//! contact, is decoded here.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::messaging::Body;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Body::decode(data) {
        assert_eq!(b.encode(), data, "only canonical bodies decode");
    }
});
