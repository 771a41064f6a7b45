//! The key file (spec/identity.md, section 8): read at every start, and it may be damaged on
//! disk or handed over from elsewhere. Nothing may panic, and what reads writes back to a text
//! that reads the same.
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use libra_engine::keyfile::{from_text, to_json};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(secrets) = from_text(text, Path::new("keys.json")) {
        let written = to_json(&secrets).expect("a key file read is written again");
        let again = from_text(&written, Path::new("keys.json")).expect("what we write reads back");
        assert_eq!(to_json(&again).expect("written"), written, "reading and writing is stable");
    }
});
