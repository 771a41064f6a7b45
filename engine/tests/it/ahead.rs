//! Entries stamped ahead of the receiver's clock (spec/log.md 7.2, `ahead`): held, never lost,
//! taken once the clock reaches them; and the device whose own stamps ran ahead is told.

use libra_engine::clock::{self, MAX_AHEAD_MS};
use libra_engine::control::{self, BundleCommand, Cx, Request};
use libra_engine::engine::Engine;

/// A device whose clock once ran over a day fast keeps stamping from there (a log never goes
/// back), and contacts hold what it writes: the device says so, and by how much.
#[test]
fn a_device_whose_stamps_ran_ahead_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut ben, _ann) = libra_engine::testkit::ben_wrote_to_ann(dir.path(), 1, |i| format!("m{i}")).expect("nodes");
    let now = clock::wall_ms();
    assert_eq!(ben.clock_ahead_ms(now), None, "an honest clock");
    let text = control::identity_text(&control::identity_json(&ben));
    assert!(!text.contains("warning"), "{text}");
    let two_days = 2 * MAX_AHEAD_MS;
    let signing = ben.secrets.device.signing.clone();
    ben.store.append(&signing, vec![(99, b"from the future".to_vec())], now + two_days).expect("append");
    let ahead = ben.clock_ahead_ms(now).expect("ahead");
    assert!((two_days..two_days + 60_000).contains(&ahead), "{ahead}");
    // Exactly a day ahead is still taken by contacts, so nothing is said.
    assert_eq!(ben.clock_ahead_ms(now + two_days - MAX_AHEAD_MS), None);
    let text = control::identity_text(&control::identity_json(&ben));
    assert!(text.contains("warning: This device's messages are stamped 48 h ahead"), "{text}");
}

/// A bundle entry stamped past what ingest takes now waits in the store (it is not refused and
/// forgotten), and goes in at the next import once the clock has reached it.
#[test]
fn a_bundle_entry_stamped_ahead_waits_and_goes_in_once_the_clock_reaches_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ann, mut ben) = crate::util::ann_and_ben(dir.path());
    let chat = ben.chat(&ann.user_id().expect("user").to_string()).expect("chat");
    ben.send(&chat, "on time", None).expect("send");
    let log = *ben.device_id().as_bytes();
    let on_time = ben.store.head(&log).expect("head").seq;
    // One entry from a clock a day and 8 s fast (room for a loaded machine to export and
    // import before it is due).
    let signing = ben.secrets.device.signing.clone();
    let stamped = std::time::Instant::now();
    ben.store.append(&signing, vec![(99, b"early".to_vec())], clock::wall_ms() + MAX_AHEAD_MS + 8_000).expect("append");
    let file = dir.path().join("ben.libra").display().to_string();
    let export = Request::Bundle(BundleCommand::Export {
        file: file.clone(),
        for_contacts: vec!["ann".into()],
        all: false,
        full: false,
        with_files: false,
    });
    control::execute(&Cx::local(Engine::start(ben)), &export).expect("export");

    let ann = Engine::start(ann);
    let import = Request::Bundle(BundleCommand::Import { file });
    let head = || ann.read(|n| n.store.head(&log).map_or(0, |h| h.seq)).expect("read");
    let r = control::execute(&Cx::local(ann.clone()), &import).expect("import");
    assert!(stamped.elapsed() < std::time::Duration::from_secs(8), "too slow to judge: the entry was due");
    assert_eq!(head(), on_time, "everything up to the early entry went in, and not the early one");
    assert_eq!(r.value["waiting"], 1, "{}", r.value);
    assert!(r.value["rejected"].as_array().is_some_and(Vec::is_empty), "held, not refused: {}", r.value);
    std::thread::sleep(std::time::Duration::from_millis(8_100).saturating_sub(stamped.elapsed()));
    let r = control::execute(&Cx::local(ann.clone()), &import).expect("import again");
    assert_eq!(head(), on_time + 1, "{}", r.value);
    assert_eq!(r.value["waiting"], 0, "{}", r.value);
}

/// Over a live session: an entry stamped a day and 3 s ahead of Ann's clock is held when Ben
/// pushes it, and taken by the same session once its time comes (no reconnect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_session_takes_a_held_entry_once_its_time_comes() {
    use crate::util::{HostExt, befriend, host, live, wait_until};
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
    befriend(&a, &b);
    let session = live(&a, &b);
    let log = b.device();
    let head = |h: &libra_engine::net::Host| h.read_node(|n| n.store.head(&log).map_or(0, |h| h.seq));
    wait_until("Ann holds Ben's device log", || head(&a) == head(&b) && head(&a) > 0).await;
    let stamped = std::time::Instant::now();
    let seq = b.with_node(|n| {
        let signing = n.secrets.device.signing.clone();
        let at = clock::wall_ms() + MAX_AHEAD_MS + 3_000;
        n.store.append(&signing, vec![(99, b"early".to_vec())], at).expect("append")[0].header().seq
    });
    wait_until("the held entry taken", || head(&a) == seq).await;
    let waited = stamped.elapsed();
    assert!(waited >= std::time::Duration::from_millis(2_500), "stored {waited:?} after it was written: not held");
    assert!(!session.is_finished(), "the same live session took it");
}

/// A one-shot sync says how many entries it held back (they go with the session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_sync_reports_what_it_held_back() {
    use crate::util::{HostExt, befriend, host};
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
    befriend(&a, &b);
    b.with_node(|n| {
        let signing = n.secrets.device.signing.clone();
        let at = clock::wall_ms() + MAX_AHEAD_MS + 60_000;
        n.store.append(&signing, vec![(99, b"early".to_vec()), (99, b"after".to_vec())], at).expect("append");
    });
    let out = a.connect(b.local_addr().expect("addr"), Some(b.device()), false).await.expect("sync");
    assert!(out.synced);
    assert_eq!(out.held_ahead, 2, "the early entry and the one after it");
    let log = b.device();
    let (held_at_a, at_b) = (
        a.read_node(|n| n.store.head(&log).map_or(0, |h| h.seq)),
        b.read_node(|n| n.store.head(&log).map_or(0, |h| h.seq)),
    );
    assert_eq!(held_at_a + 2, at_b);
}
