//! Contact commands: add, list, rename, verify (safety numbers), accept.

use anyhow::Result;
use serde_json::{Value, json};

use crate::contacts::ContactView;
use crate::short_invite::{AnyInvite, ShortInvite};
use crate::text::for_terminal;

use super::{ContactCommand, Cx, Out};

fn view_json(c: &ContactView) -> Value {
    json!({
        "name": c.name,
        "user_id": c.user.to_string(),
        "short": c.user.short(),
        "devices": c.devices,
        "verified": c.state.verified,
        "new": c.state.introduced,
        "blocked": c.state.blocked,
    })
}

fn status(r: &Value) -> &'static str {
    if r["blocked"] == true {
        return "blocked (`libra contact unblock`)";
    }
    match (r["verified"] == true, r["new"] == true) {
        (_, true) => "new: introduced itself with your invite (`libra contact accept`)",
        (true, false) => "verified",
        (false, false) => "unverified",
    }
}

/// A short invite: its device is dialled and looked for; the contact is added when it answers.
fn add_short(cx: &Cx, out: &mut Out, short: &ShortInvite, named: bool) -> Result<u8> {
    if named {
        anyhow::bail!(
            "a short invite carries no name to replace; add it, then `libra contact rename` once the contact is added"
        );
    }
    let device = cx.write(|n| Ok(n.add_short_invite(short)?))?;
    let v = json!({ "awaiting": device.to_string(), "short": device.short(), "address": short.address });
    out.set(&v, || {
        let where_ = match &short.address {
            Some(a) => format!("at {}", for_terminal(a)),
            None => "on this network".into(),
        };
        format!(
            "waiting for device {}: the contact is added when Libra reaches it ({where_}) and it answers; keep `libra serve` or the app running\n",
            device.short()
        )
    });
    Ok(0)
}

pub fn contact(cx: &Cx, out: &mut Out, cmd: &ContactCommand) -> Result<u8> {
    match cmd {
        ContactCommand::Add { invite, name } => {
            let inv = match AnyInvite::parse(invite)? {
                AnyInvite::Full(inv) => inv,
                AnyInvite::Short(short) => return add_short(cx, out, &short, name.is_some()),
            };
            let shown = name.clone().unwrap_or(inv.card.name.clone());
            let (user, same_name) = cx.write(|n| {
                let user = n.add_contact(&inv, name.as_deref())?;
                let same: Vec<String> = n
                    .contact_views()?
                    .iter()
                    .filter(|c| c.user != user && c.name.to_lowercase() == shown.to_lowercase())
                    .map(ContactView::describe)
                    .collect();
                Ok((user, same))
            })?;
            let v = json!({ "added": user.to_string(), "user_id": user.to_string(), "short": user.short(), "name": shown, "devices": inv.card.certs.len(), "same_name": same_name });
            out.set(&v, || {
                let mut s = format!("added {} ({})\n", for_terminal(&shown), user.short());
                if !same_name.is_empty() {
                    s += &format!(
                        "WARNING: another contact has this name: {}. Address them by short id, give one a name of your own (`libra contact rename`), and compare safety numbers (`libra contact verify`).\n",
                        for_terminal(&same_name.join("; "))
                    );
                }
                s
            });
        }
        ContactCommand::List => {
            let (rows, awaiting): (Vec<Value>, Vec<String>) = cx.read(|n| {
                let rows = n.contact_views()?.iter().map(view_json).collect();
                Ok((rows, n.awaiting_cards()?.iter().map(|d| d.short()).collect()))
            })?;
            out.set(&json!(rows), || {
                let mut s: String = rows
                    .iter()
                    .map(|r| {
                        format!(
                            "{:<16} {}  {} device(s)  {}\n",
                            for_terminal(r["name"].as_str().unwrap_or("")),
                            r["short"].as_str().unwrap_or(""),
                            r["devices"],
                            status(r)
                        )
                    })
                    .collect();
                for d in &awaiting {
                    s += &format!("(waiting)        device {d}  from a short invite: added once Libra reaches it\n");
                }
                if s.is_empty() {
                    s = "no contacts yet: `libra contact add INVITE`\n".into();
                }
                s
            });
        }
        ContactCommand::Rename { contact, name } => {
            let user = cx.write(|n| {
                let u = n.contact(contact)?;
                n.rename_contact(&u, name)?;
                Ok(u)
            })?;
            out.set(&json!({ "renamed": user.to_string(), "short": user.short(), "name": name }), || {
                format!("{} is now called {}\n", user.short(), for_terminal(name))
            });
        }
        ContactCommand::Verify { contact, confirm, undo } => {
            let (user, name, number, verified) = cx.write(|n| {
                let u = n.contact(contact)?;
                if *confirm || *undo {
                    n.set_verified(&u, *confirm)?;
                }
                Ok((u, n.display_name(&u), n.safety_number_with(&u)?, n.store.contact_state(&u)?.verified))
            })?;
            let v = json!({ "user_id": user.to_string(), "short": user.short(), "name": name, "safety_number": number, "verified": verified });
            out.set(&v, || {
                let groups: Vec<&str> = number.split(' ').collect();
                let mut s = format!("safety number with {} ({}):\n\n", for_terminal(&name), user.short());
                for row in groups.chunks(4) {
                    s += &format!("    {}\n", row.join("  "));
                }
                s += "\n";
                s += if verified {
                    "verified: you confirmed that this number matches theirs.\n"
                } else {
                    "not verified. Compare this number with theirs in person or on a call you trust; if it matches, run `libra contact verify CONTACT --confirm`.\n"
                };
                s
            });
        }
        ContactCommand::Block { contact, blocked } => {
            let (user, devices) = cx.write(|n| {
                let u = n.contact(contact)?;
                Ok((u, n.set_blocked(&u, *blocked)?))
            })?;
            // A running node drops their live sessions now.
            for d in &devices {
                cx.engine.disconnect(d);
            }
            out.set(&json!({ "user_id": user.to_string(), "short": user.short(), "blocked": blocked }), || {
                if *blocked {
                    format!(
                        "blocked {}: their devices cannot connect and you cannot write to them; in groups you share they still read what you write there\n",
                        user.short()
                    )
                } else {
                    format!("unblocked {}\n", user.short())
                }
            });
        }
        ContactCommand::Accept { contact } => {
            let user = cx.write(|n| {
                let u = n.contact(contact)?;
                n.accept_contact(&u)?;
                Ok(u)
            })?;
            out.set(&json!({ "accepted": user.to_string(), "short": user.short() }), || {
                format!("accepted {}\n", user.short())
            });
        }
    }
    Ok(0)
}
