//! Messaging commands: invite, contacts, send/edit/delete, chats, chat, groups.

use std::collections::BTreeMap;

use crate::identity::UserId;
use crate::log::EntryId;
use crate::messenger::ChatTarget;
use crate::node::Node;
use crate::store::{ChatKind, MessageView};
use crate::text::for_terminal;
use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::render;
use super::{Cx, GroupCommand, Out};

/// Who wrote or is named: a contact's shown name (from `names`, taken once per command), "me",
/// or a short id.
fn name_of(node: &Node, names: &BTreeMap<UserId, String>, user: &Option<UserId>) -> String {
    match user {
        None => "unknown".into(),
        Some(u) => names.get(u).cloned().unwrap_or_else(|| node.display_name(u)),
    }
}

fn message_json(node: &Node, names: &BTreeMap<UserId, String>, m: &MessageView) -> Value {
    json!({
        "id": m.id.to_hex(),
        "time": render::time(crate::clock::physical_ms(m.timestamp)),
        "timestamp": m.timestamp,
        "from": name_of(node, names, &m.user),
        "user": m.user.map(|u| u.to_string()),
        "mine": m.mine,
        "text": m.text,
        "edited": m.edited,
        "deleted": m.deleted,
        "undecryptable": m.undecryptable,
        "reply_to": m.reply_to.map(|r| r.to_hex()),
        "delivery": m.delivery.map(|d| d.as_str()),
        "file": m.file.as_ref().map(super::files::file_json),
    })
}

pub fn message_line(v: &Value) -> String {
    let text = if v["undecryptable"] == true {
        "[could not be decrypted]".to_owned()
    } else if v["deleted"] == true {
        "[deleted]".to_owned()
    } else {
        let text = for_terminal(v["text"].as_str().unwrap_or(""));
        match v["file"].as_object() {
            Some(f) => format!(
                "[file {} {}, {}]{}{text}",
                f.get("id").and_then(Value::as_str).unwrap_or(""),
                for_terminal(f.get("name").and_then(Value::as_str).unwrap_or("")),
                render::bytes(f.get("size").and_then(Value::as_u64).unwrap_or(0)),
                if text.is_empty() { "" } else { " " }
            ),
            None => text,
        }
    };
    format!(
        "{}  {:<10} {}{}{}  ({})\n",
        render::local(v["time"].as_str().unwrap_or("")),
        for_terminal(v["from"].as_str().unwrap_or("")),
        v["reply_to"].as_str().map(|r| format!("↳{} ", &r[..8])).unwrap_or_default(),
        text,
        if v["edited"] == true { " (edited)" } else { "" },
        v["delivery"].as_str().map_or_else(
            || v["id"].as_str().unwrap_or("")[..8].to_owned(),
            |d| format!("{d}, {}", &v["id"].as_str().unwrap_or("")[..8])
        )
    )
}

fn find_message(node: &Node, chat: &ChatTarget, prefix: &str) -> Result<EntryId> {
    let p = prefix.to_ascii_lowercase();
    if p.len() < 8 {
        bail!("give at least 8 hex digits of the message id");
    }
    let msgs = node.store.messages(&chat.chat, usize::MAX)?;
    let mut hits = msgs.iter().filter(|m| m.id.to_hex().starts_with(&p));
    match (hits.next(), hits.next()) {
        (Some(m), None) => Ok(m.id),
        (None, _) => bail!("no message {prefix} in {}", chat.title),
        _ => bail!("{prefix} matches more than one message; give more digits"),
    }
}

fn users(node: &Node, names: &[String]) -> Result<Vec<UserId>> {
    names.iter().map(|m| Ok(node.contact(m)?)).collect()
}

pub fn send(cx: &Cx, out: &mut Out, chat: &str, text: &str, reply_to: Option<&str>) -> Result<u8> {
    let (entry, title) = cx.write(|n| {
        let target = n.chat(chat)?;
        let reply = reply_to.map(|r| find_message(n, &target, r)).transpose()?;
        Ok((n.send(&target, text, reply)?, target.title))
    })?;
    out.set(&json!({ "id": entry.id.to_hex(), "chat": title, "delivery": "sent" }), || {
        format!("sent to {} ({})\n", for_terminal(&title), &entry.id.to_hex()[..8])
    });
    Ok(0)
}

pub fn edit(cx: &Cx, out: &mut Out, chat: &str, message: &str, text: Option<&str>) -> Result<u8> {
    let id = cx.write(|n| {
        let target = n.chat(chat)?;
        let id = find_message(n, &target, message)?;
        match text {
            Some(t) => n.edit(&target, id, t)?,
            None => n.delete(&target, id)?,
        };
        Ok(id)
    })?;
    let what = if text.is_some() { "edited" } else { "deleted" };
    out.set(&json!({ what: id.to_hex() }), || format!("{what} {}\n", &id.to_hex()[..8]));
    Ok(0)
}

pub fn chats(cx: &Cx, out: &mut Out) -> Result<u8> {
    let rows: Vec<Value> = cx.read(|n| {
        let names = n.distinct_names();
        Ok(n.store
            .chats()?
            .iter()
            .map(|c| {
                let (kind, title) = match &c.kind {
                    ChatKind::Group { name, .. } => ("group", name.clone()),
                    ChatKind::Direct(u) => ("direct", name_of(n, &names, u)),
                };
                json!({
                    "chat": c.chat.to_hex(),
                    "kind": kind,
                    "title": title,
                    "unread": c.unread,
                    "last": c.last.as_ref().map(|m| message_json(n, &names, m)),
                })
            })
            .collect())
    })?;
    out.set(&json!(rows), || {
        if rows.is_empty() {
            return "no chats yet: `libra send CONTACT TEXT` starts one\n".into();
        }
        rows.iter()
            .map(|r| {
                let last = &r["last"];
                format!(
                    "{:<18} {:>3} unread  {}: {}\n",
                    for_terminal(r["title"].as_str().unwrap_or("")),
                    r["unread"],
                    for_terminal(last["from"].as_str().unwrap_or("")),
                    for_terminal(last["text"].as_str().unwrap_or("…"))
                )
            })
            .collect()
    });
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
pub fn chat(
    cx: &Cx,
    out: &mut Out,
    chat: &str,
    limit: usize,
    mark_read: bool,
    receipts: bool,
    after: Option<u64>,
) -> Result<u8> {
    if mark_read {
        cx.write(|n| {
            let t = n.chat(chat)?;
            Ok(n.mark_read(&t, receipts)?)
        })?;
    }
    let (title, rows, new): (String, Vec<Value>, Option<String>) = cx.read(|n| {
        let t = n.chat(chat)?;
        let msgs = n.store.messages(&t.chat, limit)?;
        let names = n.distinct_names();
        // A contact that introduced itself: its messages come with a warning until accepted.
        let new = match t.users.as_slice() {
            [u] if n.store.contact_state(u)?.introduced && n.store.contacts()?.iter().any(|(c, _)| c == u) => {
                Some(u.short())
            }
            _ => None,
        };
        Ok((
            t.title,
            msgs.iter().filter(|m| after.is_none_or(|a| m.timestamp > a)).map(|m| message_json(n, &names, m)).collect(),
            new,
        ))
    })?;
    out.set(&json!({ "chat": title, "messages": rows, "new_contact": new.is_some() }), || {
        let mut s = if after.is_none() { format!("— {} —\n", for_terminal(&title)) } else { String::new() };
        if let (Some(short), None) = (&new, after) {
            s += &format!(
                "NEW: this contact ({short}) added itself with one of your invites. Anyone you gave that invite to could be behind it: compare safety numbers (`libra contact verify {short}`), then `libra contact accept {short}`.\n"
            );
        }
        for r in &rows {
            s += &message_line(r);
        }
        if rows.is_empty() && after.is_none() {
            s += "no messages yet\n";
        }
        s
    });
    Ok(0)
}

pub fn group(cx: &Cx, out: &mut Out, cmd: &GroupCommand) -> Result<u8> {
    let (what, t) = cx.write(|n| match cmd {
        GroupCommand::Create { name, members } => {
            let m = users(n, members)?;
            Ok(("created", n.group_create(name, &m)?))
        }
        GroupCommand::Add { group, members } => {
            let t = n.chat(group)?;
            let m = users(n, members)?;
            n.group_add(&t, &m)?;
            Ok(("added to", t))
        }
        GroupCommand::Leave { group } => {
            let t = n.chat(group)?;
            n.group_leave(&t)?;
            Ok(("left", t))
        }
        GroupCommand::Remove { group, members } => {
            let t = n.chat(group)?;
            let m = users(n, members)?;
            n.group_remove(&t, &m)?;
            Ok(("removed from", t))
        }
        GroupCommand::Rename { group, name } => {
            let mut t = n.chat(group)?;
            n.group_rename(&t, name)?;
            t.title = name.clone();
            Ok(("renamed to", t))
        }
    })?;
    let title = t.title;
    out.set(&json!({ "group": title, "chat": t.chat.to_hex(), "done": what }), || {
        format!("{what} {} ({})\n", for_terminal(&title), &t.chat.to_hex()[..8])
    });
    Ok(0)
}
