//! `nearby`, `nearby list`, `nearby add`, `nearby off`: visible nearby (spec/connectivity.md,
//! section 2.7), and `stun ask` (section 4.3). Only a running node is on the network, so
//! these need one.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{Cx, NearbyCommand, Out, render};
use crate::nearby::Person;
use crate::text::for_terminal;

pub fn nearby(cx: &Cx, out: &mut Out, cmd: &NearbyCommand) -> Result<u8> {
    let host =
        cx.host.clone().context("visible nearby needs a running node: start `libra serve` (or the app) first")?;
    match cmd {
        NearbyCommand::Start { minutes } => {
            let until = host.nearby_start(*minutes)?;
            out.set(&json!({ "visible_until": render::time(until) }), || {
                format!(
                    "visible nearby until {}: your name and keys go to everyone on this network.\nPeople who are visible too: `libra nearby list`; add one with `libra nearby add NAME|SHORT-ID`.\n",
                    render::local(&render::time(until))
                )
            });
        }
        NearbyCommand::Stop => {
            let was = host.nearby_stop();
            out.set(&json!({ "stopped": was }), || {
                if was { "no longer visible nearby\n".into() } else { "not visible nearby\n".into() }
            });
        }
        NearbyCommand::List => {
            let (until, people) = host.nearby_people();
            let rows: Vec<Value> = people.iter().map(person_json).collect();
            out.set(&json!({ "visible_until": until.map(render::time), "people": rows }), || match until {
                None => "not visible nearby (`libra nearby` turns it on)\n".into(),
                Some(_) if rows.is_empty() => "nobody else is visible nearby yet\n".into(),
                Some(_) => rows
                    .iter()
                    .map(|r| {
                        format!(
                            "{}  {}  seen {}\n",
                            for_terminal(r["name"].as_str().unwrap_or("")),
                            r["short"].as_str().unwrap_or(""),
                            render::local(r["seen"].as_str().unwrap_or(""))
                        )
                    })
                    .collect(),
            });
        }
        NearbyCommand::Add { who, name } => {
            let (_, people) = host.nearby_people();
            let person = pick(&people, who)?;
            let inv = person.invite.clone();
            let user = cx.write(|n| Ok(n.add_contact(&inv, name.as_deref())?))?;
            let shown = name.clone().unwrap_or(person.invite.card.name.clone());
            out.set(&json!({ "added": user.to_string(), "user_id": user.to_string(), "short": user.short(), "name": shown }), || {
                format!(
                    "added {} ({}); they see you as new until they accept you. Compare safety numbers (`libra contact verify`) to be sure.\n",
                    for_terminal(&shown),
                    user.short()
                )
            });
        }
    }
    Ok(0)
}

fn person_json(p: &Person) -> Value {
    json!({
        "name": p.invite.card.name,
        "user_id": p.user().to_string(),
        "short": p.user().short(),
        "devices": p.invite.card.certs.len(),
        "seen": render::time(p.seen_ms),
    })
}

/// The one person `who` names: a short id (`lu:` and at least 4 characters) or a name
/// (case-insensitive). Names are chosen by their owners: more than one match is an error.
fn pick<'a>(people: &'a [Person], who: &str) -> Result<&'a Person> {
    let w = who.trim();
    let hits: Vec<&Person> = match crate::contacts::short_id_query(w) {
        Some(want) => {
            let want = want?;
            people.iter().filter(|p| crate::contacts::short_id_matches(&p.user(), &want)).collect()
        }
        None => people.iter().filter(|p| p.invite.card.name.to_lowercase() == w.to_lowercase()).collect(),
    };
    match hits.as_slice() {
        [one] => Ok(one),
        [] => bail!("nobody called '{}' is visible nearby (`libra nearby list`)", for_terminal(who)),
        many => bail!(
            "'{}' could be any of: {}; use the short id",
            for_terminal(who),
            many.iter()
                .map(|p| format!("{} ({})", for_terminal(&p.invite.card.name), p.user().short()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `stun ask SERVER`: where the STUN server sees the running node (its public address and
/// port, as its NAT maps them). The server learns this machine's public address: the user
/// named it.
pub fn stun_ask(cx: &Cx, out: &mut Out, server: &str) -> Result<u8> {
    let host = cx.host.clone().context("asking a STUN server needs a running node: start `libra serve` first")?;
    let handle = tokio::runtime::Handle::current();
    let seen = handle.block_on(host.stun_ask(server))?;
    out.set(&json!({ "server": server, "public_address": seen.to_string() }), || {
        format!("{} sees this node at {seen}\n", for_terminal(server))
    });
    Ok(0)
}
