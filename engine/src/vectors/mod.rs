//! Test vectors: generated deterministically from fixed seeds, and checked case by case.
//!
//! `generate()` gives the files of `testvectors/`; `verify_files()` checks every case in such
//! files against this implementation (valid cases must validate and reproduce their bytes,
//! invalid cases must fail with exactly their error code).

mod blobs;
mod check;
mod devices;
mod make;
mod sketch;

pub use check::{CaseFailure, VerifyReport, verify_files};
pub use make::generate;

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{file}: not valid JSON: {reason}")]
    Json { file: String, reason: String },
}

/// Writes the generated files into `dir`.
pub fn write_dir(dir: &Path) -> Result<Vec<String>, VectorError> {
    std::fs::create_dir_all(dir).map_err(|source| VectorError::Io { path: dir.display().to_string(), source })?;
    let mut names = Vec::new();
    for (name, text) in generate() {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| VectorError::Io { path: path.display().to_string(), source })?;
        names.push(name.to_owned());
    }
    Ok(names)
}

/// Reads the vector files from `dir` and verifies them; also reports files that differ from
/// what this implementation generates.
pub fn verify_dir(dir: &Path) -> Result<VerifyReport, VectorError> {
    let mut files = Vec::new();
    for (name, expected) in generate() {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| VectorError::Io { path: path.display().to_string(), source })?;
        files.push((name, text, expected));
    }
    let inputs: Vec<(&str, &str)> = files.iter().map(|(n, t, _)| (*n, t.as_str())).collect();
    let mut report = verify_files(&inputs)?;
    report.differs_from_generated =
        files.iter().filter(|(_, text, expected)| text != expected).map(|(n, _, _)| (*n).to_owned()).collect();
    Ok(report)
}

/// A fixed 32-byte seed for a vector, derived from its label.
pub(crate) fn seed(label: &str) -> [u8; 32] {
    blake3::derive_key("libra testvectors v1 seed", label.as_bytes())
}
