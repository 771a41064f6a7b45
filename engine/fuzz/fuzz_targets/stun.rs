//! STUN answers and requests: with a STUN server set, every datagram the node's QUIC socket
//! receives passes `is_stun`, and `libra stun serve` reads whatever anyone sends it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::stun;

fuzz_target!(|data: &[u8]| {
    let looks = stun::is_stun(data);
    if let Ok((tx, addr)) = stun::parse_response(data) {
        assert!(looks, "an answer read is a STUN message");
        assert_eq!(&data[8..20], &tx[..]);
        let again = stun::binding_success(&tx, addr);
        assert_eq!(stun::parse_response(&again), Ok((tx, addr)), "our own answer reads back");
    }
    if let Ok(tx) = stun::parse_request(data) {
        assert!(looks);
        assert_eq!(stun::parse_request(&stun::binding_request(&tx)), Ok(tx));
    }
});
