//! `blobs.json` (spec/blobs.md): a file encrypted into its blob with a fixed key (the blob, its
//! root and its pre-order outboard), `libra/blob/1` requests and a verified response, a bundle
//! carrying a blob (and a forged one), and the file message body.

use bao_tree::io::outboard::PreOrderMemOutboard;
use serde_json::{Value, json};

use crate::blob::{self, BLOCK, FileRef, Request};
use crate::codec::Bytes;
use crate::messaging::{Body, ChatId};

const KEY: [u8; 32] = [0x42; 32];
/// Plaintext sizes: empty, small, and three segments (whose blob has an outboard).
const SIZES: [usize; 3] = [0, 100, 140_000];

/// Byte `i` of the vectors' plaintexts.
fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn encrypt(n: usize) -> (Vec<u8>, PreOrderMemOutboard) {
    let mut blob = Vec::new();
    // Encrypting from memory into memory cannot fail.
    let _ = blob::encrypt_stream(&KEY, n as u64, &plaintext(n)[..], &mut blob);
    let ob = PreOrderMemOutboard::create(&blob, BLOCK);
    (blob, ob)
}

pub(super) fn make() -> Value {
    let mut cases = Vec::new();
    for n in SIZES {
        let (b, ob) = encrypt(n);
        let mut case = json!({
            "id": format!("encrypt-{n}"), "kind": "encrypt", "key": hex::encode(KEY),
            "plaintext": "byte i is i mod 251", "plaintext_len": n, "blob_size": b.len(),
            "root": hex::encode(ob.root.as_bytes()), "outboard": hex::encode(&ob.data),
        });
        if b.len() <= 256 {
            case["blob"] = json!(hex::encode(&b));
        } else {
            case["blob_head"] = json!(hex::encode(&b[..64]));
            case["blob_tail"] = json!(hex::encode(&b[b.len() - 64..]));
        }
        cases.push(case);
    }
    let (b, ob) = encrypt(140_000);
    let root = *ob.root.as_bytes();
    let ok = Request { root, ranges: vec![(0, 16), (128, 137)] };
    cases.push(json!({ "id": "request", "kind": "request", "root": hex::encode(root),
        "ranges": ok.ranges, "encoded": hex::encode(ok.encode()), "valid": true }));
    for (id, ranges) in [("request-unsorted", vec![(16, 32), (0, 16)]), ("request-too-many-chunks", vec![(0, 1040)])] {
        let bad = Request { root, ranges };
        cases.push(json!({ "id": id, "kind": "request", "encoded": hex::encode(bad.encode()), "valid": false }));
    }
    // The last chunk group of the three-segment blob, with the parents on its path.
    let ranges = [(128u64, 137u64)];
    let mut body = Vec::new();
    let set = blob::chunk_ranges_of(&ranges);
    let _ = bao_tree::io::sync::encode_ranges_validated(&b[..], &ob, &set, &mut body);
    cases.push(json!({ "id": "response-last-group", "kind": "response", "blob": "encrypt-140000",
        "root": hex::encode(root), "blob_size": b.len(), "ranges": ranges, "body": hex::encode(&body), "valid": true }));
    let mut bad = body.clone();
    let at = bad.len() - 1;
    bad[at] ^= 1;
    cases.push(json!({ "id": "response-flipped-bit", "kind": "response", "blob": "encrypt-140000",
        "root": hex::encode(root), "blob_size": b.len(), "ranges": ranges, "body": hex::encode(&bad), "valid": false }));
    // A bundle carrying the 100-byte file's blob in one blob section (spec/bundle.md), and the
    // same with one byte of the blob changed and the section's checksum made to match: only
    // the root catches that.
    let (small, small_ob) = encrypt(100);
    let small_root = *small_ob.root.as_bytes();
    for (id, flip) in [("bundle-blob", false), ("bundle-blob-forged", true)] {
        let mut bao = small.clone();
        if flip {
            bao[50] ^= 1;
        }
        let body = crate::bundle::blob_body(&small_root, small.len() as u64, (0, 1), &bao);
        let section = crate::bundle::section(crate::bundle::KIND_BLOB, 1, &body);
        let sum: [u8; 32] = section[section.len() - 32..].try_into().unwrap_or([0; 32]);
        let toc: crate::bundle::Toc = vec![(crate::bundle::KIND_BLOB, 1, Bytes(sum))];
        let toc = crate::bundle::section(crate::bundle::KIND_TOC, 1, &crate::bundle::toc_body(&toc));
        let file = [&crate::bundle::MAGIC[..], &section, &toc].concat();
        cases.push(json!({ "id": id, "kind": "bundle", "root": hex::encode(small_root), "file": hex::encode(file), "valid": !flip }));
    }
    let file = FileRef {
        name: "photo.jpg".into(),
        size: 140_000,
        media_type: "image/jpeg".into(),
        root: Bytes(root),
        key: Bytes(KEY),
    };
    let msg = Body::File { chat: ChatId(Bytes([7; 16])), text: "from the trip".into(), reply_to: None, file };
    cases.push(json!({ "id": "body-file", "kind": "body", "encoded": hex::encode(msg.encode()), "valid": true }));
    let evil = FileRef {
        name: "../../.bashrc".into(),
        size: 1,
        media_type: String::new(),
        root: Bytes(root),
        key: Bytes(KEY),
    };
    let msg = Body::File { chat: ChatId(Bytes([7; 16])), text: String::new(), reply_to: None, file: evil };
    cases.push(
        json!({ "id": "body-file-path-name", "kind": "body", "encoded": hex::encode(msg.encode()), "valid": false }),
    );
    json!({
        "comment": "Libra blob vectors (spec/blobs.md): files encrypted into blobs (64 KiB XChaCha20-Poly1305 segments, key 0x42…), blake3 roots and bao-tree pre-order outboards with 16 KiB chunk groups, libra/blob/1 requests and responses, the file message body. Generated by `libra vectors generate`.",
        "blobs": cases,
    })
}

fn hexs(c: &Value, f: &str) -> Result<Vec<u8>, String> {
    hex::decode(c.get(f).and_then(Value::as_str).ok_or(format!("missing {f}"))?).map_err(|e| format!("{f}: {e}"))
}

fn valid(c: &Value) -> bool {
    c.get("valid").and_then(Value::as_bool).unwrap_or(true)
}

fn pairs(c: &Value) -> Result<Vec<(u64, u64)>, String> {
    serde_json::from_value(c.get("ranges").cloned().unwrap_or_default()).map_err(|e| format!("ranges: {e}"))
}

pub(super) fn check(c: &Value) -> Result<(), String> {
    match c.get("kind").and_then(Value::as_str) {
        Some("encrypt") => {
            let n = c.get("plaintext_len").and_then(Value::as_u64).ok_or("missing plaintext_len")? as usize;
            let key: [u8; 32] = hexs(c, "key")?.try_into().map_err(|_| "key is not 32 bytes")?;
            let mut b = Vec::new();
            blob::encrypt_stream(&key, n as u64, &plaintext(n)[..], &mut b).map_err(|e| e.to_string())?;
            let ob = PreOrderMemOutboard::create(&b, BLOCK);
            let same = |f: &str, got: &[u8]| -> Result<(), String> {
                if c.get(f).is_none() || hexs(c, f)? == got { Ok(()) } else { Err(format!("{f} differs")) }
            };
            same("blob", &b)?;
            same("blob_head", &b[..64.min(b.len())])?;
            same("blob_tail", &b[b.len().saturating_sub(64)..])?;
            same("root", ob.root.as_bytes())?;
            same("outboard", &ob.data)?;
            if c.get("blob_size").and_then(Value::as_u64) != Some(b.len() as u64) {
                return Err("blob_size differs".into());
            }
            let mut back = Vec::new();
            blob::decrypt_stream(&key, n as u64, &b[..], &mut back).map_err(|e| e.to_string())?;
            if back != plaintext(n) { Err("does not decrypt to the plaintext".into()) } else { Ok(()) }
        }
        Some("request") => {
            let bytes = hexs(c, "encoded")?;
            match (Request::decode(&bytes), valid(c)) {
                (Ok(r), true) if r.encode() == bytes && pairs(c)? == r.ranges => Ok(()),
                (Err(_), false) => Ok(()),
                (r, _) => Err(format!("expected valid={}, got {r:?}", valid(c))),
            }
        }
        Some("response") => {
            let root: [u8; 32] = hexs(c, "root")?.try_into().map_err(|_| "root is not 32 bytes")?;
            let size = c.get("blob_size").and_then(Value::as_u64).ok_or("missing blob_size")?;
            let body = hexs(c, "body")?;
            let r = blob::decode_response(&root, size, &pairs(c)?, &body);
            if r.is_ok() == valid(c) { Ok(()) } else { Err(format!("expected valid={}, got {r:?}", valid(c))) }
        }
        Some("bundle") => {
            let r = crate::bundle::parse(&hexs(c, "file")?);
            if r.is_ok() == valid(c) { Ok(()) } else { Err(format!("expected valid={}, got {r:?}", valid(c))) }
        }
        Some("body") => {
            let bytes = hexs(c, "encoded")?;
            match (Body::decode(&bytes), valid(c)) {
                (Ok(b), true) if b.encode() == bytes => Ok(()),
                (Err(_), false) => Ok(()),
                (r, _) => Err(format!("expected valid={}, got {r:?}", valid(c))),
            }
        }
        k => Err(format!("unknown kind {k:?}")),
    }
}
