//! The writer and fsync threads on a real store: every caller answered with its own outcome,
//! events before answers, commit order kept, a panic or a failed group confined to itself, the
//! store reopened after a failure, and nothing taken once stopped.

use std::sync::{Arc, Mutex};

use super::fsync::{self, Committed};
use super::writer::Completion;
use super::*;

/// What each completion was told, in the order told.
type Answers = Arc<Mutex<Vec<(usize, Result<(), EngineError>)>>>;

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::init(&dir.path().join("n"), "Ann").expect("init");
    (dir, e)
}

/// Appends one entry to the device log; its seq.
fn append(n: &mut Node) -> u64 {
    let key = n.secrets.device.signing.clone();
    let e = n.store.append(&key, vec![(99, b"x".to_vec())], crate::clock::wall_ms()).expect("append");
    e[0].header().seq
}

fn events(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// The heads of `log` the Stored events name, in order.
fn stored(events: &[Event], log: [u8; 32]) -> Vec<u64> {
    let logs = events.iter().filter_map(|e| if let Event::Stored { logs } = e { Some(logs.clone()) } else { None });
    logs.flatten().filter(|(a, _)| *a == log).map(|(_, s)| s).collect()
}

#[test]
fn a_write_is_answered_after_its_stored_event() {
    let (_d, e) = engine();
    let mut rx = e.subscribe();
    let seq = e.write(append).expect("write");
    // The group's events go out before its callers are answered: whoever hears the answer
    // can find the event already sent.
    assert_eq!(stored(&events(&mut rx), e.device()), vec![seq]);
    assert_eq!(e.read(|n| n.store.head(&e.device()).map(|h| h.seq)).expect("read"), Some(seq));
}

#[test]
fn concurrent_writers_each_get_their_own_answer() {
    let (_d, e) = engine();
    let before = e.read(|n| n.store.head(&e.device()).map_or(0, |h| h.seq)).expect("read");
    let mut rx = e.subscribe();
    let seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..8).map(|_| s.spawn(|| (0..25).map(|_| e.write(append).expect("write")).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("writer thread")).collect()
    });
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (before + 1..=before + 200).collect::<Vec<_>>(), "each caller its own entry");
    assert_eq!(e.shared.queued.load(Ordering::SeqCst), 0, "every queued job was taken");
    // The events name the head after each group: the last one is the last entry.
    let heads = stored(&events(&mut rx), e.device());
    assert_eq!(heads.last(), Some(&(before + 200)));
    assert!(heads.windows(2).all(|w| w[0] < w[1]), "groups are announced in commit order: {heads:?}");
}

#[test]
fn a_panicking_write_fails_alone() {
    let (_d, e) = engine();
    let r = e.write(|_| -> u64 { panic!("boom") });
    assert!(matches!(&r, Err(EngineError::Panicked(m)) if m == "boom"), "{r:?}");
    let r = e.write(|_| -> u64 { panic!("{}", String::from("formatted boom")) });
    assert!(matches!(&r, Err(EngineError::Panicked(m)) if m == "formatted boom"), "{r:?}");
    let seq = e.write(append).expect("the writer goes on");
    assert!(matches!(e.write_here(|_| -> u64 { panic!("here") }), Err(EngineError::Panicked(_))));
    assert_eq!(e.write_here(append).expect("write here"), seq + 1);
}

#[test]
fn settling_answers_in_commit_order_and_a_failed_group_says_why() {
    let (_d, e) = engine();
    let mut rx = e.subscribe();
    let answers: Answers = Arc::default();
    let done = |i: usize| -> Completion {
        let answers = answers.clone();
        Box::new(move |r| answers.lock().expect("answers").push((i, r)))
    };
    let k = [7; 32];
    let syncer = e.shared.node.write().expect("lock").as_mut().map(|n| n.store.syncer());
    let groups = vec![
        Committed { syncer, failed: None, changed: vec![(k, 1)], interest: true, completions: vec![done(0), done(1)] },
        Committed {
            syncer: None,
            failed: Some("disk full".into()),
            changed: vec![(k, 2)],
            interest: true,
            completions: vec![done(2)],
        },
        Committed { syncer: None, failed: None, changed: Vec::new(), interest: false, completions: vec![done(3)] },
    ];
    assert_eq!(fsync::settle(&e.shared, groups), Ok(()), "the last group's outcome");
    let got = answers.lock().expect("answers");
    assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(got[0].1.is_ok() && got[1].1.is_ok() && got[3].1.is_ok());
    assert!(
        matches!(&got[2].1, Err(EngineError::Unavailable(m)) if m.starts_with("could not write (disk full)")),
        "{:?}",
        got[2].1
    );
    let ev = events(&mut rx);
    assert_eq!(stored(&ev, k), vec![1], "a failed group announces nothing stored");
    assert_eq!(ev.iter().filter(|e| matches!(e, Event::Interest)).count(), 1);
    assert!(ev.iter().any(|e| matches!(e, Event::Storage { ok: false, detail } if detail.contains("disk full"))));
    let last_failed = vec![Committed {
        syncer: None,
        failed: Some("still full".into()),
        changed: Vec::new(),
        interest: false,
        completions: Vec::new(),
    }];
    assert!(fsync::settle(&e.shared, last_failed).is_err());
}

#[test]
fn a_failed_store_is_reopened_by_the_next_write() {
    let (_d, e) = engine();
    let mut rx = e.subscribe();
    let first = e.write(append).expect("write");
    e.read(|n| n.store.fail_for_test("No space left on device")).expect("read");
    let second = e.write(append).expect("the next write reopens the store");
    assert_eq!(second, first + 1, "the reopened store holds what was written before");
    let ev = events(&mut rx);
    assert!(
        ev.iter().any(|e| matches!(e, Event::Storage { ok: true, detail } if detail == "store reopened")),
        "{ev:?}"
    );
    assert!(!e.read(|n| n.store.failed()).expect("read"));
}

#[test]
fn allowing_a_peer_refreshes_who_may_connect() {
    let (_d, e) = engine();
    let mut rx = e.subscribe();
    let key = [9; 32];
    assert!(!e.is_allowed(&key));
    e.allow(key, None).expect("allow");
    assert!(e.is_allowed(&key));
    assert!(events(&mut rx).iter().any(|e| matches!(e, Event::Interest)));
}

#[test]
fn once_stopped_nothing_more_is_written() {
    let (_d, e) = engine();
    let seq = e.write(append).expect("write");
    e.shutdown();
    assert!(matches!(e.write(append), Err(EngineError::Stopped)));
    assert!(matches!(e.write_here(append), Err(EngineError::Unavailable(m)) if m == "the engine has stopped"));
    // What was written before is on disk.
    let dir = e.dir().to_path_buf();
    drop(e);
    let n = Node::open(&dir).expect("reopen");
    assert_eq!(n.store.head(n.device_id().as_bytes()).map(|h| h.seq), Some(seq));
}

#[test]
fn a_store_that_cannot_be_reopened_refuses_writes_until_it_can() {
    let (d, e) = engine();
    let first = e.write(append).expect("write");
    e.read(|n| n.store.fail_for_test("No space left on device")).expect("read");
    // The directory is gone when the next write would reopen the store.
    let (path, aside) = (d.path().join("n"), d.path().join("aside"));
    std::fs::rename(&path, &aside).expect("move the store away");
    let r = e.write(append);
    assert!(matches!(&r, Err(EngineError::Unavailable(m)) if m == "the store could not be reopened"), "{r:?}");
    std::fs::rename(&aside, &path).expect("move it back");
    assert_eq!(e.write(append).expect("written once it can be reopened"), first + 1);
}

/// Ann's engine, and the entries of Ben's log in which he wrote her `n` messages.
fn ann_and_bens_log(dir: &std::path::Path, n: usize) -> (Engine, Vec<crate::log::Entry>) {
    let (ann, ben) = crate::testkit::ben_wrote_to_ann(dir, n, |i| format!("m{i}")).expect("nodes");
    let entries = crate::testkit::entries_of(&ben).expect("entries");
    (Engine::start(ann), entries)
}

/// The seq of the engine's own device log (its acks move it).
fn own_head(e: &Engine) -> u64 {
    e.read(|n| n.store.head(&e.device()).map_or(0, |h| h.seq)).expect("read")
}

fn all_acknowledged(e: &Engine) -> bool {
    e.read(|n| n.store.unacknowledged()).expect("read").expect("unacknowledged").is_empty()
}

#[test]
fn messages_from_others_are_acknowledged_once_no_write_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (e, entries) = ann_and_bens_log(dir.path(), 5);
    let before = own_head(&e);
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
    rt.block_on(e.ingest(entries)).expect("ingest");
    // Nothing else waits: the writer acknowledges right after the ingest's group, unasked.
    std::thread::sleep(std::time::Duration::from_millis(300));
    e.wait_durable().expect("durable");
    assert_eq!(own_head(&e), before + 1, "one acknowledgement for one chat and sender");
    assert!(all_acknowledged(&e));
}

/// A flood of messages is acknowledged at most once per pause, and what arrived last is
/// acknowledged when the pause ends, without another write to carry it.
#[test]
fn acknowledgements_of_a_flood_wait_out_the_pause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (e, entries) = ann_and_bens_log(dir.path(), 40);
    let before = own_head(&e);
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
    let t = std::time::Instant::now();
    let batches: Vec<Vec<_>> = entries.chunks(2).map(<[_]>::to_vec).collect();
    for b in &batches {
        // Each ingest returns once stored: without the pause, each would be acknowledged alone.
        rt.block_on(e.ingest(b.clone())).expect("ingest");
    }
    let took = t.elapsed();
    std::thread::sleep(writer::ACK_PAUSE * 4);
    e.wait_durable().expect("durable");
    let acks = own_head(&e) - before;
    assert!(all_acknowledged(&e));
    let most = 2 + (took.as_millis() / writer::ACK_PAUSE.as_millis().max(1)) as u64;
    assert!(acks >= 1 && acks <= most, "{acks} acks for {} ingests in {took:?}", batches.len());
    // Fewer acks than ingests by far (without the pause: 14 for 22 here), unless the machine
    // was so slow that the ingests spanned many pauses.
    if took < writer::ACK_PAUSE * 8 {
        assert!(acks < batches.len() as u64 / 2, "{acks} acks for {} ingests in {took:?}", batches.len());
    }
}

/// Keeps the writer busy with a write until the returned sender is used; the handle is that
/// write's thread. Returns once the writer is busy.
fn hold_the_writer(e: &Engine) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<Result<(), EngineError>>) {
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let (started, busy) = std::sync::mpsc::channel::<()>();
    let blocker = {
        let e = e.clone();
        std::thread::spawn(move || {
            e.write(move |_| {
                let _ = started.send(());
                let _ = hold.recv();
            })
        })
    };
    busy.recv().expect("the writer is busy");
    (release, blocker)
}

/// Writes queued while the writer is busy go in one group; groups queued for the fsync thread
/// share one fsync.
#[test]
fn queued_writes_share_a_group_and_queued_groups_share_an_fsync() {
    let (_d, e) = engine();
    // Read before the writer is held: it holds the node while it runs a write.
    let before = e.read(|n| n.store.head(&e.device()).map_or(0, |h| h.seq)).expect("read");
    let (release, blocker) = hold_the_writer(&e);
    let mut rx = e.subscribe();
    let writers: Vec<_> = (0..20)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || e.write(append).expect("write"))
        })
        .collect();
    while e.shared.queued.load(Ordering::SeqCst) < 20 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    release.send(()).expect("release");
    blocker.join().expect("blocker").expect("blocked write");
    let mut seqs: Vec<u64> = writers.into_iter().map(|w| w.join().expect("writer")).collect();
    seqs.sort_unstable();
    let groups: Vec<u64> = stored(&events(&mut rx), e.device()).into_iter().filter(|s| *s > before).collect();
    assert_eq!(groups, vec![seqs[19]], "the 20 queued writes were one group");

    // Three committed groups waiting for the fsync thread: one fsync settles them all.
    let (tx, work) = std::sync::mpsc::channel();
    let answered: Answers = Arc::default();
    for i in 0..3 {
        let syncer = e.shared.node.write().expect("lock").as_mut().map(|n| n.store.syncer());
        let answered = answered.clone();
        let done: Completion = Box::new(move |r| answered.lock().expect("answers").push((i, r)));
        let c = Committed { syncer, failed: None, changed: Vec::new(), interest: false, completions: vec![done] };
        tx.send(fsync::Work::Group(c)).expect("queue");
    }
    drop(tx);
    let fsyncs = e.shared.fsyncs.load(Ordering::SeqCst);
    fsync::run(&e.shared, &work);
    assert_eq!(e.shared.fsyncs.load(Ordering::SeqCst) - fsyncs, 1);
    assert_eq!(answered.lock().expect("answers").iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 2]);
}

/// Sends queued while the writer is busy are signed and stored as one batch (one head move,
/// one commit), each sender answered with its own entry in the order queued; a write queued
/// between them keeps its place and splits the batch.
#[test]
fn queued_sends_are_stored_as_one_batch_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ann, ben) = crate::testkit::ben_wrote_to_ann(dir.path(), 0, |i| format!("m{i}")).expect("nodes");
    let ben = ben.user_id().expect("ben").to_string();
    let e = Engine::start(ann);
    let chat = e.read(|n| n.chat(&ben)).expect("read").expect("chat");
    let head = |e: &Engine| e.read(|n| n.store.head(&e.device()).map(|h| (h.seq, h.moved))).expect("read");
    let (seq0, moved0) = head(&e).expect("head");
    let plan = e.read(|n| n.seal_plan(&chat.users)).expect("read").expect("plan");
    let (release, blocker) = hold_the_writer(&e);
    // Queued one at a time, so the queue's order is known.
    let queue = |k: usize, job: Box<dyn FnOnce(&Engine) -> u64 + Send>| {
        let e2 = e.clone();
        let t = std::thread::spawn(move || job(&e2));
        while e.shared.queued.load(Ordering::SeqCst) < k {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        t
    };
    // Sealed before: a send reads whom to seal to, and the busy writer holds the node.
    let send = |i: usize| -> Box<dyn FnOnce(&Engine) -> u64 + Send> {
        let body = Node::text_body(&chat, &format!("s{i}"), None).expect("body");
        let sealing = plan.seal(&body).expect("seal");
        Box::new(move |e: &Engine| e.queue_sealed(sealing).wait().expect("send").header().seq)
    };
    let mut threads = Vec::new();
    for i in 0..5 {
        threads.push(queue(i + 1, send(i)));
    }
    threads.push(queue(6, Box::new(|e: &Engine| e.write(append).expect("write"))));
    for i in 5..10 {
        threads.push(queue(i + 2, send(i)));
    }
    release.send(()).expect("release");
    blocker.join().expect("blocker").expect("blocked write");
    let seqs: Vec<u64> = threads.into_iter().map(|t| t.join().expect("sender")).collect();
    assert_eq!(seqs, (seq0 + 1..=seq0 + 11).collect::<Vec<_>>(), "each its own entry, in the order queued");
    let (seq, moved) = head(&e).expect("head");
    assert_eq!(seq, seq0 + 11);
    assert_eq!(moved - moved0, 3, "five sends, the write, five sends: three commits");
    let texts: Vec<String> = e
        .read(|n| n.store.messages(&chat.chat, 20))
        .expect("read")
        .expect("messages")
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(texts, (0..10).map(|i| format!("s{i}")).collect::<Vec<_>>());
}

/// A large ingest is stored chunk by chunk, and the writer lets waiting readers in between
/// them: a reader polling all along sees the log grow, not nothing and then everything, and
/// every message ends up stored and readable.
#[test]
fn readers_get_the_node_between_the_chunks_of_a_large_ingest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (e, entries) = ann_and_bens_log(dir.path(), 600);
    let mut per_log: BTreeMap<[u8; 32], u64> = BTreeMap::new();
    for x in &entries {
        let seq = per_log.entry(x.header().author.0).or_default();
        *seq = (*seq).max(x.header().seq);
    }
    let (&ben, &last) = per_log.iter().max_by_key(|(_, s)| **s).expect("a log");
    let stop = AtomicBool::new(false);
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
    let seen: BTreeSet<u64> = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut seen = BTreeSet::new();
            while !stop.load(Ordering::SeqCst) {
                seen.insert(e.read(|n| n.store.head(&ben).map_or(0, |h| h.seq)).expect("read"));
            }
            seen
        });
        let report = rt.block_on(e.ingest(entries.clone())).expect("ingest");
        stop.store(true, Ordering::SeqCst);
        assert_eq!(report.accepted, entries.len(), "{report:?}");
        reader.join().expect("reader")
    });
    let between: Vec<u64> = seen.iter().copied().filter(|&s| s > 0 && s < last).collect();
    assert!(!between.is_empty(), "the reader saw only {seen:?} of a log growing to {last}");
    assert_eq!(e.read(|n| n.store.head(&ben).map(|h| h.seq)).expect("read"), Some(last));
}
