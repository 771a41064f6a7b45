//! Vectors of the first-contact sketch (spec/sync.md 6.12 and 8.10): log keys with their index
//! seed, tag weight and symbol indices; the symbols and tug-of-war counters of a fixed set; a
//! decode of one set's symbols against another; and the four messages, valid and not.

use serde_json::{Value, json};

use super::seed;
use crate::codec::Bytes;
use crate::log::EntryId;
use crate::sync::sketch::{self, Cell, Decoder, Indices};
use crate::sync::{HeadItem, HeadSet, Message, SyncError};

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn items(label: &str, n: usize) -> Vec<HeadItem> {
    (0..n)
        .map(|i| HeadItem {
            author: seed(&format!("{label} author {i}")),
            seq: 1 + (i as u64 % 3),
            id: EntryId(Bytes(seed(&format!("{label} id {i}")))),
        })
        .collect()
}

fn item_json(i: &HeadItem) -> Value {
    json!({ "author": h(&i.author), "seq": i.seq, "id": i.id.to_hex() })
}

fn parse_items(c: &Value, field: &str) -> Result<Vec<HeadItem>, String> {
    let list = c.get(field).and_then(Value::as_array).ok_or_else(|| format!("missing {field}"))?;
    list.iter()
        .map(|v| {
            let hx = |f: &str| -> Result<[u8; 32], String> {
                let b = hex::decode(v.get(f).and_then(Value::as_str).ok_or(f)?).map_err(|e| e.to_string())?;
                b.try_into().map_err(|_| format!("{f} is not 32 bytes"))
            };
            Ok(HeadItem {
                author: hx("author")?,
                seq: v.get("seq").and_then(Value::as_u64).ok_or("seq")?,
                id: EntryId(Bytes(hx("id")?)),
            })
        })
        .collect()
}

fn cells_hex(cells: &[Cell]) -> String {
    h(&sketch::cells_to_bytes(cells))
}

/// Indices of a key below this bound are listed.
const INDICES_BELOW: u64 = 1_000;

fn key_case(id: &str, i: &HeadItem) -> Value {
    let k = sketch::key_of_item(i);
    json!({
        "id": id,
        "kind": "key",
        "item": item_json(i),
        "item_hash": h(&i.hash()),
        "author_bits": format!("{:015x}", k.a),
        "tag": k.tag,
        "weight": format!("{:016x}", sketch::weight(k.tag)),
        "index_seed": format!("{:016x}", sketch::index_seed(k.a)),
        "indices": Indices::of(k.a).take_while(|x| *x < INDICES_BELOW).collect::<Vec<_>>(),
    })
}

fn peeled_json(dec: &Decoder) -> Vec<Value> {
    let mut p = dec.peeled().to_vec();
    p.sort();
    p.iter()
        .map(|p| json!({ "author_bits": format!("{:015x}", p.a), "opener_tag": p.ours, "answerer_tag": p.theirs }))
        .collect()
}

pub(super) fn make() -> Vec<Value> {
    let set = items("sketch set", 24);
    let heads = HeadSet::from_items(set.clone());
    let (a, b) = heads.span(&None, &None);
    let tow = sketch::tow(&heads);
    let common = items("sketch common", 40);
    let mut moved = common[7];
    moved.seq += 1;
    moved.id = EntryId(Bytes(seed("sketch moved head")));
    let opener: Vec<HeadItem> = common.iter().copied().chain(items("sketch opener only", 3)).collect();
    let answerer: Vec<HeadItem> = common
        .iter()
        .map(|c| if c.author == moved.author { moved } else { *c })
        .chain(items("sketch answerer only", 4))
        .collect();
    let (ho, ha) = (HeadSet::from_items(opener.clone()), HeadSet::from_items(answerer.clone()));
    let m = 24;
    let theirs = sketch::encode(&sketch::keys(&ha), 0, m);
    let mut dec = Decoder::new();
    let _ = dec.add(&theirs, &sketch::keys(&ho));
    assert!(dec.is_complete(), "the decode vector peels within {m} symbols");
    let sketch_msg = Message::Sketch { fp: heads.fingerprint(a, b), tow: Box::new(tow) };
    let symbols_msg = Message::Symbols { from: 5, cells: sketch::encode(&sketch::keys(&heads), 5, 9) };
    let resolve = Message::Resolve { lack: vec![1 << 40, 2 << 40], heads: vec![(3 << 40, 5, 77), (4 << 40, 1, 9)] };
    let message = |id: &str, bytes: Vec<u8>, error: Option<&str>| match error {
        None => json!({ "id": id, "kind": "message", "message": h(&bytes), "result": "valid" }),
        Some(e) => json!({ "id": id, "kind": "message", "message": h(&bytes), "result": "invalid", "error": e }),
    };
    vec![
        key_case("sketch-key-0", &set[0]),
        key_case("sketch-key-1", &set[1]),
        json!({
            "id": "sketch-symbols",
            "kind": "symbols",
            "items": set.iter().map(item_json).collect::<Vec<_>>(),
            "from": 0,
            "to": 16,
            "cells": cells_hex(&sketch::encode(&sketch::keys(&heads), 0, 16)),
        }),
        json!({
            "id": "sketch-tow",
            "kind": "tow",
            "items": set.iter().map(item_json).collect::<Vec<_>>(),
            "counters": tow.to_vec(),
            "message": h(&sketch_msg.encode()),
        }),
        json!({
            "id": "sketch-decode",
            "kind": "decode",
            "opener": opener.iter().map(item_json).collect::<Vec<_>>(),
            "answerer": answerer.iter().map(item_json).collect::<Vec<_>>(),
            "symbols": cells_hex(&theirs),
            "peeled": peeled_json(&dec),
        }),
        message("sketch-message-symbols", symbols_msg.encode(), None),
        message("sketch-message-more", Message::More { upto: 300 }.encode(), None),
        message("sketch-message-resolve", resolve.encode(), None),
        message(
            "sketch-tow-short",
            crate::codec::encode_tagged(10, &(Bytes([0u8; 16]), crate::codec::Blob(vec![0; 382]))),
            Some("malformed"),
        ),
        message(
            "sketch-cells-partial",
            crate::codec::encode_tagged(11, &(0u32, crate::codec::Blob(vec![0; 30]))),
            Some("malformed"),
        ),
        message(
            "sketch-cell-not-canonical",
            crate::codec::encode_tagged(
                11,
                &(0u32, crate::codec::Blob([&sketch::P.to_le_bytes()[..], &[0; 12]].concat())),
            ),
            Some("malformed"),
        ),
        message(
            "sketch-cells-past-limit",
            crate::codec::encode_tagged(11, &(65_535u32, crate::codec::Blob(vec![0; 40]))),
            Some("limit"),
        ),
        message("sketch-more-past-limit", crate::codec::encode_tagged(12, &65_537u32), Some("limit")),
        message(
            "sketch-resolve-author-bits",
            crate::codec::encode_tagged(13, &(vec![1u64 << 60], Vec::<(u64, u64, u32)>::new())),
            Some("malformed"),
        ),
        message(
            "sketch-resolve-unsorted",
            crate::codec::encode_tagged(13, &(vec![2u64 << 40, 1 << 40], Vec::<(u64, u64, u32)>::new())),
            Some("malformed"),
        ),
    ]
}

/// Compares by debug form: the values differ in type (a computed one against one read).
fn eq(what: &str, got: impl std::fmt::Debug, want: impl std::fmt::Debug) -> Result<(), String> {
    if format!("{got:?}") == format!("{want:?}") {
        Ok(())
    } else {
        Err(format!("{what} differs: {got:?} against {want:?}"))
    }
}

fn field<'a>(c: &'a Value, f: &str) -> Result<&'a str, String> {
    c.get(f).and_then(Value::as_str).ok_or_else(|| format!("missing {f}"))
}

pub(super) fn check(c: &Value) -> Result<(), String> {
    match c.get("kind").and_then(Value::as_str) {
        Some("key") => {
            let i = parse_items(&json!({ "x": [c.get("item").cloned().unwrap_or_default()] }), "x")?[0];
            let k = sketch::key_of_item(&i);
            eq("item hash", h(&i.hash()), field(c, "item_hash")?)?;
            eq("author bits", format!("{:015x}", k.a), field(c, "author_bits")?)?;
            eq("tag", u64::from(k.tag), c.get("tag").and_then(Value::as_u64).ok_or("tag")?)?;
            eq("weight", format!("{:016x}", sketch::weight(k.tag)), field(c, "weight")?)?;
            eq("index seed", format!("{:016x}", sketch::index_seed(k.a)), field(c, "index_seed")?)?;
            let want: Vec<u64> =
                c.get("indices").and_then(Value::as_array).ok_or("indices")?.iter().filter_map(Value::as_u64).collect();
            eq("indices", Indices::of(k.a).take_while(|x| *x < INDICES_BELOW).collect::<Vec<_>>(), want)
        }
        Some("symbols") => {
            let heads = HeadSet::from_items(parse_items(c, "items")?);
            let (from, to) = (
                c.get("from").and_then(Value::as_u64).ok_or("from")?,
                c.get("to").and_then(Value::as_u64).ok_or("to")?,
            );
            eq(
                "cells",
                cells_hex(&sketch::encode(&sketch::keys(&heads), from as usize, to as usize)),
                field(c, "cells")?,
            )
        }
        Some("tow") => {
            let heads = HeadSet::from_items(parse_items(c, "items")?);
            let want: Vec<i64> = c
                .get("counters")
                .and_then(Value::as_array)
                .ok_or("counters")?
                .iter()
                .filter_map(Value::as_i64)
                .collect();
            let tow = sketch::tow(&heads);
            eq("counters", tow.iter().map(|x| i64::from(*x)).collect::<Vec<_>>(), want)?;
            let (a, b) = heads.span(&None, &None);
            eq(
                "message",
                h(&Message::Sketch { fp: heads.fingerprint(a, b), tow: Box::new(tow) }.encode()),
                field(c, "message")?,
            )
        }
        Some("decode") => {
            let (o, a) =
                (HeadSet::from_items(parse_items(c, "opener")?), HeadSet::from_items(parse_items(c, "answerer")?));
            let bytes = hex::decode(field(c, "symbols")?).map_err(|e| e.to_string())?;
            let m = bytes.len() / sketch::CELL_LEN;
            let theirs = sketch::encode(&sketch::keys(&a), 0, m);
            eq("symbols", cells_hex(&theirs), field(c, "symbols")?)?;
            let mut dec = Decoder::new();
            dec.add(&theirs, &sketch::keys(&o)).map_err(|e| format!("{e:?}"))?;
            if !dec.is_complete() {
                return Err("the symbols do not peel".into());
            }
            eq("peeled", Value::Array(peeled_json(&dec)), c.get("peeled").cloned().unwrap_or_default())
        }
        Some("message") => {
            let bytes = hex::decode(field(c, "message")?).map_err(|e| e.to_string())?;
            let outcome = match Message::decode(&bytes) {
                Ok(
                    m @ (Message::Sketch { .. }
                    | Message::Symbols { .. }
                    | Message::More { .. }
                    | Message::Resolve { .. }),
                ) => {
                    if m.encode() == bytes {
                        Ok(())
                    } else {
                        Err("re-encodes differently".to_owned())
                    }
                }
                Ok(_) => Err("not a sketch message".to_owned()),
                Err(SyncError::Malformed(_)) => Err("malformed".to_owned()),
                Err(SyncError::LimitExceeded(_)) => Err("limit".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            super::check::expect(c, outcome)
        }
        other => Err(format!("unknown sketch case kind {other:?}")),
    }
}
