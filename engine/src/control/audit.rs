//! `audit chat`: the verified history of a chat, each message with where it comes from — the
//! author's user and device, the entry's position in the device's log, its id, whether its
//! signature verifies now, and whether that device was caught equivocating.

use anyhow::Result;
use serde_json::{Value, json};

use super::{Cx, Out, render};
use crate::codec::Bytes;
use crate::identity::DeviceId;
use crate::text::for_terminal;

pub fn chat(cx: &Cx, out: &mut Out, chat: &str) -> Result<u8> {
    let (title, rows) = cx.read(|n| {
        let t = n.chat(chat)?;
        let forked: Vec<[u8; 32]> = n.store.forks()?.into_iter().map(|(a, _)| a).collect();
        let names = n.distinct_names();
        let mut rows = Vec::new();
        for m in n.store.messages(&t.chat, usize::MAX)? {
            let entry = n.store.get(&m.id)?;
            let (seq, signature) = match &entry {
                Some(e) => (Some(e.header().seq), crate::log::verify_signature(e).is_ok()),
                None => (None, false),
            };
            let device = m.device;
            rows.push(json!({
                "id": m.id.to_hex(),
                "time": render::time(crate::clock::physical_ms(m.timestamp)),
                "from": m.user.map(|u| names.get(&u).cloned().unwrap_or_else(|| n.display_name(&u))),
                "user_id": m.user.map(|u| u.to_string()),
                "device": device.to_string(),
                "seq": seq,
                "signature_verified": signature,
                "forked_author": forked.contains(device.as_bytes()),
                "text": m.text,
                "deleted": m.deleted,
                "undecryptable": m.undecryptable,
            }));
        }
        Ok((t.title, rows))
    })?;
    let all_good = rows.iter().all(|r| r["signature_verified"] == true && r["forked_author"] == false);
    let v = json!({ "chat": title, "verified": all_good, "messages": rows });
    out.set(&v, || {
        let mut s = format!("chat {}\n", for_terminal(&title));
        for r in &rows {
            s += &format!(
                "{}  {}  {} seq {}  {}  {}{}  {}\n",
                render::local(r["time"].as_str().unwrap_or("")),
                for_terminal(r["from"].as_str().unwrap_or("unknown")),
                short_device(&r["device"]),
                r["seq"],
                &r["id"].as_str().unwrap_or("")[..16],
                if r["signature_verified"] == true { "signature ok" } else { "SIGNATURE NOT VERIFIED" },
                if r["forked_author"] == true { ", AUTHOR EQUIVOCATED" } else { "" },
                for_terminal(r["text"].as_str().unwrap_or(if r["deleted"] == true {
                    "[deleted]"
                } else {
                    "[could not be decrypted]"
                })),
            );
        }
        s += if all_good {
            "verified: every message's signature checks, no author equivocated\n"
        } else {
            "NOT VERIFIED\n"
        };
        s
    });
    Ok(if all_good { 0 } else { 1 })
}

fn short_device(v: &Value) -> String {
    v.as_str()
        .and_then(|t| crate::text::decode_id(t).ok())
        .map_or_else(String::new, |(_, k)| DeviceId(Bytes(k)).short())
}
