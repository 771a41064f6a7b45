//! Every per-message limit of the sync wire (spec/sync.md, section 6): a message at its limit
//! decodes to itself, one past it is refused with the limit named (code 3, a misbehaving peer).

use libra_engine::codec::Bytes;
use libra_engine::sync::{
    GRANT_TAG, Item, MAX_FRAME, MAX_GRANTS, MAX_ITEMS, MAX_RANGES, MAX_SINCE, MAX_WANTS, Message, Range, RangeBody,
    SyncError,
};

/// `n` items with increasing author prefixes.
fn items(n: usize) -> Vec<Item> {
    (0..n).map(|i| Item { author: Bytes((i as u128 + 1).to_be_bytes()), seq: 1, id: Bytes([7; 8]) }).collect()
}

fn check(at_limit: Message, past: Message, what: &str) {
    let bytes = at_limit.encode();
    assert!(bytes.len() <= MAX_FRAME, "{what}: the message at the limit fits a frame");
    assert_eq!(Message::decode(&bytes).expect(what), at_limit, "{what}: at the limit");
    match Message::decode(&past.encode()) {
        Err(e @ SyncError::LimitExceeded(w)) => {
            assert_eq!(w, what);
            assert_eq!(e.code(), 3, "{what}: a limit broken is misbehaviour");
        }
        other => panic!("{what}: one past the limit gave {other:?}"),
    }
}

#[test]
fn each_message_limit_holds_at_its_bound_and_refuses_one_more() {
    let ranges = |n: usize| {
        Message::Reconcile(
            (0..n)
                .map(|i| Range {
                    upper: (i + 1 < n).then(|| (i as u32 + 1).to_be_bytes().to_vec()),
                    body: RangeBody::Skip,
                })
                .collect(),
        )
    };
    check(ranges(MAX_RANGES), ranges(MAX_RANGES + 1), "ranges in one message");
    let listed = |n: usize| Message::Reconcile(vec![Range { upper: None, body: RangeBody::Items(items(n)) }]);
    check(listed(MAX_ITEMS), listed(MAX_ITEMS + 1), "items in one message");
    let wants = |n: usize| Message::Want((0..n).map(|i| ([3; 32], i as u64 + 1)).collect());
    check(wants(MAX_WANTS), wants(MAX_WANTS + 1), "wants in one message");
    let grants = |n: usize| {
        Message::Grant(
            (0..n)
                .map(|i| {
                    let mut t = [0u8; GRANT_TAG];
                    t[GRANT_TAG - 4..].copy_from_slice(&(i as u32).to_be_bytes());
                    t
                })
                .collect(),
        )
    };
    check(grants(MAX_GRANTS), grants(MAX_GRANTS + 1), "grants in one message");
    let since = |n: usize| Message::Since { fp: [1; 16], items: items(n) };
    check(since(MAX_SINCE), since(MAX_SINCE + 1), "items in one since list");
    let answer = |n: usize| Message::SinceAnswer { fp: None, heads: vec![(1, [2; 8]); n], extra: Vec::new() };
    check(answer(MAX_SINCE), answer(MAX_SINCE + 1), "heads in one since answer");
    use libra_engine::sync::sketch::{Cell, MAX_SYMBOLS, SYMBOLS_PER_MESSAGE};
    let symbols = |n: usize| Message::Symbols { from: 0, cells: vec![Cell::default(); n] };
    check(symbols(SYMBOLS_PER_MESSAGE), symbols(SYMBOLS_PER_MESSAGE + 1), "symbols");
    // The session's bound: `from` plus the cells.
    let late = |n: usize| Message::Symbols { from: (MAX_SYMBOLS - 4) as u32, cells: vec![Cell::default(); n] };
    check(late(4), late(5), "symbols");
    let more = |n: usize| Message::More { upto: n as u32 };
    check(more(MAX_SYMBOLS), more(MAX_SYMBOLS + 1), "symbols");
    let lack = |n: usize| Message::Resolve { lack: (0..n as u64).collect(), heads: vec![(1, 1, 1)] };
    check(lack(MAX_WANTS), lack(MAX_WANTS + 1), "lacked logs in one resolve");
    let heads =
        |n: usize| Message::Resolve { lack: Vec::new(), heads: (0..n as u64).map(|a| (a << 40, 1, 7)).collect() };
    check(heads(MAX_SINCE), heads(MAX_SINCE + 1), "heads in one resolve");
}

/// The other edges a decoder checks: range bounds of 1 to 32 bytes, items inside
/// `[lower, upper)` (the lower bound included), and a message of at most `MAX_FRAME` bytes.
#[test]
fn range_bounds_item_places_and_the_frame_size_are_checked_at_their_edges() {
    let two = |upper: Vec<u8>, body: RangeBody| {
        Message::Reconcile(vec![Range { upper: Some(upper), body: RangeBody::Skip }, Range { upper: None, body }])
    };
    let round_trips = |m: &Message| assert_eq!(&Message::decode(&m.encode()).expect("decodes"), m);
    let refused = |m: &Message, why: &str| match Message::decode(&m.encode()) {
        Err(SyncError::Malformed(w)) => assert!(w.contains(why), "{w:?} should say {why:?}"),
        other => panic!("expected a refusal ({why}), got {other:?}"),
    };
    round_trips(&two(vec![9; 32], RangeBody::Skip));
    refused(&two(vec![9; 33], RangeBody::Skip), "1 to 32 bytes");
    refused(&two(Vec::new(), RangeBody::Skip), "1 to 32 bytes");

    let item = |first: u8| {
        let mut author = [0u8; 16];
        author[0] = first;
        Item { author: Bytes(author), seq: 1, id: Bytes([7; 8]) }
    };
    round_trips(&two(vec![0x10], RangeBody::Items(vec![item(0x10)])));
    refused(&two(vec![0x10], RangeBody::Items(vec![item(0x0f)])), "outside its range");
    refused(&two(vec![0x10], RangeBody::Final(vec![item(0x0f)])), "outside its range");

    let entries = |len: usize| Message::Entries(vec![vec![0u8; len]]);
    let overhead = entries(MAX_FRAME / 2).encode().len() - MAX_FRAME / 2;
    let at_limit = entries(MAX_FRAME - overhead);
    assert_eq!(at_limit.encode().len(), MAX_FRAME);
    round_trips(&at_limit);
    match Message::decode(&entries(MAX_FRAME - overhead + 1).encode()) {
        Err(SyncError::FrameTooLarge(n)) => assert_eq!(n, MAX_FRAME + 1),
        other => panic!("one byte past a frame gave {other:?}"),
    }
}
