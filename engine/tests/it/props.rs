//! Property tests: canonical round trips, and that no single-bit flip of an entry survives.

use libra_engine::codec::{self, Bytes};
use libra_engine::log::{ChainPoint, Entry, EntryId, Header, SignedHeader, validate_next};
use proptest::prelude::*;

use crate::util::key;

fn arb_header() -> impl Strategy<Value = Header> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        proptest::option::of(any::<[u8; 32]>()),
        any::<u64>(),
        any::<u16>(),
        any::<u32>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(author, seq, prev, timestamp, kind, payload_size, hash)| Header {
            version: 1,
            author: Bytes(author),
            seq,
            prev: prev.map(|p| EntryId(Bytes(p))),
            timestamp,
            kind,
            payload_size,
            payload_hash: Bytes(hash),
        })
}

/// Flips bit `bit` of the wire form and checks the result is refused somewhere on the way in.
fn flipped_is_rejected(prev: Option<&ChainPoint>, e: &Entry, bit: usize) -> Result<(), String> {
    let mut wire = e.encode();
    let bit = bit % (wire.len() * 8);
    wire[bit / 8] ^= 1 << (bit % 8);
    match Entry::decode(&wire) {
        Err(_) => Ok(()),
        Ok(d) => match validate_next(prev, &d) {
            Err(_) => Ok(()),
            Ok(_) => Err(format!("flip of bit {bit} accepted")),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn signed_header_round_trips(header in arb_header(), sig in any::<[u8; 32]>()) {
        let sh = SignedHeader { header, signature: Bytes([sig, sig].concat().try_into().expect("64")) };
        let bytes = sh.encode();
        prop_assert_eq!(SignedHeader::decode(&bytes), Ok(sh.clone()));
        prop_assert!(bytes.len() <= libra_engine::log::MAX_SIGNED_HEADER);
        // And any prefix of it is refused.
        for cut in 0..bytes.len() {
            prop_assert!(SignedHeader::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn entry_wire_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..2048), ts in any::<u64>(), kind in any::<u16>()) {
        let e = libra_engine::log::sign_entry(&key("prop"), None, ts, kind, payload);
        let back = Entry::decode(&e.encode()).expect("decodes");
        prop_assert_eq!(&back, &e);
        prop_assert!(validate_next(None, &back).is_ok());
    }

    #[test]
    fn single_bit_flips_are_rejected(payload in proptest::collection::vec(any::<u8>(), 0..300), bit in any::<usize>()) {
        let k = key("flip");
        let first = libra_engine::log::sign_entry(&k, None, 10, 1, b"first".to_vec());
        let second = libra_engine::log::sign_entry(&k, Some((1, first.id)), 20, 1, payload);
        let p = ChainPoint::of(&first);
        prop_assert_eq!(flipped_is_rejected(Some(&p), &second, bit), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Entry::decode(&bytes);
        let _ = SignedHeader::decode(&bytes);
        let _ = codec::decode::<libra_engine::DeviceCert>(&bytes);
    }
}

#[test]
fn every_single_bit_flip_of_one_entry_is_rejected() {
    let k = key("flip-all");
    let first = libra_engine::log::sign_entry(&k, None, 10, 1, b"first".to_vec());
    let second = libra_engine::log::sign_entry(&k, Some((1, first.id)), 20, 1, b"hello, world".to_vec());
    let p = ChainPoint::of(&first);
    let bits = second.encode().len() * 8;
    for bit in 0..bits {
        assert_eq!(flipped_is_rejected(Some(&p), &second, bit), Ok(()));
    }
}
