//! Relay and punch requests, the introductions and address lists punching passes: any contact
//! reaches these decoders on `libra/relay/1`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::relay_wire::{Introduction, Request, decode_addr, decode_list, encode_addr, encode_list};

fuzz_target!(|data: &[u8]| {
    if let Some(head) = data.get(..Request::LEN).and_then(|h| <&[u8; Request::LEN]>::try_from(h).ok())
        && let Ok(r) = Request::decode(head)
    {
        assert_eq!(&r.encode(), head, "a decoded request re-encodes to the same bytes");
    }
    if let Ok(a) = decode_addr(data) {
        assert_eq!(encode_addr(a), data);
    }
    if let Ok(l) = decode_list(data) {
        assert_eq!(encode_list(&l), data);
    }
    if let Ok(i) = Introduction::decode(data) {
        assert_eq!(i.encode(), data, "a decoded introduction re-encodes to the same bytes");
    }
});
