//! What a new device, a linking device or a restore reads from outside: link codes (typed or
//! scanned), `libra/link/1` requests and grants, revocations in any log, recovery phrases,
//! backup headers and contents records. The first byte picks the decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::backup::{Contents, Header};
use libra_engine::codec;
use libra_engine::identity::Revocation;
use libra_engine::link::{LinkCode, LinkGrant, LinkRequest};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 6 {
        0 => {
            if let Ok(code) = LinkCode::parse(&String::from_utf8_lossy(rest), 0) {
                assert_eq!(LinkCode::parse(&code.to_text(), 0).ok(), Some(code));
            }
        }
        1 => {
            if let Ok(r) = codec::decode::<LinkRequest>(rest) {
                assert_eq!(codec::encode(&r), rest);
            }
        }
        2 => {
            if let Ok(g) = codec::decode::<LinkGrant>(rest) {
                let code = LinkCode {
                    version: 1,
                    user: libra_engine::identity::UserKeys::from_secret([1; 32]).id(),
                    device: libra_engine::identity::DeviceId(codec::Bytes([2; 32])),
                    secret: codec::Bytes([3; 32]),
                    addresses: vec![],
                    expires_ms: 1,
                };
                let _ = g.check(&code, &libra_engine::identity::DeviceId(codec::Bytes([4; 32])), &[5; 32]);
            }
        }
        3 => {
            if let Ok(r) = codec::decode::<Revocation>(rest) {
                let _ = r.verify();
            }
        }
        4 => {
            if let Ok(secret) = libra_engine::phrase::decode(&String::from_utf8_lossy(rest)) {
                assert_eq!(libra_engine::phrase::decode(&libra_engine::phrase::encode(&secret)), Ok(secret));
            }
        }
        _ => {
            if let Ok(h) = Header::decode(rest) {
                assert_eq!(Header::decode(&h.encode()), Ok(h));
            }
            let _ = Contents::parse(rest);
        }
    }
});
