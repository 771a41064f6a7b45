//! Encryption of a file into its blob: the plaintext in segments of [`SEGMENT`] bytes, each
//! sealed with XChaCha20-Poly1305 under the file's key and a nonce made of the segment's index
//! and a last-segment flag, so segments cannot be reordered, dropped or cut off at a boundary
//! without failing to open. The key is random per file, so fixed nonces never repeat under it.

use std::io::{Read, Write};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::{BlobError, SEGMENT, TAG};

/// Number of segments of a plaintext of `plain` bytes (an empty file is one empty segment).
pub fn segments(plain: u64) -> u64 {
    plain.div_ceil(SEGMENT as u64).max(1)
}

/// Size of the blob of a plaintext of `plain` bytes.
pub fn blob_size(plain: u64) -> u64 {
    plain + segments(plain) * TAG as u64
}

fn nonce(index: u64, last: bool) -> XNonce {
    let mut n = [0u8; 24];
    n[..8].copy_from_slice(&index.to_be_bytes());
    n[8] = u8::from(last);
    XNonce::from(n)
}

/// Seals segment `index` (`last` for the final one).
pub fn seal_segment(key: &[u8; 32], index: u64, last: bool, plain: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    // Encryption of a slice in memory cannot fail.
    cipher.encrypt(&nonce(index, last), plain).unwrap_or_default()
}

/// Opens segment `index`.
pub fn open_segment(key: &[u8; 32], index: u64, last: bool, sealed: &[u8]) -> Result<Vec<u8>, BlobError> {
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    cipher.decrypt(&nonce(index, last), sealed).map_err(|_| BlobError::Decrypt)
}

/// Reads exactly `plain` bytes from `from` and writes their blob to `to`, one segment in
/// memory at a time. A source that ends early or has more bytes is an error.
pub fn encrypt_stream(key: &[u8; 32], plain: u64, mut from: impl Read, mut to: impl Write) -> Result<(), BlobError> {
    let count = segments(plain);
    let mut buf = vec![0u8; SEGMENT];
    let mut read = 0u64;
    for index in 0..count {
        let len = (plain - read).min(SEGMENT as u64) as usize;
        let got = read_full(&mut from, &mut buf[..len])?;
        read += got as u64;
        if got < len {
            return Err(BlobError::Changed { expected: plain, read });
        }
        to.write_all(&seal_segment(key, index, index + 1 == count, &buf[..len]))?;
    }
    if from.read(&mut buf[..1])? != 0 {
        return Err(BlobError::Changed { expected: plain, read: read + 1 });
    }
    to.flush()?;
    Ok(())
}

/// Reads the blob of a `plain`-byte file from `from` and writes the plaintext to `to`.
pub fn decrypt_stream(key: &[u8; 32], plain: u64, mut from: impl Read, mut to: impl Write) -> Result<(), BlobError> {
    let count = segments(plain);
    let mut buf = vec![0u8; SEGMENT + TAG];
    let mut done = 0u64;
    for index in 0..count {
        let len = (plain - done).min(SEGMENT as u64) as usize + TAG;
        if read_full(&mut from, &mut buf[..len])? < len {
            return Err(BlobError::Decrypt);
        }
        let opened = open_segment(key, index, index + 1 == count, &buf[..len])?;
        done += opened.len() as u64;
        to.write_all(&opened)?;
    }
    to.flush()?;
    Ok(())
}

fn read_full(from: &mut impl Read, buf: &mut [u8]) -> Result<usize, BlobError> {
    let mut at = 0;
    while at < buf.len() {
        match from.read(&mut buf[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_segment_boundaries() {
        let key = [7u8; 32];
        for n in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 5] {
            let plain: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let mut blob = Vec::new();
            encrypt_stream(&key, n as u64, &plain[..], &mut blob).expect("encrypt");
            assert_eq!(blob.len() as u64, blob_size(n as u64));
            let mut back = Vec::new();
            decrypt_stream(&key, n as u64, &blob[..], &mut back).expect("decrypt");
            assert_eq!(back, plain);
        }
    }

    #[test]
    fn damage_truncation_and_a_wrong_key_fail() {
        let key = [7u8; 32];
        let plain = vec![1u8; 2 * SEGMENT + 10];
        let mut blob = Vec::new();
        encrypt_stream(&key, plain.len() as u64, &plain[..], &mut blob).expect("encrypt");
        let mut out = Vec::new();
        assert!(decrypt_stream(&[8; 32], plain.len() as u64, &blob[..], &mut out).is_err());
        let mut bad = blob.clone();
        bad[SEGMENT + 100] ^= 1;
        assert!(decrypt_stream(&key, plain.len() as u64, &bad[..], &mut Vec::new()).is_err());
        // Cut after two whole segments and claimed to be that long: the second is not marked last.
        let cut = &blob[..2 * (SEGMENT + TAG)];
        assert!(decrypt_stream(&key, 2 * SEGMENT as u64, cut, &mut Vec::new()).is_err());
        // A source shorter or longer than announced.
        assert!(encrypt_stream(&key, 10, &plain[..5], &mut Vec::new()).is_err());
        assert!(encrypt_stream(&key, 10, &plain[..11], &mut Vec::new()).is_err());
    }
}
