//! Bundle files: anyone can hand over a file; its sections, entries and table of contents are
//! decoded here (import reads the same format section by section).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = libra_engine::bundle::parse(data) {
        for e in entries {
            let _ = libra_engine::log::validate_next(None, &e);
        }
    }
});
