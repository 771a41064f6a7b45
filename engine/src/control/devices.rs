//! `device list|link|revoke|phrase|rotate`: this user's devices (spec/devices.md).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{Cx, DeviceCommand, Out, render};
use crate::devices::DeviceInfo;
use crate::identity::DeviceId;
use crate::text::for_terminal;

/// Who a provenance entry names: the user key, or a device (by name where we know it).
fn who(id: Option<&DeviceId>, all: &[DeviceInfo]) -> Value {
    let label = match id {
        None => "the user key".to_owned(),
        Some(d) => match all.iter().find(|x| x.device == *d) {
            Some(x) => format!("{} ({})", x.name, d.short()),
            None => d.short(),
        },
    };
    json!({ "device_id": id.map(ToString::to_string), "label": label })
}

fn info_json(d: &DeviceInfo, all: &[DeviceInfo]) -> Value {
    json!({
        "added_by": d.added_by.iter().map(|a| who(a.as_ref(), all)).collect::<Vec<_>>(),
        "revoked_by": d.revoked_by.iter().map(|a| who(Some(a), all)).collect::<Vec<_>>(),
        "revoked_at": d.revoked_ms.map(render::time),
        "device_id": d.device.to_string(),
        "short": d.device.short(),
        "name": d.name,
        "added": render::time(d.added_ms),
        "this_device": d.this_device,
        "revoked": d.revoked,
        "revoked_after_seq": d.revoked_after,
        "seq": d.seq,
        "key_rotated": d.rotated,
    })
}

fn info_line(r: &Value) -> String {
    let state = if r["revoked"] == true {
        match r["revoked_after_seq"].as_u64() {
            Some(n) => format!("REVOKED (entries after {n} refused)"),
            None => "REVOKED".into(),
        }
    } else if r["this_device"] == true {
        "this device".into()
    } else {
        "trusted".into()
    };
    let labels = |k: &str| -> String {
        r[k].as_array()
            .map(|a| a.iter().filter_map(|w| w["label"].as_str()).map(for_terminal).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let mut line = format!(
        "{:<20} {}  added {}  {} entries  {}\n",
        for_terminal(r["name"].as_str().unwrap_or("")),
        r["short"].as_str().unwrap_or(""),
        render::local(r["added"].as_str().unwrap_or("")),
        r["seq"],
        state
    );
    let by = labels("added_by");
    if !by.is_empty() {
        line += &format!("{:<20} added by {by}\n", "");
    }
    let by = labels("revoked_by");
    if !by.is_empty() {
        let at = r["revoked_at"].as_str().map(render::local).unwrap_or_default();
        line += &format!("{:<20} revoked by {by} at {at}\n", "");
    }
    line
}

/// A device of ours named by its id, its short id (`ld:…`, dashes optional) or its name.
fn pick(devices: &[DeviceInfo], who: &str) -> Result<DeviceId> {
    if let Ok(d) = DeviceId::parse(who) {
        return Ok(d);
    }
    let q = who.trim().to_ascii_lowercase();
    let short = q.strip_prefix("ld:").map(|s| s.replace('-', ""));
    let hits: Vec<&DeviceInfo> = devices
        .iter()
        .filter(|d| match &short {
            Some(s) => s.len() >= 4 && d.device.to_string()[2..].starts_with(s.as_str()),
            None => d.name.to_lowercase() == q,
        })
        .collect();
    match hits[..] {
        [one] => Ok(one.device),
        [] => bail!("no device of yours is '{}' (see `libra device list`)", for_terminal(who)),
        _ => bail!(
            "'{}' names several devices: {}; give the short id",
            for_terminal(who),
            hits.iter().map(|d| d.device.short()).collect::<Vec<_>>().join(", ")
        ),
    }
}

pub fn run(cx: &Cx, out: &mut Out, cmd: &DeviceCommand) -> Result<u8> {
    match cmd {
        DeviceCommand::List { of } => {
            let rows: Vec<Value> = cx.read(|n| {
                let user = match of {
                    Some(c) => Some(n.contact(c)?),
                    None => None,
                };
                {
                    let all = n.devices(user.as_ref())?;
                    Ok(all.iter().map(|d| info_json(d, &all)).collect())
                }
            })?;
            out.set(&json!(rows), || {
                if rows.is_empty() {
                    return "no devices known\n".into();
                }
                rows.iter().map(info_line).collect()
            });
        }
        DeviceCommand::Link { addresses } => {
            let host = cx.host.clone().context(
                "linking needs a running node to answer the new device: start `libra serve` (or the app) first",
            )?;
            let addresses = if addresses.is_empty() { host.own_addresses()? } else { addresses.clone() };
            let code = cx.engine.open_link(addresses)?;
            let text = code.to_text();
            out.set(
                &json!({ "code": text, "expires": render::time(code.expires_ms), "addresses": code.addresses }),
                || {
                    format!(
                        "On the new device run:\n\n  libra init --link {text}\n\nor scan the QR code in its app. The code works once, until {}, and only while this node runs. Anyone who sees it can join your identity: show it to your own device only.\n",
                        render::local(&render::time(code.expires_ms))
                    )
                },
            );
        }
        DeviceCommand::Revoke { device, reason, phrase } => {
            let secret = phrase.as_deref().map(crate::phrase::decode).transpose()?;
            let (target, entry, rotated) = cx.write(|n| {
                let target = pick(&n.devices(None)?, device)?;
                let entry = n.revoke_device(&target, reason, secret.as_ref())?;
                let rotated = n.devices(None)?.iter().any(|d| d.this_device && d.rotated);
                Ok((target, entry, rotated))
            })?;
            out.set(
                &json!({ "revoked": target.to_string(), "short": target.short(), "entry": hex::encode(entry.id.as_bytes()), "rotated": rotated }),
                || {
                    format!(
                        "revoked {}: its entries after this point are refused by every peer that receives the revocation, and it gets no keys for later messages. This device's agreement key was rotated.\n",
                        target.short()
                    )
                },
            );
        }
        DeviceCommand::Phrase => {
            let phrase = cx.read(|n| Ok(n.recovery_phrase()?))?;
            out.set(&json!({ "phrase": phrase }), || {
                format!(
                    "{phrase}\n\nWhoever has this phrase owns your identity: it restores it on a new device (`libra init --restore`) and can revoke any device. Keep it on paper, offline.\n"
                )
            });
        }
        DeviceCommand::Rotate => {
            let entry = cx.write(|n| Ok(n.rotate_agreement()?))?;
            out.set(&json!({ "entry": hex::encode(entry.id.as_bytes()) }), || {
                "published a fresh agreement key; later messages to this device are sealed to it\n".into()
            });
        }
    }
    Ok(0)
}
