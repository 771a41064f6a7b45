use super::*;
use crate::testkit;

const CHAT: [u8; 16] = [0xc0; 16];
const ME: UserId = UserId(Bytes([0xaa; 32]));
const OTHER: UserId = UserId(Bytes([0xbb; 32]));
/// One of our devices (not this one).
const MINE: [u8; 32] = [0xa1; 32];
const THEIRS: [u8; 32] = [0xb1; 32];

/// A store that reads as `ME` on this device, with `MINE` known as another of our devices.
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Store::open(dir.path().join("s")).expect("open");
    let secret = x25519_dalek::StaticSecret::from([1; 32]);
    s.set_reader(Reader::new(vec![secret], ME, DeviceId(Bytes([0xa0; 32])))).expect("reader");
    s.trust.vouch_unsigned(ME, DeviceId(Bytes(MINE)));
    (dir, s)
}

fn msg(ts: u64, id: u8, user: UserId) -> (Vec<u8>, Vec<u8>) {
    let row = MsgRow { device: DeviceId(Bytes([0; 32])), user: Some(user), text: Some("x".into()), reply_to: None };
    (view::key(&[b"m", &CHAT, &ts.to_be_bytes(), &[id; 32]]), codec::encode(&row))
}

fn ack(target: u8, device: [u8; 32], read: bool) -> (Vec<u8>, Vec<u8>) {
    (view::key(&[b"a", &[target; 32], &device, &7u64.to_be_bytes(), &[u8::from(read)]]), Vec::new())
}

/// Stages rows as the write path does (rows into the chats keyspace, marks followed) and
/// commits them in one batch.
fn stage(s: &Store, rows: &[(Vec<u8>, Vec<u8>)]) {
    let mut marks = MarkStage::new(s.reader.as_ref(), true);
    let own = s.own_devices();
    let ours = |d: &DeviceId| own.contains(d);
    // These rows have no entries behind them: a message is held if its `m` row is stored.
    let locate = |id: &[u8; 32]| -> Result<Option<Place>, StoreError> {
        for item in s.chats.prefix(b"m") {
            let k = item.key()?;
            if k.len() == 57 && k[25..57] == id[..] {
                return Ok(arr(&k[1..17]).zip(arr(&k[17..25])));
            }
        }
        Ok(None)
    };
    let mut batch = s.db.batch();
    for (k, v) in rows {
        marks.row(&mut batch, &s.views, &locate, &ours, k, v).expect("row");
        batch.insert(&s.chats, k.clone(), v.clone());
    }
    marks.finish(&mut batch, &s.views);
    batch.commit().expect("commit");
}

fn mark(s: &Store) -> Option<(u64, u8)> {
    let v = s.views.get(mark_key(&CHAT)).expect("get")?;
    Some((u64::from_be_bytes(v[..8].try_into().expect("ts")), v[8]))
}

fn unread(s: &Store) -> usize {
    s.unread_after_mark(&ChatId(Bytes(CHAT))).expect("unread")
}

#[test]
fn our_own_messages_and_our_devices_reads_move_the_mark_and_only_forward() {
    let (_d, s) = store();
    stage(&s, &[msg(10, 1, OTHER), msg(20, 2, OTHER), msg(30, 3, OTHER)]);
    assert_eq!((mark(&s), unread(&s)), (None, 3));
    let other_chat = |ts: u64, id: u8| {
        let (mut k, v) = msg(ts, id, OTHER);
        k[1..17].copy_from_slice(&[0xc1; 16]);
        (k, v)
    };
    stage(&s, &[other_chat(10, 8), other_chat(20, 9)]);
    stage(&s, &[msg(25, 4, ME)]);
    assert_eq!((mark(&s), unread(&s)), (Some((25, 4)), 1));
    // Each chat has its own mark.
    assert_eq!(s.unread_after_mark(&ChatId(Bytes([0xc1; 16]))).expect("unread"), 2);
    // A read of an older message by one of our devices leaves the mark where it is.
    stage(&s, &[ack(1, MINE, true)]);
    assert_eq!(mark(&s), Some((25, 4)));
    // Within one batch: the read of a message staged in it.
    stage(&s, &[msg(40, 5, OTHER), ack(5, MINE, true), msg(50, 6, OTHER)]);
    assert_eq!((mark(&s), unread(&s)), (Some((40, 5)), 1));
}

#[test]
fn deliveries_reads_by_others_and_foreign_rows_leave_the_mark() {
    let (_d, s) = store();
    stage(&s, &[msg(10, 1, OTHER)]);
    let mut short = ack(1, MINE, true);
    short.0.pop();
    stage(&s, &[ack(1, MINE, false), ack(1, THEIRS, true), short]);
    assert_eq!((mark(&s), unread(&s)), (None, 1));
    let (mut k, v) = msg(20, 2, ME);
    k[1..17].copy_from_slice(&[0xc2; 16]);
    k.push(0);
    stage(&s, &[(k, v)]);
    assert_eq!(s.views.get(mark_key(&[0xc2; 16])).expect("get"), None, "not a message row");
    stage(&s, &[ack(1, MINE, true)]);
    assert_eq!((mark(&s), unread(&s)), (Some((10, 1)), 0), "found where it is stored");
}

#[test]
fn a_read_of_a_message_not_here_yet_counts_when_it_arrives() {
    let (_d, s) = store();
    stage(&s, &[ack(3, MINE, true)]);
    assert!(s.views.get(early_key(&[3; 32])).expect("get").is_some());
    assert_eq!(mark(&s), None);
    stage(&s, &[msg(30, 3, OTHER)]);
    assert_eq!((mark(&s), unread(&s)), (Some((30, 3)), 0));
    assert!(s.views.get(early_key(&[3; 32])).expect("get").is_none(), "the note is spent");
    // In one batch, read first.
    stage(&s, &[ack(4, MINE, true), msg(40, 4, OTHER)]);
    assert_eq!(mark(&s), Some((40, 4)));
    assert!(s.views.get(early_key(&[4; 32])).expect("get").is_none());
}

#[test]
fn unread_counts_the_rows_after_the_mark_up_to_one_past_the_cap() {
    let (_d, s) = store();
    let rows: Vec<_> = (1..=UNREAD_CAP as u64 + 5).map(|i| msg(i, (i % 200) as u8, OTHER)).collect();
    stage(&s, &rows);
    assert_eq!(unread(&s), UNREAD_CAP + 1);
    stage(&s, &[msg(UNREAD_CAP as u64, 255, ME)]);
    // Rows of another chat after this one's do not count.
    let other = view::key(&[b"m", &[0xc1; 16], &1u64.to_be_bytes(), &[1; 32]]);
    stage(&s, &[(other, codec::encode(&1u8))]);
    assert_eq!(unread(&s), 5);
}

#[test]
fn a_rebuild_sets_the_marks_that_staging_set() {
    let (_d, s) = store();
    let chat = |c: u8| view::key(&[b"s", &[c; 16]]);
    let mut rows = vec![(chat(0xc0), Vec::new()), msg(10, 1, OTHER), msg(20, 2, ME), msg(30, 3, OTHER)];
    rows.extend([msg(40, 4, OTHER), ack(4, THEIRS, true), ack(3, MINE, false)]);
    rows.extend([ack(9, MINE, true), ack(8, THEIRS, true)]);
    stage(&s, &rows);
    let staged = (mark(&s), unread(&s));
    assert_eq!(staged, (Some((20, 2)), 2));
    s.views.remove(BUILT).expect("remove");
    assert!(!s.read_marks_built().expect("built"));
    s.rebuild_read_marks().expect("rebuild");
    assert!(s.read_marks_built().expect("built"));
    assert_eq!((mark(&s), unread(&s)), staged);
    assert!(s.views.get(early_key(&[9; 32])).expect("get").is_some(), "our read of a message not here");
    assert!(s.views.get(early_key(&[8; 32])).expect("get").is_none(), "not ours");
    // A read by one of our devices is found by the rebuild too.
    stage(&s, &[ack(4, MINE, true)]);
    let staged = (mark(&s), unread(&s));
    assert_eq!(staged, (Some((40, 4)), 0));
    s.views.remove(mark_key(&CHAT)).expect("remove");
    s.rebuild_read_marks().expect("rebuild");
    assert_eq!((mark(&s), unread(&s)), staged);
}

/// A store from before marks holds a read by one of our devices of a message it does not
/// hold yet, and no note of it: the rebuild notes it, so the message counts as read when it
/// arrives (as the walk counted it).
#[test]
fn a_read_stored_before_marks_existed_counts_when_its_message_arrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut ann, ben) = testkit::ben_wrote_to_ann(dir.path(), 3, |i| format!("m{i}")).expect("seed");
    let from_ben = testkit::entries_of(&ben).expect("entries");
    ann.store.ingest(from_ben.clone(), 0).expect("ingest");
    let chat = ann.chat("Ben").expect("chat");
    assert_eq!(ann.mark_read(&chat, false).expect("read"), 3);
    let anns_own: Vec<_> = testkit::entries_of(&ann)
        .expect("entries")
        .into_iter()
        .filter(|e| !from_ben.iter().any(|b| b.id == e.id))
        .collect();

    let reader =
        || crate::messaging::Reader::new(ann.secrets.agreements(), ann.user_id().expect("user"), ann.device_id());
    let at = dir.path().join("other");
    let mut store = Store::open(&at).expect("open");
    store.set_reader(reader()).expect("reader");
    store.ingest(anns_own, 0).expect("ingest");
    // As a store from before marks left it: no notes, no flag.
    let mut batch = store.db.batch();
    for item in store.views.prefix(EARLY) {
        batch.remove(&store.views, item.key().expect("key").to_vec());
    }
    batch.remove(&store.views, BUILT);
    batch.commit().expect("commit");
    drop(store);

    let mut store = Store::open(&at).expect("reopen");
    store.set_reader(reader()).expect("reader");
    // Opened again: it knows it holds notes without a rebuild to tell it.
    drop(store);
    let mut store = Store::open(&at).expect("reopen");
    assert!(store.early_notes());
    store.set_reader(reader()).expect("reader");
    store.ingest(from_ben, 0).expect("ingest");
    let unread: Vec<usize> = store.chats().expect("chats").iter().map(|c| c.unread).collect();
    assert_eq!(unread, vec![0], "read on another device before they arrived");
}

#[test]
fn a_rebuild_looks_back_exactly_as_far_as_the_cap() {
    // Our message with UNREAD_CAP others after it: the newest UNREAD_CAP + 1 rows hold it.
    let (_d, s) = store();
    let mut rows = vec![(view::key(&[b"s", &CHAT]), Vec::new()), msg(1, 0, ME)];
    rows.extend((2..=UNREAD_CAP as u64 + 1).map(|i| msg(i, (i % 200) as u8 + 1, OTHER)));
    stage(&s, &rows);
    assert_eq!(unread(&s), UNREAD_CAP);
    s.views.remove(mark_key(&CHAT)).expect("remove");
    assert_eq!(unread(&s), UNREAD_CAP + 1);
    s.rebuild_read_marks().expect("rebuild");
    assert_eq!((mark(&s), unread(&s)), (Some((1, 0)), UNREAD_CAP));
    // One more after it, and the rebuild no longer looks that far: "999+" either way.
    stage(&s, &[msg(5_000, 7, OTHER)]);
    s.views.remove(mark_key(&CHAT)).expect("remove");
    s.rebuild_read_marks().expect("rebuild");
    assert_eq!((mark(&s), unread(&s)), (None, UNREAD_CAP + 1));
}
