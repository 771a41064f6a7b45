//! Relay and punch requests and the addresses punching passes: any contact reaches these
//! decoders on `libra/relay/1`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::relay_wire::{Request, decode_addr};

fuzz_target!(|data: &[u8]| {
    if let Some(head) = data.get(..Request::LEN).and_then(|h| <&[u8; Request::LEN]>::try_from(h).ok())
        && let Ok(r) = Request::decode(head)
    {
        assert_eq!(&r.encode(), head, "a decoded request re-encodes to the same bytes");
    }
    if let Ok(a) = decode_addr(data) {
        assert_eq!(libra_engine::relay_wire::encode_addr(a), data);
    }
});
