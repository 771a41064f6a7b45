//! Our primitives against their published vectors: RFC 8032 (ed25519), the BLAKE3 team's
//! test_vectors.json, and draft-irtf-cfrg-xchacha-03 A.3.1 (XChaCha20-Poly1305).

use serde_json::Value;

fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("json")
}

fn hx(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().expect(k)).expect("hex")
}

#[test]
fn rfc8032_ed25519() {
    use ed25519_dalek::{Signer, SigningKey};
    let doc = load("rfc8032_ed25519.json");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 4);
    for c in cases {
        let sk = SigningKey::from_bytes(&hx(c, "secret_key").try_into().expect("32"));
        assert_eq!(sk.verifying_key().to_bytes().to_vec(), hx(c, "public_key"), "{}", c["name"]);
        let sig = sk.sign(&hx(c, "message"));
        assert_eq!(sig.to_bytes().to_vec(), hx(c, "signature"), "{}", c["name"]);
        assert!(sk.verifying_key().verify_strict(&hx(c, "message"), &sig).is_ok());
    }
}

#[test]
fn blake3_official() {
    let doc = load("blake3_test_vectors.json");
    let key: [u8; 32] = doc["key"].as_str().expect("key").as_bytes().try_into().expect("32");
    let context = doc["context_string"].as_str().expect("context");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 35);
    for c in cases {
        let len = c["input_len"].as_u64().expect("len") as usize;
        let input: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let expect = |k: &str| hx(c, k);
        // The vectors give extended output; the first 32 bytes are the default-length hash.
        let mut out = vec![0u8; expect("hash").len()];
        blake3::Hasher::new().update(&input).finalize_xof().fill(&mut out);
        assert_eq!(out, expect("hash"), "hash len {len}");
        blake3::Hasher::new_keyed(&key).update(&input).finalize_xof().fill(&mut out);
        assert_eq!(out, expect("keyed_hash"), "keyed len {len}");
        blake3::Hasher::new_derive_key(context).update(&input).finalize_xof().fill(&mut out);
        assert_eq!(out, expect("derive_key"), "derive len {len}");
    }
}

#[test]
fn xchacha20poly1305_draft() {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    let doc = load("xchacha20poly1305.json");
    for c in doc["cases"].as_array().expect("cases") {
        let key: [u8; 32] = hx(c, "key").try_into().expect("32");
        let nonce_bytes: [u8; 24] = hx(c, "nonce").try_into().expect("24");
        let cipher = XChaCha20Poly1305::new(&key.into());
        let nonce = XNonce::from(nonce_bytes);
        let (pt, aad) = (hx(c, "plaintext"), hx(c, "aad"));
        let sealed = cipher.encrypt(&nonce, Payload { msg: &pt, aad: &aad }).expect("encrypt");
        assert_eq!(sealed, [hx(c, "ciphertext"), hx(c, "tag")].concat());
        assert_eq!(cipher.decrypt(&nonce, Payload { msg: &sealed, aad: &aad }).expect("decrypt"), pt);
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert!(cipher.decrypt(&nonce, Payload { msg: &bad, aad: &aad }).is_err());
    }
}
