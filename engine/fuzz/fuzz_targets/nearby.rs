//! Nearby announcements: any datagram on the local network reaches this decoder while the user
//! is visible nearby, and the invite inside is checked like any invite.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = libra_engine::nearby::Announcement::decode(data) {
        assert_eq!(a.encode(), data, "a decoded announcement re-encodes to the same bytes");
        assert!(data.len() <= libra_engine::nearby::MAX_ANNOUNCEMENT);
        if let Ok(inv) = a.invite_from(std::net::SocketAddr::from(([10, 0, 0, 1], 7444))) {
            assert!(inv.token.is_some() && !inv.card.certs.is_empty());
        }
    }
});
