//! Key layout of the fjall keyspaces (see spec/log.md, "Storage").
//!
//! entries: author(32) ‖ seq(u64 BE)            → u16 BE header length ‖ signed header ‖ payload
//! ids:     id[..16] ‖ lognum(u32 BE) ‖ seq(u64 BE) → (empty), or id[16..] ‖ content key(32) when
//!                                                  kept as the entry was stored
//! heads:   author(32)                            → Head (MessagePack)
//! lognums: lognum(u32 BE)                        → author(32)
//! forks:   author(32)                            → ForkProof (MessagePack)
//! views:   name ‖ 0x00                           → state (MessagePack)
//!          name ‖ 0x01 ‖ author(32)              → seq(u64 BE) folded into the view
//! meta:    "format"                              → format string
//!          "file-auto-download"                  → u64 BE: largest file fetched unasked
//!          "moves-epoch"                         → u64 BE: the epoch of the order of head moves
//! peers:   device or user key(32)                → PeerRecord (MessagePack); local state only
//! chats:   rows of the chats projection (messaging::view)
//! invites: token(16)                             → [expires ms, uses left, created ms] (MessagePack);
//!                                                  tokens we handed out (8-byte expiry in older stores)

use super::StoreError;

pub const ID_PREFIX: usize = 16;

pub fn entry_key(author: &[u8; 32], seq: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(author);
    k[32..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn id_key(id: &[u8; 32], lognum: u32, seq: u64) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..16].copy_from_slice(&id[..ID_PREFIX]);
    k[16..20].copy_from_slice(&lognum.to_be_bytes());
    k[20..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The value of an entry's `ids` row: empty, or the rest of its id and the content key kept for
/// it. The key rides on a row the entry writes anyway: a row of its own, inserted at a random
/// place in a deep memtable, cost each side 1.5–2.5 µs per message (spec/devices.md, 7.1).
pub fn id_value(id: &[u8; 32], kept: Option<&[u8; 32]>) -> Vec<u8> {
    kept.map_or_else(Vec::new, |k| [&id[ID_PREFIX..], &k[..]].concat())
}

/// The content key an `ids` row keeps for entry `id`, if it keeps one for that very entry (the
/// row's key holds only the id's first 16 bytes).
pub fn kept_in_id_value(id: &[u8; 32], v: &[u8]) -> Result<Option<[u8; 32]>, StoreError> {
    match parse_id_value(v)? {
        Some((rest, key)) if rest == id[ID_PREFIX..] => Ok(Some(key)),
        _ => Ok(None),
    }
}

/// What an `ids` row keeps besides the position: the rest of the id (16) and the content key (32).
pub type IdValue = ([u8; 16], [u8; 32]);

/// An `ids` row's value: nothing, or what it keeps.
pub fn parse_id_value(v: &[u8]) -> Result<Option<IdValue>, StoreError> {
    match v.len() {
        0 => Ok(None),
        48 => Ok(v[..16].try_into().ok().zip(v[16..].try_into().ok())),
        n => Err(StoreError::Corrupt(format!("id index value of {n} bytes"))),
    }
}

/// The whole id of the entry of an `ids` row whose value kept `rest` (its last 16 bytes).
pub fn full_id(k: &[u8], rest: &[u8; 16]) -> Result<[u8; 32], StoreError> {
    let prefix = k.get(..ID_PREFIX).ok_or_else(|| StoreError::Corrupt(format!("id index key of {} bytes", k.len())))?;
    let mut id = [0u8; 32];
    id[..ID_PREFIX].copy_from_slice(prefix);
    id[ID_PREFIX..].copy_from_slice(rest);
    Ok(id)
}

pub fn parse_id_key(k: &[u8]) -> Result<(u32, u64), StoreError> {
    let lognum = k.get(16..20).and_then(|b| <[u8; 4]>::try_from(b).ok());
    let seq = k.get(20..28).and_then(|b| <[u8; 8]>::try_from(b).ok());
    match (lognum, seq) {
        (Some(n), Some(s)) => Ok((u32::from_be_bytes(n), u64::from_be_bytes(s))),
        _ => Err(StoreError::Corrupt(format!("id index key of {} bytes", k.len()))),
    }
}

pub fn entry_value(signed: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + signed.len() + payload.len());
    // Signed headers are at most MAX_SIGNED_HEADER (256) bytes, so two bytes always suffice.
    v.extend_from_slice(&(signed.len() as u16).to_be_bytes());
    v.extend_from_slice(signed);
    v.extend_from_slice(payload);
    v
}

pub fn split_entry_value(v: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    let bad = || StoreError::Corrupt(format!("entry record of {} bytes", v.len()));
    let len = v.get(..2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))).ok_or_else(bad)?;
    let signed = v.get(2..2 + len).ok_or_else(bad)?;
    Ok((signed, &v[2 + len..]))
}

pub fn view_state_key(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k
}

pub fn view_pos_prefix(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(1);
    k
}

pub fn view_pos_key(name: &str, author: &[u8; 32]) -> Vec<u8> {
    let mut k = view_pos_prefix(name);
    k.extend_from_slice(author);
    k
}

/// Views keyspace: the content key of a sealed entry addressed to this device, kept from when it
/// was first opened (spec/devices.md, "Retention"). The prefix cannot begin a view name.
pub fn content_key_key(id: &[u8; 32]) -> Vec<u8> {
    [CONTENT_KEY_PREFIX, id].concat()
}

/// Meta key of the epoch of the order of head moves (spec/sync.md, section 8.9).
pub const MOVES_EPOCH_KEY: &str = "moves-epoch";

pub const CONTENT_KEY_PREFIX: &[u8] = b"\xffcontent-key\0";

pub fn to_array32(b: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(b).map_err(|_| StoreError::Corrupt(format!("expected a 32-byte key, found {} bytes", b.len())))
}

pub fn to_u64(b: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(b)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(format!("expected an 8-byte number, found {} bytes", b.len())))
}
