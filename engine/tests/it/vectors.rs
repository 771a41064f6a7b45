//! The committed vectors are exactly what the code generates, and every case verifies.

use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testvectors")
}

#[test]
fn committed_vectors_match_generation() {
    for (name, text) in libra_engine::vectors::generate() {
        let committed = std::fs::read_to_string(dir().join(name)).expect("committed vector file");
        assert!(committed == text, "testvectors/{name} differs from `libra vectors generate`; regenerate and review");
    }
}

#[test]
fn every_case_verifies() {
    let report = libra_engine::vectors::verify_dir(&dir()).expect("read vectors");
    assert!(report.ok(), "failures: {:?}, differing: {:?}", report.failures, report.differs_from_generated);
    assert!(report.cases >= 30, "only {} cases", report.cases);
}

#[test]
fn a_tampered_vector_is_caught() {
    let files = libra_engine::vectors::generate();
    let (name, text) = files.iter().find(|(n, _)| *n == "chains.json").expect("chains.json");
    // Claim the truncated entry fails for a different reason.
    let tampered = text.replacen("\"error\": \"malformed\"", "\"error\": \"bad_signature\"", 1);
    assert_ne!(&tampered, text);
    let report = libra_engine::vectors::verify_files(&[(name, &tampered)]).expect("parses");
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
}
