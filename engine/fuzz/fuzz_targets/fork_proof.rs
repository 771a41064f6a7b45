#![no_main]
use libfuzzer_sys::fuzz_target;
use libra_engine::log::ForkProof;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ForkProof::decode(data) {
        let _ = p.verify();
    }
});
