//! The reconciliation core, driven in memory by the engine's reference pair driver: two nodes,
//! messages pumped between them, no sockets (like quinn-proto's `Pair`).

use std::collections::BTreeMap;

use libra_engine::log::Entry;
use libra_engine::sync::memory::{MemLogs as MemNode, Transcript, run_pair};
use proptest::prelude::*;

use crate::util::{chain, key};

fn sync_pair(a: &mut MemNode, b: &mut MemNode) -> Transcript {
    run_pair(a, b, true).expect("sessions converge")
}

/// Both sides hold the same length of every log that neither found forked (forked logs are
/// checked by the caller, which knows what each side held).
fn assert_union(a: &MemNode, b: &MemNode, full: &BTreeMap<[u8; 32], Vec<Entry>>) {
    for (author, log) in full {
        if a.forked.contains(author) || b.forked.contains(author) {
            continue;
        }
        let la = a.logs.get(author).map_or(0, Vec::len);
        let lb = b.logs.get(author).map_or(0, Vec::len);
        assert_eq!(la, lb, "log lengths differ");
        assert!(la <= log.len());
    }
}

#[test]
fn identical_stores_need_one_round_trip() {
    // Below SKETCH_MIN the opening is one fingerprint range; from it, a 408-byte sketch whose
    // fingerprint matches. Either way B answers with the empty reconcile, then Done both ways.
    for (logs, most) in [(100, 128), (300, 512)] {
        assert_eq!(logs >= libra_engine::sync::SKETCH_MIN, most == 512);
        let mut a = MemNode::default();
        for i in 0..logs {
            let k = key(&format!("log {i}"));
            a.logs.insert(k.verifying_key().to_bytes(), chain(&k, 3));
        }
        let mut b = a.clone();
        let s = sync_pair(&mut a, &mut b);
        assert_eq!(s.round_trips(), 1);
        assert!(s.bytes < most, "{logs} logs: {s:?}");
    }
}

#[test]
fn three_nodes_in_a_line_converge() {
    let (mut a, mut b, mut c) = (MemNode::default(), MemNode::default(), MemNode::default());
    for (node, name) in [(&mut a, "a"), (&mut b, "b"), (&mut c, "c")] {
        let k = key(name);
        node.logs.insert(k.verifying_key().to_bytes(), chain(&k, 5));
    }
    sync_pair(&mut a, &mut b);
    sync_pair(&mut b, &mut c);
    // A's entries reached C through B.
    assert!(c.logs.contains_key(&key("a").verifying_key().to_bytes()));
    sync_pair(&mut a, &mut b);
    for n in [&a, &b, &c] {
        assert_eq!(n.logs.len(), 3);
        assert!(n.logs.values().all(|l| l.len() == 5));
    }
}

#[test]
fn an_interrupted_sync_resumes_without_resending() {
    let k = key("big");
    let full = chain(&k, 200);
    let mut a = MemNode::default();
    a.logs.insert(k.verifying_key().to_bytes(), full.clone());
    let mut b = MemNode::default();
    // The first session delivered 120 entries before the connection dropped.
    b.logs.insert(k.verifying_key().to_bytes(), full[..120].to_vec());
    let s = sync_pair(&mut a, &mut b);
    assert_eq!(b.logs[&k.verifying_key().to_bytes()].len(), 200);
    let entry_bytes: usize = full[120..].iter().map(|e| e.encode().len()).sum();
    assert!(s.bytes < entry_bytes + 1024, "resent too much: {} for {entry_bytes}", s.bytes);
}

#[test]
fn forks_are_found_by_both_sides() {
    let k = key("mallory");
    let base = chain(&k, 4);
    let other = libra_engine::log::sign_entry(&k, Some((2, base[1].id)), 9_999_999, 99, b"other".to_vec());
    let (mut a, mut b) = (MemNode::default(), MemNode::default());
    let author = k.verifying_key().to_bytes();
    a.logs.insert(author, base.clone());
    b.logs.insert(author, vec![base[0].clone(), base[1].clone(), other]);
    sync_pair(&mut a, &mut b);
    assert!(a.forked.contains(&author) && b.forked.contains(&author));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random splits of random logs (some forked) reconcile to exactly the union.
    #[test]
    fn random_stores_reconcile_to_the_union(
        logs in proptest::collection::vec((1usize..12, 0usize..13, 0usize..13, any::<bool>()), 0..60),
    ) {
        let (mut a, mut b) = (MemNode::default(), MemNode::default());
        let mut full = BTreeMap::new();
        // The logs given a second entry at one position: what each side held of them.
        let mut forks = BTreeMap::new();
        for (i, (len, ca, cb, fork)) in logs.iter().enumerate() {
            let k = key(&format!("p{i}"));
            let author = k.verifying_key().to_bytes();
            let log = chain(&k, *len);
            let (ca, cb) = ((*ca).min(*len), (*cb).min(*len));
            if ca > 0 { a.logs.insert(author, log[..ca].to_vec()); }
            if cb > 0 {
                let mut mine = log[..cb].to_vec();
                if *fork && cb >= 2 && ca >= cb {
                    let prev = &mine[cb - 2];
                    let alt = libra_engine::log::sign_entry(&k, Some((prev.header().seq, prev.id)), 50_000_000, 7, b"alt".to_vec());
                    mine[cb - 1] = alt;
                    forks.insert(author, (ca, cb));
                }
                b.logs.insert(author, mine);
            }
            full.insert(author, log);
        }
        sync_pair(&mut a, &mut b);
        assert_union(&a, &b, &full);
        // A fork is found by both sides, and neither takes anything more of that log.
        for (author, (ca, cb)) in &forks {
            prop_assert!(a.forked.contains(author) && b.forked.contains(author), "fork of {ca} / {cb} not found");
            prop_assert_eq!((a.logs[author].len(), b.logs[author].len()), (*ca, *cb));
        }
        prop_assert!(a.forked.iter().chain(&b.forked).all(|f| forks.contains_key(f)), "a fork where there was none");
        for (author, log) in &full {
            if forks.contains_key(author) { continue; }
            let have = a.logs.get(author).map_or(0, Vec::len);
            let want = logs.iter().enumerate().find(|(i, _)| key(&format!("p{i}")).verifying_key().to_bytes() == *author)
                .map(|(_, (len, ca, cb, _))| (*ca).min(*len).max((*cb).min(*len))).unwrap_or(0);
            prop_assert_eq!(have, want);
            prop_assert!(have <= log.len());
        }
    }
}

/// The same driver that runs QUIC streams runs any ordered byte stream: two engines over an
/// in-memory pipe sync, introduce, and push live, with no socket at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_sync_over_an_in_memory_byte_stream() {
    use libra_engine::engine::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Engine::init(&dir.path().join("a"), "Ann").expect("a");
    let b = Engine::init(&dir.path().join("b"), "Ben").expect("b");
    // Ann adds Ben's invite; Ben learns Ann from her introduction on the stream.
    let ib = b.write(|n| n.invite(None, 1).expect("invite")).expect("write");
    a.write(move |n| n.add_contact(&ib, None).expect("add")).expect("write");
    let (ta, tb) = sessions_over_a_pipe(&a, &b, true, |w| w);
    let ann = a.read(|n| n.user_id().expect("user")).expect("read");
    let wait = |e: &Engine, f: &dyn Fn(&libra_engine::node::Node) -> bool| {
        let e = e.clone();
        (0..400).any(|_| {
            if e.read(f).expect("read") {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            false
        })
    };
    assert!(wait(&b, &|n| n.store.head(ann.as_bytes()).is_some()), "Ann's log never reached Ben");
    assert!(wait(&b, &|n| n.store.contacts().expect("contacts").iter().any(|(u, _)| *u == ann)), "Ben did not add Ann");
    // Live: Ann says something; it arrives with no new session.
    let chat = a.read(|n| n.chat(&n.store.contacts().expect("c")[0].0.to_string()).expect("chat")).expect("read");
    let sent = a.send(&chat, "over a pipe", None).expect("send");
    assert!(wait(&b, &|n| n.store.get(&sent.id).expect("get").is_some()), "the live push did not arrive");
    ta.abort();
    tb.abort();
    // Close the stores before their directory goes.
    a.shutdown();
    b.shutdown();
}

/// A stranger gets in only by an Introduce with a live invite token: one whose invite expired
/// is refused (code 6) and added as nobody, and so is one that sends anything else first; one
/// with an open invite, by the same path, is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_with_an_expired_invite_or_no_introduction_is_refused() {
    use libra_engine::engine::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let ben = Engine::init(&dir.path().join("ben"), "Ben").expect("ben");
    let ann = Engine::init(&dir.path().join("ann"), "Ann").expect("ann");
    let cat = Engine::init(&dir.path().join("cat"), "Cat").expect("cat");
    let dan = Engine::init(&dir.path().join("dan"), "Dan").expect("dan");
    // An invite valid for 1 ms, used after it expired; another still open, for Dan.
    let expired = ben.write(|n| n.invite_for(None, 1, 1).expect("invite")).expect("write");
    let open = ben.write(|n| n.invite(None, 1).expect("invite")).expect("write");
    std::thread::sleep(std::time::Duration::from_millis(5));
    ann.write(move |n| n.add_contact(&expired, None).expect("add")).expect("write");
    dan.write(move |n| n.add_contact(&open, None).expect("add")).expect("write");
    for (stranger, admitted) in [(&ann, false), (&cat, false), (&dan, true)] {
        let (ts, tb) = sessions_over_a_pipe(stranger, &ben, false, |w| w);
        let at_ben = tb.await.expect("ben's side");
        let name = stranger.read(|n| n.name().unwrap_or_default()).expect("read");
        let code = at_ben.end().map(|e| e.code());
        assert_eq!(code, Some(if admitted { 0 } else { 6 }), "{name}");
        ts.abort();
        let user = stranger.read(|n| n.user_id().expect("user")).expect("read");
        let (contact, held) = ben
            .read(|n| {
                let contact = n.store.contacts().expect("contacts").iter().any(|(u, _)| *u == user);
                (contact, n.store.head(user.as_bytes()).is_some())
            })
            .expect("read");
        assert_eq!((contact, held), (admitted, admitted), "{name}: a contact of Ben's, holding its log");
    }
    for e in [ann, ben, cat, dan] {
        e.shutdown();
    }
}

/// Interest sets are cached between sessions; every change of who may connect must show in
/// the next answer: a contact blocked leaves the accept set and the grants, one unblocked
/// comes back, and another device's offer follows.
#[test]
fn cached_interest_sets_follow_blocking_and_contacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut ann, ben) = libra_engine::testkit::ben_wrote_to_ann(dir.path(), 0, |_| String::new()).expect("nodes");
    let ben_user = ben.user_id().expect("user");
    let ben_device = *ben.device_id().as_bytes();
    let accepted = ann.accepted_logs().expect("accept");
    assert!(accepted.contains(&ben_device) && accepted.contains(ben_user.as_bytes()));
    let grants = ann.grant_tags().expect("grants");
    assert_eq!(grants.len(), 1);
    let offer = ann.offer(&ben_device).expect("offer");
    assert!(offer.logs.contains(ann.device_id().as_bytes()));
    // Asked again with nothing changed: the same set, not a new one.
    assert!(std::sync::Arc::ptr_eq(&accepted, &ann.accepted_logs().expect("accept")));

    ann.set_blocked(&ben_user, true).expect("block");
    let blocked = ann.accepted_logs().expect("accept");
    assert!(
        !blocked.contains(&ben_device) && !blocked.contains(ben_user.as_bytes()),
        "a blocked contact is still accepted"
    );
    assert!(ann.grant_tags().expect("grants").is_empty(), "a blocked contact still gets our grant");

    ann.set_blocked(&ben_user, false).expect("unblock");
    assert!(ann.accepted_logs().expect("accept").contains(&ben_device));
    assert_eq!(ann.grant_tags().expect("grants"), grants);
}

/// Takes every write into its own buffer and passes it on only when flushed — as a TLS stream
/// does when the transport under it is full (tokio-rustls), which a relayed session runs over.
struct FlushOnly<W> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for FlushOnly<W> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        b: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.get_mut().buf.extend_from_slice(b);
        std::task::Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        while !this.buf.is_empty() {
            match std::pin::Pin::new(&mut this.inner).poll_write(cx, &this.buf) {
                std::task::Poll::Ready(Ok(0)) => {
                    return std::task::Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                std::task::Poll::Ready(Ok(n)) => drop(this.buf.drain(..n)),
                std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
        std::pin::Pin::new(&mut this.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.as_mut().poll_flush(cx) {
            std::task::Poll::Ready(Ok(())) => std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx),
            other => other,
        }
    }
}

/// A relayed cold sync sometimes died with "peer stalled inside a frame": the driver wrote the
/// end of a frame into the TLS stream's buffer and waited for the peer without flushing it. The
/// driver now flushes whatever it wrote before it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_sends_only_when_flushed_still_syncs() {
    use libra_engine::engine::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, _) = libra_engine::testkit::own_devices(dir.path(), 50, 2).expect("nodes");
    let (a, b) = (Engine::start(a), Engine::start(b));
    let (ta, tb) = sessions_over_a_pipe(&a, &b, false, |w| FlushOnly { inner: w, buf: Vec::new() });
    let both = tokio::time::timeout(std::time::Duration::from_secs(20), async { (ta.await, tb.await) }).await;
    let (ca, cb) = both.expect("the session hung: written bytes were never flushed");
    let (ca, cb) = (ca.expect("a"), cb.expect("b"));
    assert!(ca.outcome.synced && cb.outcome.synced, "{:?} / {:?}", ca.end(), cb.end());
    assert!(ca.outcome.entries_out >= 100, "Ann's 50 device logs of 2 entries reached Ben: {}", ca.outcome.entries_out);
    a.shutdown();
    b.shutdown();
}

type PipeWriter = tokio::io::WriteHalf<tokio::io::DuplexStream>;

/// A session between two engines over an in-memory pipe, `a` the initiator, each side's writer
/// wrapped by `wrap`.
fn sessions_over_a_pipe<W: tokio::io::AsyncWrite + Unpin + Send + 'static>(
    a: &libra_engine::engine::Engine,
    b: &libra_engine::engine::Engine,
    live: bool,
    wrap: impl Fn(PipeWriter) -> W,
) -> (tokio::task::JoinHandle<libra_engine::sync::Conn>, tokio::task::JoinHandle<libra_engine::sync::Conn>) {
    use libra_engine::net::stream;
    use libra_engine::sync::{Conn, Limits};
    let (ab, ba) = tokio::io::duplex(64 * 1024);
    let (ar, aw) = tokio::io::split(ab);
    let (br, bw) = tokio::io::split(ba);
    let (aw, bw) = (wrap(aw), wrap(bw));
    let (da, db) = (a.device(), b.device());
    let (ea, eb) = (a.clone(), b.clone());
    let ta =
        tokio::spawn(async move { stream::run(&ea, Conn::new(db, true, live, Limits::default(), 0), ar, aw).await });
    let tb =
        tokio::spawn(async move { stream::run(&eb, Conn::new(da, false, live, Limits::default(), 0), br, bw).await });
    (ta, tb)
}

/// A transport that vouches for a lossy link (`Watch::alive`: QUIC after a lost packet, with
/// keep-alives flowing) extends the frame deadline, but not past `LINK_GRACE`: a peer that sends
/// part of a frame and then only keep-alives is cut off (it used to be held forever).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_vouched_for_link_cannot_hold_a_half_sent_frame_forever() {
    use libra_engine::engine::Engine;
    use libra_engine::net::stream;
    use libra_engine::sync::{Conn, LINK_GRACE, Limits};
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Engine::start(libra_engine::node::Node::init(&dir.path().join("b"), "ben").expect("init"));
    let (mut peer, ours) = tokio::io::duplex(64 * 1024);
    let (r, w) = tokio::io::split(ours);
    // Two bytes of a length prefix, then nothing more on the stream.
    peer.write_all(&[0, 0]).await.expect("write");
    let alive = || true;
    let watch = stream::Watch { alive: Some(&alive), replaced: None };
    let started = tokio::time::Instant::now();
    let conn = Conn::new([9; 32], false, false, Limits::default(), 0);
    let conn = tokio::time::timeout(LINK_GRACE * 5, stream::run_with(&b, conn, r, w, watch))
        .await
        .expect("the half-sent frame was held past the grace");
    let took = started.elapsed();
    let end = format!("{:?}", conn.end());
    assert!(end.contains("inside a frame") && end.contains("lossy link"), "{end}");
    // The ordinary deadline (10 s) was extended while the link was vouched for, up to the grace.
    assert!(took >= LINK_GRACE && took < LINK_GRACE + std::time::Duration::from_secs(15), "{took:?}");
    drop(peer);

    // Nothing at all on the stream, the link vouched for: the session's idle limit (30 s) is
    // extended, but not past the grace either.
    let (peer, ours) = tokio::io::duplex(64 * 1024);
    let (r, w) = tokio::io::split(ours);
    let started = tokio::time::Instant::now();
    let conn = Conn::new([9; 32], false, false, Limits::default(), 0);
    let conn = tokio::time::timeout(LINK_GRACE * 5, stream::run_with(&b, conn, r, w, watch))
        .await
        .expect("a silent session was held past the grace");
    let end = format!("{:?}", conn.end());
    assert!(end.contains("no byte moved") && started.elapsed() >= LINK_GRACE, "{end} after {:?}", started.elapsed());
    drop(peer);
    b.shutdown();
}
