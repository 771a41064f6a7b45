//! Checking vector files case by case against this implementation.

use serde_json::{Value, json};

use super::VectorError;
use crate::codec;
use crate::identity::{DeviceCert, DeviceKeys, UserKeys};
use crate::log::{ChainPoint, Entry, ForkProof, ValidationError, validate_next, verify_signature};
use crate::text;

/// One case whose outcome differs from what its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFailure {
    pub file: String,
    pub case: String,
    pub problem: String,
}

/// The outcome of checking vector files.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub cases: usize,
    pub failures: Vec<CaseFailure>,
    /// Files whose text differs from what `generate` writes now.
    pub differs_from_generated: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.differs_from_generated.is_empty()
    }
}

fn hexf(v: &Value, field: &str) -> Result<Vec<u8>, String> {
    let s = v.get(field).and_then(Value::as_str).ok_or_else(|| format!("missing hex field {field}"))?;
    hex::decode(s).map_err(|e| format!("{field}: {e}"))
}

fn hex32(v: &Value, field: &str) -> Result<[u8; 32], String> {
    <[u8; 32]>::try_from(hexf(v, field)?.as_slice()).map_err(|_| format!("{field} is not 32 bytes"))
}

pub(super) fn expect(case: &Value, outcome: Result<(), String>) -> Result<(), String> {
    let want_valid = case.get("result").and_then(Value::as_str) == Some("valid");
    match (want_valid, outcome) {
        (true, Ok(())) => Ok(()),
        (true, Err(code)) => Err(format!("expected valid, got {code}")),
        (false, Ok(())) => Err("expected invalid, got valid".into()),
        (false, Err(code)) => {
            let want = case.get("error").and_then(Value::as_str).unwrap_or("");
            if code == want { Ok(()) } else { Err(format!("expected error {want}, got {code}")) }
        }
    }
}

/// A key file (spec/identity.md, section 8): a valid one loads and re-serialises to the same
/// text with the same checksum; a damaged one is refused.
fn check_key_file(c: &Value) -> Result<(), String> {
    let text = c.get("text").and_then(Value::as_str).ok_or("text")?;
    let loaded = crate::keyfile::from_text(text, std::path::Path::new("identity.key"));
    if c.get("result").and_then(Value::as_str) == Some("invalid") {
        return match loaded {
            Ok(_) => Err("a damaged key file loaded".into()),
            Err(_) => Ok(()),
        };
    }
    let secrets = loaded.map_err(|e| e.to_string())?;
    let again = crate::keyfile::to_json(&secrets).map_err(|e| e.to_string())?;
    if again != text {
        return Err("key file does not round-trip".into());
    }
    let sum = serde_json::from_str::<Value>(text).map_err(|e| e.to_string())?["checksum"].clone();
    if Some(&sum) != c.get("checksum") {
        return Err("checksum differs".into());
    }
    Ok(())
}

fn check_key(k: &Value) -> Result<(), String> {
    let secret = hex32(k, "secret")?;
    let public = hexf(k, "public")?;
    let text_form = k.get("text").and_then(Value::as_str).unwrap_or("");
    let (derived, derived_text) = if k.get("kind").and_then(Value::as_str) == Some("user") {
        let u = UserKeys::from_secret(secret);
        (u.id().as_bytes().to_vec(), u.id().to_string())
    } else {
        let d = DeviceKeys::from_secrets(secret, hex32(k, "x25519_secret")?);
        if hexf(k, "x25519_public")? != d.agreement_public() {
            return Err("x25519 public key differs".into());
        }
        (d.id().as_bytes().to_vec(), d.id().to_string())
    };
    if derived != public {
        return Err("public key differs".into());
    }
    if derived_text != text_form {
        return Err("text form differs".into());
    }
    Ok(())
}

fn check_text(c: &Value) -> Result<(), String> {
    let t = c.get("text").and_then(Value::as_str).unwrap_or("");
    let outcome = match text::decode_id(t) {
        Ok((_, key)) if c.get("public").is_some() && hexf(c, "public")? != key => {
            return Err("key differs".into());
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e.code().to_owned()),
    };
    expect(c, outcome)
}

/// A knock (spec/sync.md, section 3.2a): made from its inputs, it is the name given, parses back
/// and proves the key (and the invite) at its epoch; an invalid one does not parse.
fn check_knock(c: &Value) -> Result<(), String> {
    use crate::knock::Knock;
    let name = c.get("server_name").and_then(Value::as_str).ok_or("server_name")?;
    if c.get("result").and_then(Value::as_str) == Some("invalid") {
        return match Knock::parse(name) {
            Ok(_) => Err("an invalid knock parsed".into()),
            Err(_) => Ok(()),
        };
    }
    let server = hex32(c, "server")?;
    let epoch = c.get("epoch").and_then(Value::as_u64).ok_or("epoch")?;
    let random: [u8; 24] = hexf(c, "random")?.try_into().map_err(|_| "random of 24 bytes")?;
    let token: Option<[u8; 16]> = match c.get("invite_token") {
        Some(_) => Some(hexf(c, "invite_token")?.try_into().map_err(|_| "invite_token of 16 bytes")?),
        None => None,
    };
    let k = Knock::new(&server, token.as_ref(), epoch, random);
    if k.server_name() != name {
        return Err("server name differs".into());
    }
    let parsed = Knock::parse(name).map_err(|e| e.to_string())?;
    if !parsed.proves_key(&server, epoch) || token.is_some_and(|t| parsed.proven_invite(&[t], epoch).is_none()) {
        return Err("the knock does not prove its key or invite".into());
    }
    Ok(())
}

fn check_lan_tag(c: &Value) -> Result<(), String> {
    use crate::discovery::{pair_secret, tag};
    // An open invite's tag (spec/connectivity.md): keyed by the token, not by a pair.
    if c.get("invite_token").is_some() {
        let token: [u8; 16] = hexf(c, "invite_token")?.try_into().map_err(|_| "invite_token of 16 bytes")?;
        let s = crate::short_invite::beacon_secret(&token);
        if s != hex32(c, "invite_secret")? {
            return Err("invite secret differs".into());
        }
        let epoch = c.get("epoch").and_then(Value::as_u64).and_then(|e| u32::try_from(e).ok()).ok_or("epoch")?;
        if tag(&s, &hex32(c, "sender")?, epoch).to_vec() != hexf(c, "tag")? {
            return Err("tag differs".into());
        }
        return Ok(());
    }
    let secret_a = x25519_dalek::StaticSecret::from(hex32(c, "agreement_secret_a")?);
    let (da, db) = (hex32(c, "device_a")?, hex32(c, "device_b")?);
    let s = pair_secret(&secret_a, &da, &db, &hex32(c, "agreement_public_b")?);
    if s != hex32(c, "pair_secret")? {
        return Err("pair secret differs".into());
    }
    let epoch = c.get("epoch").and_then(Value::as_u64).and_then(|e| u32::try_from(e).ok()).ok_or("epoch")?;
    if tag(&s, &hex32(c, "sender")?, epoch).to_vec() != hexf(c, "tag")? {
        return Err("tag differs".into());
    }
    Ok(())
}

/// A bundle file: its sections check, its entries decode, its table of contents matches.
fn check_bundle(c: &Value) -> Result<(), String> {
    use crate::bundle::BundleError;
    let outcome = match crate::bundle::parse_all(&hexf(c, "file")?) {
        Ok((entries, grants)) => {
            let ids: Vec<String> = entries.iter().map(|e| e.id.to_hex()).collect();
            let want: Vec<String> = c
                .get("entries")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if ids != want {
                return Err("entries differ".into());
            }
            let grants: Vec<Value> = grants
                .iter()
                .map(|g| json!({ "device": hex::encode(g.device), "ts": g.ts, "tags": g.tags.iter().map(hex::encode).collect::<Vec<_>>() }))
                .collect();
            if grants != c.get("grants").and_then(Value::as_array).cloned().unwrap_or_default() {
                return Err("grants differ".into());
            }
            Ok(())
        }
        Err(BundleError::Checksum { .. }) => Err("checksum".to_owned()),
        Err(BundleError::Body { reason, .. }) if reason.starts_with("grant:") => Err("grant".to_owned()),
        Err(BundleError::Magic) => Err("magic".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    expect(c, outcome)
}

/// A request (34 bytes, then a list for Punch or an introduction for Punch-from), a target's
/// agreement (0, then its local list) or the introducer's answer (0, then an introduction).
fn check_relay_request(c: &Value) -> Result<(), String> {
    use crate::relay_wire::{Introduction, Kind, RelayWireError, Request, decode_list};
    let bytes = hexf(c, "encoded")?;
    let field = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    let list = |l: &[std::net::SocketAddr]| json!(l.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    let intro = |i: &Introduction| {
        field("seen") == json!(i.seen.to_string())
            && field("local") == list(&i.local)
            && field("you") == json!(i.you.to_string())
    };
    let mismatch = RelayWireError::Length(0);
    let after_zero = || match bytes.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(RelayWireError::Length(bytes.len())),
    };
    let outcome = (|| -> Result<(), RelayWireError> {
        match c.get("message").and_then(Value::as_str) {
            Some("agree") => (field("local") == list(&decode_list(after_zero()?)?)).then_some(()).ok_or(mismatch),
            Some("introduced") => intro(&Introduction::decode(after_zero()?)?).then_some(()).ok_or(mismatch),
            _ => {
                let head: &[u8; Request::LEN] = bytes
                    .get(..Request::LEN)
                    .and_then(|h| h.try_into().ok())
                    .ok_or(RelayWireError::Length(bytes.len()))?;
                let r = Request::decode(head)?;
                if c.get("kind").and_then(Value::as_u64) != Some(r.kind as u64)
                    || hexf(c, "device").ok() != Some(r.device.to_vec())
                {
                    return Err(mismatch);
                }
                let tail = &bytes[Request::LEN..];
                let ok = match r.kind {
                    Kind::Punch => field("local") == list(&decode_list(tail)?),
                    Kind::PunchFrom => intro(&Introduction::decode(tail)?),
                    Kind::Connect | Kind::Incoming => tail.is_empty(),
                };
                ok.then_some(()).ok_or(mismatch)
            }
        }
    })();
    let outcome = outcome.map_err(|e| {
        match e {
            RelayWireError::Version(_) => "version",
            RelayWireError::Kind(_) => "kind",
            RelayWireError::Family(_) => "family",
            RelayWireError::Length(_) => "length",
            RelayWireError::TooMany(_) => "too_many",
        }
        .to_owned()
    });
    expect(c, outcome)
}

fn check_nearby(c: &Value) -> Result<(), String> {
    use crate::nearby::{Announcement, NearbyError};
    let bytes = hexf(c, "encoded")?;
    let outcome = Announcement::decode(&bytes).and_then(|a| {
        a.invite_from(std::net::SocketAddr::from(([192, 0, 2, 1], 7444)))?;
        Ok(a)
    });
    let outcome = match outcome {
        Ok(a) => {
            if a.encode() != bytes {
                return Err("announcement does not round-trip".into());
            }
            if c.get("port").and_then(Value::as_u64) != Some(u64::from(a.port)) || hexf(c, "invite")? != a.invite {
                return Err("port or invite differs".into());
            }
            Ok(())
        }
        Err(NearbyError::Magic) => Err("magic".to_owned()),
        Err(NearbyError::Length(_) | NearbyError::TooLong(_)) => Err("length".to_owned()),
        Err(NearbyError::Invite(_)) => Err("invite".to_owned()),
        Err(NearbyError::Minutes(_)) => Err("minutes".to_owned()),
    };
    expect(c, outcome)
}

fn check_stun(c: &Value) -> Result<(), String> {
    use crate::stun::{self, StunError};
    let bytes = hexf(c, "encoded")?;
    let want_tx = || -> Result<stun::TxId, String> {
        hexf(c, "transaction")?.try_into().map_err(|_| "transaction is not 12 bytes".to_owned())
    };
    let outcome = match c.get("message").and_then(Value::as_str) {
        Some("request") => stun::parse_request(&bytes).map(|tx| (tx, None)),
        Some("answer") => stun::parse_response(&bytes).map(|(tx, a)| (tx, Some(a))),
        other => return Err(format!("unknown message {other:?}")),
    };
    let outcome = match outcome {
        Ok((tx, addr)) => {
            if tx != want_tx()? {
                return Err("transaction differs".into());
            }
            let want_addr = c.get("address").and_then(Value::as_str);
            if addr.map(|a| a.to_string()).as_deref() != want_addr {
                return Err(format!("address {addr:?}, not {want_addr:?}"));
            }
            let made = match addr {
                None => Some(stun::binding_request(&tx).to_vec()),
                Some(a) if c.get("ours") == Some(&Value::Bool(true)) => Some(stun::binding_success(&tx, a)),
                Some(_) => None,
            };
            if made.is_some_and(|m| m != bytes) {
                return Err("encoding differs".into());
            }
            Ok(())
        }
        Err(StunError::NotStun) => Err("not_stun".to_owned()),
        Err(StunError::TooLong(_) | StunError::Length(_)) => Err("length".to_owned()),
        Err(StunError::Attribute) => Err("attribute".to_owned()),
        Err(StunError::Type(_)) => Err("type".to_owned()),
        Err(StunError::Refused(code)) => Err(format!("refused {code}")),
        Err(StunError::NoAddress) => Err("no_address".to_owned()),
        Err(StunError::Family(_)) => Err("family".to_owned()),
    };
    expect(c, outcome)
}

fn check_beacon(c: &Value) -> Result<(), String> {
    use crate::discovery::{Beacon, BeaconError};
    let bytes = hexf(c, "encoded")?;
    let outcome = match Beacon::decode(&bytes) {
        Ok(b) => {
            if b.encode() != bytes {
                return Err("beacon does not round-trip".into());
            }
            if c.get("port").and_then(Value::as_u64) != Some(u64::from(b.port))
                || c.get("epoch").and_then(Value::as_u64) != Some(u64::from(b.epoch))
            {
                return Err("port or epoch differs".into());
            }
            let tags: Vec<String> = b.tags.iter().map(hex::encode).collect();
            let want: Vec<String> = c
                .get("tags")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if tags != want {
                return Err("tags differ".into());
            }
            Ok(())
        }
        Err(BeaconError::Magic) => Err("magic".to_owned()),
        Err(BeaconError::Length(_)) => Err("length".to_owned()),
        Err(BeaconError::TooManyTags(_)) => Err("too_many_tags".to_owned()),
    };
    expect(c, outcome)
}

fn check_safety_number(c: &Value) -> Result<(), String> {
    use crate::identity::{SAFETY_QR_PREFIX, UserId, safety_number};
    let (a, b) = (UserId(crate::codec::Bytes(hex32(c, "user_a")?)), UserId(crate::codec::Bytes(hex32(c, "user_b")?)));
    let want = c.get("safety_number").and_then(Value::as_str).ok_or("safety_number")?;
    if safety_number(&a, &b) != want || safety_number(&b, &a) != want {
        return Err("safety number differs".into());
    }
    let qr = format!("{SAFETY_QR_PREFIX}{}", want.replace(' ', ""));
    if c.get("qr_text").and_then(Value::as_str) != Some(qr.as_str()) {
        return Err("QR text differs".into());
    }
    Ok(())
}

fn check_cert(c: &Value) -> Result<(), String> {
    let encoded = hexf(c, "encoded")?;
    let cert: DeviceCert = codec::decode(&encoded).map_err(|e| format!("cert does not decode: {e}"))?;
    if c.get("signing_input").is_some() && hexf(c, "signing_input")? != cert.body.signing_input() {
        return Err("signing input differs".into());
    }
    expect(c, cert.verify().map_err(|e| e.code().to_owned()))
}

fn check_entry(c: &Value, context: &[u8]) -> Result<(), String> {
    let payload = c.get("payload").and_then(Value::as_str).map(hex::decode).transpose().map_err(|e| e.to_string())?;
    let e = Entry::from_parts(hexf(c, "signed_header")?, payload).map_err(|e| e.to_string())?;
    let hd = e.header();
    if codec::encode(hd) != hexf(c, "header")? {
        return Err("header bytes differ".into());
    }
    if [context, &hexf(c, "header")?].concat() != hexf(c, "signing_input")?
        || hd.signing_input() != hexf(c, "signing_input")?
    {
        return Err("signing input differs".into());
    }
    if e.signed.signature.0.as_slice() != hexf(c, "signature")? {
        return Err("signature differs".into());
    }
    if e.id.as_bytes().as_slice() != hexf(c, "entry_id")? {
        return Err("entry id differs".into());
    }
    if e.encode() != hexf(c, "wire")? || Entry::decode(&hexf(c, "wire")?).map_err(|e| e.to_string())? != e {
        return Err("wire form differs".into());
    }
    let f = c.get("fields").ok_or("missing fields")?;
    let num = |n: &str| f.get(n).and_then(Value::as_u64);
    if num("seq") != Some(hd.seq) || num("timestamp") != Some(hd.timestamp) || num("kind") != Some(u64::from(hd.kind)) {
        return Err("fields differ".into());
    }
    // Each entry stands alone here: its payload and signature must check out.
    crate::log::check_payload(hd, e.payload.as_deref()).and_then(|()| verify_signature(&e)).map_err(|e| e.to_string())
}

/// Offers entries in order to an empty log, as ingest does: Ok(head) or Err((index, code)).
pub(crate) fn run_chain(items: &[Value]) -> Result<Option<ChainPoint>, (usize, String)> {
    let mut log: Vec<Entry> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let fail = |e: ValidationError| (i, e.code().to_owned());
        let signed = hexf(item, "signed_header").map_err(|m| (i, m))?;
        let payload = match item.get("payload").and_then(Value::as_str) {
            Some(p) => Some(hex::decode(p).map_err(|e| (i, e.to_string()))?),
            None => None,
        };
        let e = Entry::from_parts(signed, payload).map_err(fail)?;
        let seq = e.header().seq;
        if log.last().is_some_and(|l| seq <= l.header().seq && seq >= 1) {
            let held = &log[(seq - 1) as usize];
            if held.id == e.id {
                continue;
            }
            verify_signature(&e).map_err(fail)?;
            return Err(fail(ValidationError::Fork));
        }
        validate_next(log.last().map(ChainPoint::of).as_ref(), &e).map_err(fail)?;
        log.push(e);
    }
    Ok(log.last().map(ChainPoint::of))
}

fn check_chain(c: &Value) -> Result<(), String> {
    let items = c.get("entries").and_then(Value::as_array).ok_or("missing entries")?;
    let want_valid = c.get("result").and_then(Value::as_str) == Some("valid");
    match (want_valid, run_chain(items)) {
        (true, Ok(head)) => {
            let want = c.get("head").ok_or("missing head")?;
            let ok = head.is_some_and(|h| {
                Some(h.seq) == want.get("seq").and_then(Value::as_u64)
                    && Some(h.id.to_hex().as_str()) == want.get("id").and_then(Value::as_str)
            });
            if ok { Ok(()) } else { Err("head differs".into()) }
        }
        (true, Err((i, code))) => Err(format!("expected valid, entry {i} refused with {code}")),
        (false, Ok(_)) => Err("expected invalid, all accepted".into()),
        (false, Err((i, code))) => {
            let want = c.get("error").and_then(Value::as_str).unwrap_or("");
            let at = c.get("at").and_then(Value::as_u64);
            if code == want && at == Some(i as u64) {
                Ok(())
            } else {
                Err(format!("expected {want} at {at:?}, got {code} at {i}"))
            }
        }
    }
}

fn check_fork(c: &Value) -> Result<(), String> {
    let proof = ForkProof::decode(&hexf(c, "proof")?).map_err(|e| e.code().to_owned());
    let outcome = proof.and_then(|p| p.verify().map_err(|e| e.code().to_owned()));
    if let Ok((author, seq)) = &outcome
        && c.get("author").is_some()
        && (hexf(c, "author")? != author || c.get("seq").and_then(Value::as_u64) != Some(*seq))
    {
        return Err("convicts another author or seq".into());
    }
    expect(c, outcome.map(|_| ()))
}

fn check_fingerprint(c: &Value) -> Result<(), String> {
    use crate::sync::{HeadItem, HeadSet};
    let items = c.get("items").and_then(Value::as_array).ok_or("missing items")?;
    let mut set = HeadSet::new();
    for i in items {
        let id = crate::log::EntryId(crate::codec::Bytes(hex32(i, "id")?));
        set.set(HeadItem { author: hex32(i, "author")?, seq: i.get("seq").and_then(Value::as_u64).ok_or("seq")?, id });
    }
    set.settle();
    let (a, b) = set.span(&None, &None);
    if set.fingerprint(a, b).to_vec() == hexf(c, "fingerprint")? { Ok(()) } else { Err("fingerprint differs".into()) }
}

fn check_grant(c: &Value) -> Result<(), String> {
    use crate::identity::UserId;
    use crate::sync::{Message, SyncError, grant_tag};
    if c.get("tag").is_some() {
        let (i, s) =
            (UserId(crate::codec::Bytes(hex32(c, "issuer")?)), UserId(crate::codec::Bytes(hex32(c, "subject")?)));
        return if grant_tag(&i, &s).to_vec() == hexf(c, "tag")? { Ok(()) } else { Err("tag differs".into()) };
    }
    let bytes = hexf(c, "message")?;
    let outcome = match Message::decode(&bytes) {
        Ok(Message::Grant(tags)) => {
            let want = c.get("tags").and_then(Value::as_array).ok_or("missing tags")?;
            let want: Vec<Vec<u8>> =
                want.iter().map(|t| hex::decode(t.as_str().unwrap_or("")).unwrap_or_default()).collect();
            let got: Vec<Vec<u8>> = tags.iter().map(|t| t.to_vec()).collect();
            if got != want || Message::Grant(tags).encode() != bytes {
                return Err("grant message differs".into());
            }
            Ok(())
        }
        Ok(_) => Err("not a grant".to_owned()),
        Err(SyncError::Malformed(_)) => Err("malformed".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    expect(c, outcome)
}

/// A Since or SinceAnswer message (spec/sync.md, 6.11): a valid one decodes and re-encodes to
/// the same bytes.
fn check_since_message(c: &Value) -> Result<(), String> {
    use crate::sync::{Message, SyncError};
    let bytes = hexf(c, "message")?;
    let outcome = match Message::decode(&bytes) {
        Ok(m @ (Message::Since { .. } | Message::SinceAnswer { .. })) => {
            if m.encode() == bytes {
                Ok(())
            } else {
                Err("re-encodes differently".to_owned())
            }
        }
        Ok(_) => Err("not a since message".to_owned()),
        Err(SyncError::Malformed(_)) => Err("malformed".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    expect(c, outcome)
}

fn check_transcript(c: &Value) -> Result<(), String> {
    use crate::sync::memory::{MemLogs, run_pair_since};
    let since = |field: &str| -> Result<Option<Vec<[u8; 32]>>, String> {
        match c.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(v)) => v
                .iter()
                .map(|a| {
                    let b = hex::decode(a.as_str().ok_or("since author")?).map_err(|e| e.to_string())?;
                    b.try_into().map_err(|_| "since author length".to_owned())
                })
                .collect::<Result<Vec<[u8; 32]>, String>>()
                .map(Some),
            _ => Err(format!("{field} is not a list")),
        }
    };
    let load = |field: &str| -> Result<MemLogs, String> {
        let mut m = MemLogs::default();
        for e in c.get(field).and_then(Value::as_array).ok_or("missing entries")? {
            let bytes = hex::decode(e.as_str().ok_or("entry")?).map_err(|e| e.to_string())?;
            let entry = Entry::decode(&bytes).map_err(|e| e.to_string())?;
            m.logs.entry(entry.header().author.0).or_default().push(entry);
        }
        Ok(m)
    };
    let (mut a, mut b) = (load("a_entries")?, load("b_entries")?);
    let t = run_pair_since(&mut a, &mut b, true, since("a_since")?, since("b_since")?).map_err(|e| e.to_string())?;
    let want = c.get("transcript").and_then(Value::as_array).ok_or("missing transcript")?;
    if want.len() != t.messages.len() {
        return Err(format!("{} messages, expected {}", t.messages.len(), want.len()));
    }
    for (i, (w, (from_a, m))) in want.iter().zip(&t.messages).enumerate() {
        let from = if *from_a { "A" } else { "B" };
        if w.get("from").and_then(Value::as_str) != Some(from) || hexf(w, "message")? != *m {
            return Err(format!("message {i} differs"));
        }
    }
    if c.get("result_entries").and_then(Value::as_u64) != Some(a.entry_count() as u64)
        || a.entry_count() != b.entry_count()
    {
        return Err("the sets did not end equal".into());
    }
    Ok(())
}

fn check_seal(c: &Value) -> Result<(), String> {
    use crate::messaging::{SealRandom, Sealed, seal};
    use x25519_dalek::{PublicKey, StaticSecret};
    let rnd = SealRandom {
        ephemeral: hex32(c, "ephemeral_secret")?,
        content_key: hex32(c, "content_key")?,
        nonce: hexf(c, "nonce")?.try_into().map_err(|_| "nonce is not 24 bytes")?,
        padding: hex32(c, "padding_seed")?,
    };
    let recipients = c.get("recipients").and_then(Value::as_array).ok_or("recipients")?;
    let mut secrets = Vec::new();
    for r in recipients {
        let s = StaticSecret::from(hex32(r, "x25519_secret")?);
        if PublicKey::from(&s).to_bytes().to_vec() != hexf(r, "x25519_public")? {
            return Err("recipient public key differs".into());
        }
        secrets.push(s);
    }
    let pubs: Vec<[u8; 32]> = secrets.iter().map(|s| PublicKey::from(s).to_bytes()).collect();
    let (plain, aad) = (hexf(c, "plaintext")?, hexf(c, "aad")?);
    let sealed = seal(&plain, &aad, &pubs, &rnd).map_err(|e| e.to_string())?;
    if sealed.encode() != hexf(c, "sealed")? {
        return Err("sealed bytes differ".into());
    }
    let back = Sealed::decode(&hexf(c, "sealed")?).map_err(|e| e.to_string())?;
    for s in &secrets {
        if back.open(s, &aad).map_err(|e| e.to_string())? != plain {
            return Err("a recipient opened something else".into());
        }
    }
    let outsider = c.get("outsider").ok_or("outsider")?;
    match back.open(&StaticSecret::from(hex32(outsider, "x25519_secret")?), &aad) {
        Err(crate::messaging::SealError::NotForUs) => Ok(()),
        other => Err(format!("the outsider got {other:?}")),
    }
}

fn check_body(c: &Value) -> Result<(), String> {
    let bytes = hexf(c, "encoded")?;
    let b = crate::messaging::Body::decode(&bytes).map_err(|e| e.to_string())?;
    if b.encode() != bytes { Err("body does not round-trip".into()) } else { Ok(()) }
}

fn check_chat_id(c: &Value) -> Result<(), String> {
    use crate::identity::UserId;
    let (a, b) = (UserId(crate::codec::Bytes(hex32(c, "user_a")?)), UserId(crate::codec::Bytes(hex32(c, "user_b")?)));
    let id = crate::messaging::ChatId::direct(&a, &b);
    if id.0.0.to_vec() != hexf(c, "chat")? || crate::messaging::ChatId::direct(&b, &a) != id {
        return Err("chat id differs".into());
    }
    Ok(())
}

fn check_invite(c: &Value) -> Result<(), String> {
    let t = c.get("text").and_then(Value::as_str).ok_or("text")?;
    if c.get("form").and_then(Value::as_str) == Some("short") {
        return check_short_invite(c, t);
    }
    if c.get("result").and_then(Value::as_str) == Some("invalid") {
        return match crate::messenger::Invite::parse(t) {
            Ok(_) => Err("an invalid invite parsed".into()),
            Err(_) => Ok(()),
        };
    }
    let inv = crate::messenger::Invite::parse(t).map_err(|e| e.to_string())?;
    if inv.to_text() != t {
        return Err("invite does not round-trip".into());
    }
    // The local id `invite list` shows (spec/messaging.md, section 8.5), when the case has one.
    match (c.get("invite_id").and_then(Value::as_str), inv.token) {
        (Some(want), Some(tok)) if crate::store::invite_id(&tok.0) != want => Err("invite id differs".into()),
        (Some(_), None) => Err("an invite id without a token".into()),
        _ => Ok(()),
    }
}

/// A short invite (spec/messaging.md, section 8.1a): a valid one round-trips (its QR text
/// too), an invalid one is refused.
fn check_short_invite(c: &Value, t: &str) -> Result<(), String> {
    use crate::short_invite::{AnyInvite, ShortInvite};
    let parsed = ShortInvite::parse(t);
    if c.get("result").and_then(Value::as_str) == Some("invalid") {
        return match parsed {
            Ok(_) => Err("an invalid short invite parsed".into()),
            Err(_) => Ok(()),
        };
    }
    let inv = parsed.map_err(|e| e.to_string())?;
    if inv.to_text() != t || !matches!(AnyInvite::parse(t), Ok(AnyInvite::Short(_))) {
        return Err("short invite does not round-trip".into());
    }
    if let Some(q) = c.get("qr_text").and_then(Value::as_str)
        && (inv.to_qr_text() != q || ShortInvite::parse(q).ok().as_ref() != Some(&inv))
    {
        return Err("QR text differs".into());
    }
    match c.get("invite_id").and_then(Value::as_str) {
        Some(want) if crate::store::invite_id(&inv.token.0) != want => Err("invite id differs".into()),
        _ => Ok(()),
    }
}

type CaseCheck<'a> = dyn Fn(&Value) -> Result<(), String> + 'a;

/// Verifies every case in the given `(file name, JSON text)` pairs.
pub fn verify_files(files: &[(&str, &str)]) -> Result<VerifyReport, VectorError> {
    let mut report = VerifyReport::default();
    for (file, text) in files {
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| VectorError::Json { file: (*file).to_owned(), reason: e.to_string() })?;
        let context = doc.get("context").and_then(Value::as_str).and_then(|s| hex::decode(s).ok()).unwrap_or_default();
        let sections: [(&str, &CaseCheck); 25] = [
            ("sketches", &super::sketch::check),
            ("blobs", &super::blobs::check),
            ("devices", &super::devices::check),
            ("bundles", &check_bundle),
            ("lan_tags", &check_lan_tag),
            ("knocks", &check_knock),
            ("relay_requests", &check_relay_request),
            ("nearby", &check_nearby),
            ("stun", &check_stun),
            ("beacons", &check_beacon),
            ("safety_numbers", &check_safety_number),
            ("grants", &check_grant),
            ("since_messages", &check_since_message),
            ("seal", &check_seal),
            ("bodies", &check_body),
            ("chat_ids", &check_chat_id),
            ("invites", &check_invite),
            ("key_files", &check_key_file),
            ("fingerprints", &check_fingerprint),
            ("transcripts", &check_transcript),
            ("keys", &check_key),
            ("text_ids", &check_text),
            ("device_certs", &check_cert),
            ("entries", &|c| check_entry(c, &context)),
            ("cases", &|c| {
                if c.get("proof").is_some() { check_fork(c) } else { check_chain(c) }
            }),
        ];
        for (section, check) in sections {
            let Some(cases) = doc.get(section).and_then(Value::as_array) else {
                continue;
            };
            for case in cases {
                report.cases += 1;
                if let Err(problem) = check(case) {
                    let id = case.get("id").and_then(Value::as_str).unwrap_or("?").to_owned();
                    report.failures.push(CaseFailure { file: (*file).to_owned(), case: id, problem });
                }
            }
        }
    }
    Ok(report)
}
