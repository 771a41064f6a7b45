use super::*;
use crate::log::Entry;
use crate::testkit;

/// Ann's store keys under `prefix` in the views keyspace.
fn views_under(s: &Store, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    s.views.prefix(prefix).map(|i| i.into_inner().map(|(k, v)| (k.to_vec(), v.to_vec())).expect("item")).collect()
}

/// Everything Ben holds, with the last `late` entries of his device log (his messages) apart.
fn split(ben: &crate::node::Node, late: usize) -> (Vec<Entry>, Vec<Entry>) {
    let log = ben.device_id().0.0;
    let (mut early, mut msgs): (Vec<Entry>, Vec<Entry>) =
        testkit::entries_of(ben).expect("entries").into_iter().partition(|e| e.header().author.0 != log);
    let late = msgs.split_off(msgs.len() - late);
    early.extend(msgs);
    (early, late)
}

fn point(s: &Store, log: &[u8; 32]) -> Option<u64> {
    s.views.get(point_key(log)).expect("get").map(|v| u64::from_be_bytes(v[..].try_into().expect("seq")))
}

#[test]
fn a_log_gets_one_point_however_many_messages_and_loses_it_once_acked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut ann, ben) = testkit::ben_wrote_to_ann(dir.path(), 30, |i| format!("m{i}")).expect("seed");
    let log = ben.device_id().0.0;
    let (early, late) = split(&ben, 10);
    let first = late[9].header().seq - 29;
    ann.store.ingest(early, 0).expect("ingest");
    assert_eq!(point(&ann.store, &log), Some(first), "at the first message");
    assert_eq!(views_under(&ann.store, FROM).len(), 1, "one row for 20 messages");
    ann.store.ingest(late, 0).expect("ingest");
    assert_eq!(point(&ann.store, &log), Some(first), "not moved by more messages");
    assert_eq!(ann.store.unacknowledged().expect("waiting").len(), 30);

    assert_eq!(ann.acknowledge().expect("ack"), 30);
    assert_eq!(point(&ann.store, &log), None);
    assert!(ann.store.unacknowledged().expect("waiting").is_empty());
    assert!(ann.store.ack_points().is_empty());
    assert!(ann.store.verify().expect("verify").is_empty());
}

/// Messages stored while the acks are sealed (outside the node) are not covered by them: the
/// point moves to the first of those, not past it.
#[test]
fn messages_stored_while_acks_are_sealed_keep_the_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut ann, ben) = testkit::ben_wrote_to_ann(dir.path(), 12, |i| format!("m{i}")).expect("seed");
    let log = ben.device_id().0.0;
    let (early, late) = split(&ben, 4);
    ann.store.ingest(early, 0).expect("ingest");
    let drafts = ann.draft_acks();
    ann.store.ingest(late.clone(), 0).expect("ingest");
    assert_eq!(ann.append_acks(drafts.seal()).expect("append"), 8);
    let first_late = late[0].header().seq;
    assert_eq!(point(&ann.store, &log), Some(first_late));
    let waiting = ann.store.unacknowledged().expect("waiting");
    assert_eq!(waiting.iter().map(|m| m.seq).collect::<Vec<_>>(), (first_late..first_late + 4).collect::<Vec<_>>());
    assert_eq!(ann.acknowledge().expect("ack"), 4);
    assert_eq!(point(&ann.store, &log), None);
}

/// A store from before points: per-message marks, `t` rows and this device's own delivery
/// acks. Opening it turns the marks into points and drops the rows the rows function no
/// longer yields, so the audit's rebuild still matches; what was pending is acked once.
#[test]
fn a_store_with_marks_and_old_rows_is_upgraded_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut ann, ben) = testkit::ben_wrote_to_ann(dir.path(), 6, |i| format!("m{i}")).expect("seed");
    let log = ben.device_id().0.0;
    let msgs: Vec<_> =
        testkit::entries_of(&ben).expect("entries").into_iter().filter(|e| e.header().author.0 == log).collect();
    ann.store.ingest(msgs.clone(), 0).expect("ingest");
    assert_eq!(ann.acknowledge().expect("ack"), 6);
    // As an older version left it: marks of the last two, `t` rows, our own delivery acks.
    let device = ann.device_id();
    let mut batch = ann.store.db.batch();
    for e in &msgs[msgs.len() - 2..] {
        batch.insert(&ann.store.views, [OLD_MARKS, e.id.as_bytes()].concat(), vec![0; 48]);
    }
    batch.insert(&ann.store.views, [OLD_MARKS, &[9; 32][..]].concat(), vec![0; 48]);
    for e in &msgs {
        batch.insert(&ann.store.chats, [&b"t"[..], e.id.as_bytes()].concat(), vec![0; 24]);
        let a = [&b"a"[..], e.id.as_bytes(), device.as_bytes(), &[0; 8], &[0]].concat();
        batch.insert(&ann.store.chats, a, Vec::new());
    }
    batch.remove(&ann.store.views, super::super::rows_upgrade::DONE);
    batch.remove(&ann.store.views, point_key(&log));
    batch.commit().expect("commit");
    let at = ann.store.path().parent().expect("node dir").to_path_buf();
    drop(ann);

    let mut ann = crate::node::Node::open(&at).expect("reopen");
    assert!(views_under(&ann.store, OLD_MARKS).is_empty());
    assert_eq!(point(&ann.store, &log), Some(msgs[msgs.len() - 2].header().seq), "the first marked");
    assert_eq!(ann.store.chat_rows().expect("rows"), ann.store.chat_rows_rebuilt().expect("rebuilt"));
    assert!(ann.store.verify().expect("verify").is_empty());
    assert_eq!(ann.acknowledge_all().expect("ack"), 2);
    assert_eq!(ann.acknowledge_all().expect("ack"), 0, "acked once");
    assert!(ann.store.ack_points().is_empty());
}

#[test]
fn a_damaged_point_is_ignored_and_the_store_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let at = dir.path().join("s");
    let s = Store::open(&at).expect("open");
    s.views.insert([FROM, &[1; 5][..]].concat(), [1, 2, 3]).expect("insert");
    s.views.insert(point_key(&[2; 32]), [1, 2, 3]).expect("insert");
    s.views.insert(point_key(&[3; 32]), 7u64.to_be_bytes()).expect("insert");
    s.db.persist(fjall::PersistMode::SyncAll).expect("persist");
    drop(s);
    let s = Store::open(&at).expect("opens");
    assert_eq!(s.ack_points().into_iter().collect::<Vec<_>>(), vec![([3; 32], 7)]);
}

/// A point left by a crash, before the start's pass has read from it: a pass over messages
/// that arrived since covers only those, so it must not move the point past the older ones.
#[test]
fn a_pass_over_newer_messages_keeps_a_point_left_by_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut ann, ben) = testkit::ben_wrote_to_ann(dir.path(), 9, |i| format!("m{i}")).expect("seed");
    let log = ben.device_id().0.0;
    let (early, late) = split(&ben, 3);
    ann.store.ingest(early, 0).expect("ingest");
    let first = point(&ann.store, &log).expect("point");
    // As after a restart: the point is on disk, the messages behind it are not in memory.
    ann.store.take_new_messages();
    ann.store.ingest(late, 0).expect("ingest");
    assert_eq!(ann.acknowledge().expect("ack"), 3, "the newer ones");
    assert_eq!(point(&ann.store, &log), Some(first), "the older ones still wait");
    assert_eq!(ann.acknowledge_all().expect("ack"), 9, "from the point: the older and again the newer");
    assert_eq!(point(&ann.store, &log), None);
}
