//! Sync messages and their frames. Every message is canonical MessagePack `[tag, body]` inside a
//! frame `u32 BE length ‖ message`; see spec/sync.md.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::SyncError;
use super::headset::{AUTHOR_PREFIX, Bound, FP_LEN, ID_PREFIX};
use super::sketch::{
    CELL_LEN, Cell, MAX_SYMBOLS, SYMBOLS_PER_MESSAGE, TOW_LEN, cells_to_bytes, tow_from_bytes, tow_to_bytes,
};
use crate::codec::{self, Blob, Bytes};

/// ALPN of this protocol version.
pub const ALPN: &[u8] = b"libra/sync/1";
/// Largest frame either side sends or accepts.
pub const MAX_FRAME: usize = 1024 * 1024;
/// Most ranges in one reconcile message.
pub const MAX_RANGES: usize = 4096;
/// Most items in one reconcile message (all ranges together).
pub const MAX_ITEMS: usize = 32 * 1024;
/// Most (author, seq) requests in one want message.
pub const MAX_WANTS: usize = 4096;
/// Most items in a Since message, and most heads and extra items in its answer.
pub const MAX_SINCE: usize = 4096;

/// One head in an item list: author prefix, seq (0 = "I lack this log"), head id prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub author: Bytes<AUTHOR_PREFIX>,
    pub seq: u64,
    pub id: Bytes<ID_PREFIX>,
}

/// What a range carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeBody {
    /// Nothing to do for this range.
    Skip,
    /// The sender's fingerprint of its items in the range.
    Fingerprint([u8; FP_LEN]),
    /// The sender's complete item list for the range; the receiver answers with `Final`.
    Items(Vec<Item>),
    /// Answer to `Items`: the sender's items that differ, and seq-0 items for logs it lacks.
    Final(Vec<Item>),
}

/// A range `[previous upper, upper)`; the first range starts at the bottom of the key space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub upper: Bound,
    pub body: RangeBody,
}

/// Wire form of a range: `[upper bin | nil, mode, fingerprint bin | nil, items]`.
#[derive(Serialize, Deserialize)]
struct RawRange(Option<Blob>, u8, Option<Bytes<FP_LEN>>, Vec<Item>);

const MODE_SKIP: u8 = 0;
const MODE_FP: u8 = 1;
const MODE_ITEMS: u8 = 2;
const MODE_FINAL: u8 = 3;

impl Range {
    fn to_raw(&self) -> RawRange {
        let upper = self.upper.clone().map(Blob);
        match &self.body {
            RangeBody::Skip => RawRange(upper, MODE_SKIP, None, Vec::new()),
            RangeBody::Fingerprint(fp) => RawRange(upper, MODE_FP, Some(Bytes(*fp)), Vec::new()),
            RangeBody::Items(i) => RawRange(upper, MODE_ITEMS, None, i.clone()),
            RangeBody::Final(i) => RawRange(upper, MODE_FINAL, None, i.clone()),
        }
    }

    fn from_raw(r: RawRange) -> Result<Range, SyncError> {
        let bad = |m: &str| SyncError::Malformed(m.to_owned());
        let upper = r.0.map(|b| b.0);
        if upper.as_ref().is_some_and(|u| u.is_empty() || u.len() > 32) {
            return Err(bad("range bound must be 1 to 32 bytes"));
        }
        let body = match (r.1, r.2, r.3.is_empty()) {
            (MODE_SKIP, None, true) => RangeBody::Skip,
            (MODE_FP, Some(fp), true) => RangeBody::Fingerprint(fp.0),
            (MODE_ITEMS, None, _) => RangeBody::Items(r.3),
            (MODE_FINAL, None, _) => RangeBody::Final(r.3),
            _ => return Err(bad("range mode and fields disagree")),
        };
        Ok(Range { upper, body })
    }
}

/// A sync message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A reconciliation round; an empty list means "reconciliation is complete".
    Reconcile(Vec<Range>),
    /// Entries in wire form (`[signed header, payload]`), in chain order per log.
    Entries(Vec<Vec<u8>>),
    /// Requests for single entries `(author, seq)`, used to collect fork evidence.
    Want(Vec<([u8; 32], u64)>),
    /// The sender has sent every entry the reconciliation asked of it.
    Done,
    /// The sender closes the session with an error code and reason.
    Close { code: u16, reason: String },
    /// First message of a dial to a node that does not know us yet: the token of its invite
    /// and our own card (spec/messaging.md, "Introductions").
    Introduce { token: [u8; 16], card: crate::messaging::ContactCard },
    /// The sender's identity grants its logs to the identities with these tags (its contacts and
    /// group members; spec/sync.md, section 4): the complete list, replacing any earlier one.
    Grant(Vec<[u8; super::GRANT_TAG]>),
    /// The opening from a sync point (spec/sync.md, 8.9): the sender's items of the logs that
    /// moved since its last session with the receiver synced (sorted, unique), and the
    /// fingerprint of all its other items.
    Since { fp: [u8; FP_LEN], items: Vec<Item> },
    /// The answer to Since: for each of its items, in order, the sender's `(seq, id prefix)` of
    /// that log (seq 0: not held); the sender's items of the other logs it moved (sorted,
    /// unique); and, when there are such, the fingerprint of all its items but those of both
    /// lists, for the opener to check (`None`: the sender checked and the rest agrees).
    SinceAnswer { fp: Option<[u8; FP_LEN]>, heads: Vec<(u64, [u8; ID_PREFIX])>, extra: Vec<Item> },
    /// The first-contact opening (spec/sync.md, 8.10): the fingerprint of all the sender's items
    /// and their tug-of-war counters.
    Sketch { fp: [u8; FP_LEN], tow: Box<[i16; TOW_LEN]> },
    /// Coded symbols `from..from + cells.len()` of the sender's items (8.10).
    Symbols { from: u32, cells: Vec<Cell> },
    /// The opener could not peel the symbols so far: send them up to index `upto` (exclusive).
    More { upto: u32 },
    /// What the opener could not settle from the difference it peeled: the author bits of logs
    /// it lacks (send them whole), and `(author bits, seq, tag)` of its heads of logs it could
    /// not place on its own chains (the answerer places them on its own).
    Resolve { lack: Vec<u64>, heads: Vec<(u64, u64, u32)> },
}

const TAG_RECONCILE: u8 = 1;
const TAG_ENTRIES: u8 = 2;
const TAG_WANT: u8 = 3;
const TAG_DONE: u8 = 4;
const TAG_CLOSE: u8 = 5;
const TAG_INTRODUCE: u8 = 6;
const TAG_GRANT: u8 = 7;
const TAG_SINCE: u8 = 8;
const TAG_SINCE_ANSWER: u8 = 9;
const TAG_SKETCH: u8 = 10;
const TAG_SYMBOLS: u8 = 11;
const TAG_MORE: u8 = 12;
const TAG_RESOLVE: u8 = 13;

fn body<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, SyncError> {
    codec::decode_tagged(bytes).map_err(|e| SyncError::Malformed(e.to_string()))
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::Reconcile(r) => {
                codec::encode_tagged(TAG_RECONCILE, &r.iter().map(Range::to_raw).collect::<Vec<_>>())
            }
            Message::Entries(e) => {
                codec::encode_tagged(TAG_ENTRIES, &e.iter().map(|b| Blob(b.clone())).collect::<Vec<_>>())
            }
            Message::Want(w) => {
                codec::encode_tagged(TAG_WANT, &w.iter().map(|(a, s)| (Bytes(*a), *s)).collect::<Vec<_>>())
            }
            Message::Done => codec::encode_tagged(TAG_DONE, &()),
            Message::Close { code, reason } => codec::encode_tagged(TAG_CLOSE, &(code, reason)),
            Message::Introduce { token, card } => codec::encode_tagged(TAG_INTRODUCE, &(Bytes(*token), card)),
            Message::Grant(tags) => {
                codec::encode_tagged(TAG_GRANT, &tags.iter().map(|t| Bytes(*t)).collect::<Vec<_>>())
            }
            Message::Since { fp, items } => codec::encode_tagged(TAG_SINCE, &(Bytes(*fp), items)),
            Message::SinceAnswer { fp, heads, extra } => codec::encode_tagged(
                TAG_SINCE_ANSWER,
                &(fp.map(Bytes), heads.iter().map(|(s, i)| (*s, Bytes(*i))).collect::<Vec<_>>(), extra),
            ),
            Message::Sketch { fp, tow } => codec::encode_tagged(TAG_SKETCH, &(Bytes(*fp), Blob(tow_to_bytes(tow)))),
            Message::Symbols { from, cells } => codec::encode_tagged(TAG_SYMBOLS, &(from, Blob(cells_to_bytes(cells)))),
            Message::More { upto } => codec::encode_tagged(TAG_MORE, upto),
            Message::Resolve { lack, heads } => codec::encode_tagged(TAG_RESOLVE, &(lack, heads)),
        }
    }

    /// Decodes one message, enforcing canonical form and the per-message limits.
    pub fn decode(bytes: &[u8]) -> Result<Message, SyncError> {
        if bytes.len() > MAX_FRAME {
            return Err(SyncError::FrameTooLarge(bytes.len()));
        }
        // `[tag, body]`: 0x92 then the tag as a positive fixint.
        let Some(tag) = codec::peek_tag(bytes) else {
            return Err(SyncError::Malformed("not a [tag, body] message".into()));
        };
        Ok(match tag {
            TAG_RECONCILE => {
                let raw: Vec<RawRange> = body(bytes)?;
                if raw.len() > MAX_RANGES {
                    return Err(SyncError::LimitExceeded("ranges in one message"));
                }
                if raw.iter().map(|r| r.3.len()).sum::<usize>() > MAX_ITEMS {
                    return Err(SyncError::LimitExceeded("items in one message"));
                }
                let ranges = raw.into_iter().map(Range::from_raw).collect::<Result<Vec<_>, _>>()?;
                check_ranges(&ranges)?;
                Message::Reconcile(ranges)
            }
            TAG_ENTRIES => Message::Entries(body::<Vec<Blob>>(bytes)?.into_iter().map(|b| b.0).collect()),
            TAG_WANT => {
                let w: Vec<(Bytes<32>, u64)> = body(bytes)?;
                if w.len() > MAX_WANTS {
                    return Err(SyncError::LimitExceeded("wants in one message"));
                }
                Message::Want(w.into_iter().map(|(a, s)| (a.0, s)).collect())
            }
            TAG_DONE => {
                body::<()>(bytes)?;
                Message::Done
            }
            TAG_CLOSE => {
                let (code, reason): (u16, String) = body(bytes)?;
                Message::Close { code, reason }
            }
            TAG_INTRODUCE => {
                let (token, card): (Bytes<16>, crate::messaging::ContactCard) = body(bytes)?;
                Message::Introduce { token: token.0, card }
            }
            TAG_GRANT => {
                let tags: Vec<Bytes<{ super::GRANT_TAG }>> = body(bytes)?;
                if tags.len() > super::MAX_GRANTS {
                    return Err(SyncError::LimitExceeded("grants in one message"));
                }
                let mut out: Vec<[u8; super::GRANT_TAG]> = tags.into_iter().map(|t| t.0).collect();
                // Canonical: strictly increasing, no duplicates.
                if out.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(SyncError::Malformed("grant tags must be strictly increasing".into()));
                }
                out.shrink_to_fit();
                Message::Grant(out)
            }
            TAG_SINCE => {
                let (fp, items): (Bytes<FP_LEN>, Vec<Item>) = body(bytes)?;
                check_item_list(&items)?;
                Message::Since { fp: fp.0, items }
            }
            TAG_SINCE_ANSWER => {
                #[allow(clippy::type_complexity)]
                let (fp, heads, extra): (
                    Option<Bytes<FP_LEN>>,
                    Vec<(u64, Bytes<ID_PREFIX>)>,
                    Vec<Item>,
                ) = body(bytes)?;
                if heads.len() > MAX_SINCE {
                    return Err(SyncError::LimitExceeded("heads in one since answer"));
                }
                check_item_list(&extra)?;
                Message::SinceAnswer {
                    fp: fp.map(|f| f.0),
                    heads: heads.into_iter().map(|(s, i)| (s, i.0)).collect(),
                    extra,
                }
            }
            TAG_SKETCH => {
                let (fp, tow): (Bytes<FP_LEN>, Blob) = body(bytes)?;
                let tow = tow_from_bytes(&tow.0)
                    .ok_or_else(|| SyncError::Malformed(format!("a sketch has {} counters of 2 bytes", TOW_LEN)))?;
                Message::Sketch { fp: fp.0, tow: Box::new(tow) }
            }
            TAG_SYMBOLS => {
                let (from, cells): (u32, Blob) = body(bytes)?;
                let n = cells.0.len() / CELL_LEN;
                if cells.0.is_empty() || cells.0.len() % CELL_LEN != 0 {
                    return Err(SyncError::Malformed("symbols must be whole 20-byte cells, at least one".into()));
                }
                if n > SYMBOLS_PER_MESSAGE || u64::from(from) + n as u64 > MAX_SYMBOLS as u64 {
                    return Err(SyncError::LimitExceeded("symbols"));
                }
                let cells = cells.0.chunks(CELL_LEN).map(Cell::from_bytes).collect::<Option<Vec<_>>>();
                let cells = cells.ok_or_else(|| SyncError::Malformed("a cell value is not below 2^61 - 1".into()))?;
                Message::Symbols { from, cells }
            }
            TAG_MORE => {
                let upto: u32 = body(bytes)?;
                if upto as usize > MAX_SYMBOLS {
                    return Err(SyncError::LimitExceeded("symbols"));
                }
                Message::More { upto }
            }
            TAG_RESOLVE => {
                #[allow(clippy::type_complexity)]
                let (lack, heads): (Vec<u64>, Vec<(u64, u64, u32)>) = body(bytes)?;
                if lack.len() > MAX_WANTS {
                    return Err(SyncError::LimitExceeded("lacked logs in one resolve"));
                }
                if heads.len() > MAX_SINCE {
                    return Err(SyncError::LimitExceeded("heads in one resolve"));
                }
                let bits = |a: u64| a >> super::sketch::AUTHOR_BITS == 0;
                if lack.windows(2).any(|w| w[0] >= w[1]) || heads.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return Err(SyncError::Malformed("resolve lists must be sorted and unique".into()));
                }
                if !lack.iter().all(|a| bits(*a))
                    || !heads.iter().all(|(a, seq, tag)| bits(*a) && *seq >= 1 && *tag != 0)
                {
                    return Err(SyncError::Malformed("a resolve entry is out of range".into()));
                }
                Message::Resolve { lack, heads }
            }
            t => return Err(SyncError::Malformed(format!("unknown message tag {t}"))),
        })
    }
}

/// A Since list: at most MAX_SINCE items, sorted by author prefix, unique.
fn check_item_list(items: &[Item]) -> Result<(), SyncError> {
    if items.len() > MAX_SINCE {
        return Err(SyncError::LimitExceeded("items in one since list"));
    }
    if items.windows(2).any(|w| w[0].author >= w[1].author) {
        return Err(SyncError::Malformed("items must be sorted and unique".into()));
    }
    Ok(())
}

/// Ranges must tile the key space: strictly increasing bounds, the last one open-ended, and the
/// items of each list sorted, unique and inside their range.
fn check_ranges(ranges: &[Range]) -> Result<(), SyncError> {
    let bad = |m: &str| Err(SyncError::Malformed(m.to_owned()));
    let Some(last) = ranges.last() else { return Ok(()) };
    if last.upper.is_some() {
        return bad("the last range must reach the end of the key space");
    }
    if ranges[..ranges.len() - 1].iter().any(|r| r.upper.is_none()) {
        return bad("only the last range may reach the end of the key space");
    }
    let mut lower: Option<&Vec<u8>> = None;
    for r in ranges {
        if let (Some(l), Some(u)) = (lower, r.upper.as_ref())
            && pad(u) <= pad(l)
        {
            return bad("range bounds must increase");
        }
        if let RangeBody::Items(items) | RangeBody::Final(items) = &r.body {
            for w in items.windows(2) {
                if w[0].author >= w[1].author {
                    return bad("items must be sorted and unique");
                }
            }
            for i in items {
                let key = pad(&i.author.0);
                if lower.is_some_and(|l| key < pad(l)) || r.upper.as_ref().is_some_and(|u| key >= pad(u)) {
                    return bad("item outside its range");
                }
            }
        }
        if let Some(u) = r.upper.as_ref() {
            lower = Some(u);
        }
    }
    Ok(())
}

fn pad(prefix: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 32];
    let n = prefix.len().min(32);
    k[..n].copy_from_slice(&prefix[..n]);
    k
}

/// Frames a message: `u32 BE length ‖ bytes`.
pub fn frame(msg: &Message) -> Vec<u8> {
    let body = msg.encode();
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}
