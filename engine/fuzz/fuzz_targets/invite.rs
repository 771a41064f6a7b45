//! Invites as typed, pasted or scanned, in either form (spec/messaging.md, sections 8.1a, 8.2), and control-socket
//! request lines (any local process of the user may write one).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(i) = libra_engine::messenger::Invite::parse(&text) {
        assert!(libra_engine::messenger::Invite::parse(&i.to_text()).is_ok(), "a parsed invite parses again");
    }
    // Either form, as the add-contact paths take it (section 8.1a).
    match libra_engine::short_invite::AnyInvite::parse(&text) {
        Ok(libra_engine::short_invite::AnyInvite::Short(s)) => {
            assert_eq!(libra_engine::short_invite::ShortInvite::parse(&s.to_qr_text()).ok(), Some(s));
        }
        Ok(libra_engine::short_invite::AnyInvite::Full(i)) => assert!(libra_engine::messenger::Invite::parse(&i.to_text()).is_ok()),
        Err(_) => {}
    }
    let _ = libra_engine::control::decode_request(&text);
});
