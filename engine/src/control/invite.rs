//! `invite`, `invite list`, `invite revoke`: the invites this node handed out.

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::{Cx, InviteCommand, Out, render};
use crate::clock;

pub fn invite(cx: &Cx, out: &mut Out, cmd: &InviteCommand) -> Result<u8> {
    match cmd {
        InviteCommand::Make { with_address, uses } => make(cx, out, with_address.as_deref(), *uses),
        InviteCommand::List => list(cx, out),
        InviteCommand::Revoke { id } => revoke(cx, out, id.as_deref()),
    }
}

fn make(cx: &Cx, out: &mut Out, address: Option<&str>, uses: u32) -> Result<u8> {
    if let Some(a) = address {
        crate::net::check_address(a)?;
    }
    let (inv, short) = cx.write(|n| Ok(n.invite_both(address.map(str::to_owned), uses)?))?;
    let text = inv.to_text();
    let id = inv.token.map(|t| crate::store::invite_id(&t.0)).unwrap_or_default();
    let v = json!({
        "invite": text,
        // The same invite for QR codes: the device and the token only; it completes once the
        // holder reaches this device (spec/messaging.md, section 8.1a).
        "short": short.to_text(),
        "id": id,
        "uses": uses,
        "expires": render::time(clock::wall_ms().saturating_add(crate::messenger::INVITE_VALIDITY_MS)),
        "name": inv.card.name,
        "user_id": inv.user().to_string(),
        "devices": inv.card.certs.len(),
        "address": inv.address,
    });
    out.set(&v, || format!("{text}\n"));
    Ok(0)
}

fn list(cx: &Cx, out: &mut Out) -> Result<u8> {
    let rows: Vec<Value> = cx.read(|n| {
        Ok(n.store
            .open_invites(clock::wall_ms())?
            .iter()
            .map(|(id, r)| {
                json!({
                    "id": id,
                    "uses_left": r.uses_left,
                    "created": (r.created_ms > 0).then(|| render::time(r.created_ms)),
                    "expires": render::time(r.expires_ms),
                })
            })
            .collect())
    })?;
    out.set(&json!(rows), || {
        if rows.is_empty() {
            return "no open invites\n".into();
        }
        rows.iter()
            .map(|r| {
                format!(
                    "{}  {} use{} left  expires {}\n",
                    r["id"].as_str().unwrap_or(""),
                    r["uses_left"],
                    if r["uses_left"] == 1 { "" } else { "s" },
                    render::local(r["expires"].as_str().unwrap_or(""))
                )
            })
            .collect()
    });
    Ok(0)
}

fn revoke(cx: &Cx, out: &mut Out, id: Option<&str>) -> Result<u8> {
    if let Some(p) = id
        && (p.len() < 4 || !p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        bail!("'{}' is not an invite id (at least 4 hex digits, as `libra invite list` shows)", p.escape_debug());
    }
    let prefix = id.map(str::to_ascii_lowercase);
    let gone = cx.write(|n| Ok(n.store.revoke_invites(prefix.as_deref(), clock::wall_ms())?))?;
    if let Some(p) = id
        && gone.is_empty()
    {
        bail!("no open invite with id {p} (`libra invite list` shows them)");
    }
    out.set(&json!({ "revoked": gone }), || match gone.len() {
        0 => "no open invites to revoke\n".into(),
        _ => gone.iter().map(|g| format!("revoked {g}\n")).collect(),
    });
    Ok(0)
}
