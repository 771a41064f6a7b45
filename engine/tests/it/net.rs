//! Real QUIC on loopback: two nodes sync, live pushes arrive, strangers and hostile peers are
//! refused, and the node keeps serving.

use crate::util::HostExt;
use std::sync::Arc;
use std::time::Duration;

use libra_engine::net::{Host, HostConfig, Limits, tls};
use libra_engine::node::Node;
use libra_engine::payload::{Payload, Profile};
use libra_engine::sync::{Message, frame};

fn host(dir: &std::path::Path, name: &str) -> Host {
    host_with(dir, name, Limits::default())
}

fn host_with(dir: &std::path::Path, name: &str, limits: Limits) -> Host {
    let node = Node::init(&dir.join(name), name).expect("init");
    Host::new(
        libra_engine::engine::Engine::start(node),
        HostConfig { limits, ..HostConfig::new("127.0.0.1:0".parse().expect("addr")) },
    )
    .expect("host")
}

fn heads(h: &Host) -> Vec<([u8; 32], u64)> {
    h.with_node(|n| n.store.heads().map(|(a, h)| (a, h.seq)).collect())
}

async fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

fn pair() -> (tempfile::TempDir, Arc<Host>, Arc<Host>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Arc::new(host(dir.path(), "alice"));
    let b = Arc::new(host(dir.path(), "bob"));
    a.allow(b.device(), None).expect("allow");
    b.allow(a.device(), None).expect("allow");
    (dir, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sync_and_push_live() {
    let (_dir, a, b) = pair();
    let server = b.clone();
    tokio::spawn(async move { server.serve().await });
    let addr = b.local_addr().expect("addr");

    let out = a.connect(addr, Some(b.device()), false).await.expect("sync");
    assert!(out.synced);
    assert_eq!(out.entries_in, 3, "bob's user log (2) and device log (1)");
    assert_eq!(out.entries_out, 3);
    assert_eq!(heads(&a), heads(&b));
    assert_eq!(a.with_node(|n| n.store.trust().users.len()), 2);

    // A second sync moves nothing.
    let again = a.connect(addr, Some(b.device()), false).await.expect("sync");
    assert_eq!((again.entries_in, again.entries_out), (0, 0));
    assert!(again.bytes_out < 200, "idle reconcile sent {} bytes", again.bytes_out);

    // Live: stay connected; an append on bob arrives at alice without another sync.
    let live = a.clone();
    let session = tokio::spawn(async move { live.connect(addr, None, true).await });
    assert!(wait_until(|| !b.online().is_empty()).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.with_node(|n| n.append_device(&Payload::Profile(Profile { name: "live".into() })).expect("append"));
    let want = heads(&b);
    assert!(wait_until(|| heads(&a) == want).await, "live push did not arrive");
    session.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_unknown_keys_are_refused() {
    let (dir, a, b) = pair();
    let server = b.clone();
    tokio::spawn(async move { server.serve().await });
    let addr = b.local_addr().expect("addr");
    // Alice expects another key at that address.
    assert!(a.connect(addr, Some([9; 32]), false).await.is_err());
    // Carol is not on bob's allow-list, even though she allows bob.
    let carol = host(dir.path(), "carol");
    carol.allow(b.device(), None).expect("allow");
    assert!(carol.connect(addr, None, false).await.is_err());
    assert_eq!(b.with_node(|n| n.store.heads().count()), 2, "nothing from carol reached bob");
    // Bob still serves alice.
    assert!(a.connect(addr, Some(b.device()), false).await.expect("sync").synced);
}

/// A raw client holding an allowed key, sending whatever bytes a test wants.
async fn raw_session(
    a: &Host,
    seed: [u8; 32],
    addr: std::net::SocketAddr,
    bytes: Vec<u8>,
) -> Option<quinn::ConnectionError> {
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let allow: tls::Allow = Arc::new(|_| true);
    let cfg = tls::client_config(&seed, &public, allow, None, libra_engine::sync::ALPN).expect("tls");
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(cfg).expect("quic");
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    let conn = ep.connect(addr, "libra").expect("connect").await.expect("handshake");
    let (mut send, _recv) = conn.open_bi().await.expect("stream");
    let _ = send.write_all(&bytes).await;
    let _ = a;
    tokio::time::timeout(Duration::from_secs(15), conn.closed()).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_close_only_that_session() {
    let (_dir, a, b) = pair();
    let server = b.clone();
    tokio::spawn(async move { server.serve().await });
    let addr = b.local_addr().expect("addr");
    let mallory_seed = [42u8; 32];
    let mallory = ed25519_dalek::SigningKey::from_bytes(&mallory_seed).verifying_key().to_bytes();
    b.allow(mallory, None).expect("allow");

    // Garbage, an oversized length prefix, and a forged entry: each is closed with a sync error.
    let garbage = [&8u32.to_be_bytes()[..], b"\xff\xfe garbage"].concat();
    let oversized = (64u32 * 1024 * 1024).to_be_bytes().to_vec();
    let mut forged =
        libra_engine::log::sign_entry(&ed25519_dalek::SigningKey::from_bytes(&mallory_seed), None, 1, 1, b"x".to_vec());
    forged.payload = Some(b"not what was signed".to_vec());
    let forged = frame(&Message::Entries(vec![forged.encode()]));
    for bytes in [garbage, oversized, forged] {
        let reason = raw_session(&a, mallory_seed, addr, bytes).await;
        match reason {
            Some(quinn::ConnectionError::ApplicationClosed(c)) => assert_ne!(u64::from(c.error_code), 0, "{c:?}"),
            other => panic!("expected an application close, got {other:?}"),
        }
    }
    assert!(b.with_node(|n| n.store.head(&mallory).is_none()), "nothing invalid stored");
    // The node still serves everyone else.
    assert!(a.connect(addr, Some(b.device()), false).await.expect("sync").synced);
}

fn limited() -> Limits {
    Limits {
        frame_deadline: Duration::from_millis(300),
        reconcile_idle: Duration::from_secs(1),
        session_bytes_in: 8_000,
    }
}

/// Connects as `seed` and writes `bytes` (possibly nothing), then reports how and when the node
/// closed the connection.
async fn raw_close(
    seed: [u8; 32],
    addr: std::net::SocketAddr,
    bytes: Vec<u8>,
) -> (Option<quinn::ConnectionError>, Duration) {
    let start = std::time::Instant::now();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let cfg = tls::client_config(&seed, &public, Arc::new(|_| true), None, libra_engine::sync::ALPN).expect("tls");
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(cfg).expect("quic");
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    let conn = ep.connect(addr, "libra").expect("connect").await.expect("handshake");
    let (mut send, _recv) = conn.open_bi().await.expect("stream");
    if !bytes.is_empty() {
        let _ = send.write_all(&bytes).await;
    }
    let reason = tokio::time::timeout(Duration::from_secs(15), conn.closed()).await.ok();
    (reason, start.elapsed())
}

fn app_code(r: &Option<quinn::ConnectionError>) -> Option<u64> {
    match r {
        Some(quinn::ConnectionError::ApplicationClosed(c)) => Some(u64::from(c.error_code)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalling_silent_and_endless_peers_are_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Arc::new(host_with(dir.path(), "bob", limited()));
    let a = host(dir.path(), "alice");
    a.allow(b.device(), None).expect("allow");
    b.allow(a.device(), None).expect("allow");
    let server = b.clone();
    tokio::spawn(async move { server.serve().await });
    let addr = b.local_addr().expect("addr");
    let seed = [7u8; 32];
    let mallory_key = ed25519_dalek::SigningKey::from_bytes(&seed);
    b.allow(mallory_key.verifying_key().to_bytes(), None).expect("allow");

    // Slowloris: one byte of a length prefix, then nothing.
    let (r, took) = raw_close(seed, addr, vec![0]).await;
    assert!(app_code(&r).is_some_and(|c| c != 0), "{r:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // Silent: a stream opened with nothing on it.
    let (r, took) = raw_close(seed, addr, Vec::new()).await;
    assert!(r.is_some() && took < Duration::from_secs(5), "{r:?} after {took:?}");

    // Endless reconciliation: rounds past the limit are refused with code 3.
    let mut rounds = Vec::new();
    for i in 0..(libra_engine::sync::MAX_ROUNDS + 2) {
        let fp = *blake3::hash(&i.to_le_bytes()).as_bytes();
        let mut f = [0u8; 16];
        f.copy_from_slice(&fp[..16]);
        let m = Message::Reconcile(vec![libra_engine::sync::Range {
            upper: None,
            body: libra_engine::sync::RangeBody::Fingerprint(f),
        }]);
        rounds.extend(frame(&m));
    }
    let (r, _) = raw_close(seed, addr, rounds).await;
    assert_eq!(app_code(&r), Some(3), "{r:?}");

    // An endless stream of (valid) entries: cut at the session's byte budget.
    let log: Vec<Vec<u8>> =
        crate::util::chain(&mallory_key, 100).iter().map(libra_engine::log::Entry::encode).collect();
    let mut stream = Vec::new();
    for chunk in log.chunks(10) {
        stream.extend(frame(&Message::Entries(chunk.to_vec())));
    }
    let (r, _) = raw_close(seed, addr, stream).await;
    assert_eq!(app_code(&r), Some(3), "{r:?}");
    let held = b.with_node(|n| n.store.head(&mallory_key.verifying_key().to_bytes()).map_or(0, |h| h.seq));
    assert!(held < 100, "the whole endless stream was taken: {held}");

    // Replayed entries are idempotent: sending what is already held is not misbehaviour.
    let again: Vec<u8> = frame(&Message::Entries(log[..5].to_vec()));
    let (r, _) = raw_close(seed, addr, [again.clone(), again].concat()).await;
    assert_ne!(app_code(&r), Some(5), "duplicates were treated as invalid: {r:?}");

    // And the node still serves honest peers.
    assert!(a.connect(addr, Some(b.device()), false).await.expect("sync").synced);
}

/// A contact added while the node runs is dialled at once, at a name that is resolved, and the
/// dialer reports what it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_added_while_running_is_dialled_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Arc::new(host(dir.path(), "alice"));
    let b = Arc::new(host(dir.path(), "bob"));
    let server = b.clone();
    tokio::spawn(async move { server.serve().await });
    let server = a.clone();
    tokio::spawn(async move { server.serve().await });
    a.run_dialers();
    let mut events = a.engine().subscribe();
    let port = b.local_addr().expect("addr").port();
    // Bob's invite carries a host name, not an IP address.
    let invite = b.with_node(|n| n.invite(Some(format!("localhost:{port}")), 1).expect("invite"));
    a.with_node(|n| n.add_contact(&invite, None).expect("add"));
    let alice_user = a.read_node(|n| n.user_id().expect("user"));
    assert!(
        wait_until(|| b.read_node(|n| n.store.head(alice_user.as_bytes()).is_some())).await,
        "Bob never received Alice's log: the new contact was not dialled"
    );
    let mut saw = false;
    while let Ok(e) = events.try_recv() {
        saw |= matches!(e, libra_engine::engine::Event::Dial { device, state: libra_engine::engine::DialState::Connecting } if device == b.device());
    }
    assert!(saw, "no dial event for Bob");
    assert!(a.cancel_dial(&b.device()), "the dialer was not running");
    assert!(libra_engine::net::check_address("not an address").is_err());
    assert!(libra_engine::net::check_address("example.org:7444").is_ok());
}

/// Opens a QUIC connection from `from` as a fresh key and holds it; `None` if refused.
async fn hold(from: &str, to: std::net::SocketAddr) -> Option<(quinn::Endpoint, quinn::Connection)> {
    let seed = libra_engine::identity::random_secret();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let cfg = tls::client_config(&seed, &public, Arc::new(|_| true), None, libra_engine::sync::ALPN).ok()?;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(cfg).ok()?;
    let mut ep = quinn::Endpoint::client(format!("{from}:0").parse().ok()?).ok()?;
    ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    let conn = tokio::time::timeout(Duration::from_secs(5), ep.connect(to, "libra").ok()?).await.ok()?.ok()?;
    Some((ep, conn))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_from_one_address_is_capped_and_an_honest_peer_still_syncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Arc::new(host(dir.path(), "bob"));
    // An open invite: any key may finish the handshake (to introduce itself), as in the attack.
    b.with_node(|n| n.invite(None, 1).expect("invite"));
    let server = b.clone();
    tokio::spawn(async move { server.serve().await });
    let addr = b.local_addr().expect("addr");
    let flood: Vec<_> = (0..100).map(|_| hold("127.0.0.1", addr)).collect();
    let held: Vec<_> = futures_join(flood).await.into_iter().flatten().collect();
    let cap = libra_engine::net::admission::MAX_CONNECTIONS_PER_IP;
    assert!(held.len() <= cap, "{} connections held from one address (cap {cap})", held.len());
    // An honest, allowed peer from another address still gets in and syncs.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let node = Node::init(&dir2.path().join("alice"), "alice").expect("init");
    let a = Host::new(libra_engine::engine::Engine::start(node), HostConfig::new("127.0.0.2:0".parse().expect("addr")))
        .expect("host");
    a.allow(b.device(), None).expect("allow");
    b.allow(a.device(), None).expect("allow");
    assert!(a.connect(addr, Some(b.device()), false).await.expect("sync").synced);
    // Strangers that never introduce themselves are closed within seconds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(held.iter().all(|(_, c)| c.close_reason().is_some()), "idle strangers still connected");
}

async fn futures_join<F: std::future::Future + Send + 'static>(fs: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}
