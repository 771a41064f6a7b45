//! Files between real nodes on loopback: a multi-MiB file arrives intact, a file sent while
//! the receiver is away arrives when it connects, a download cut off resumes without fetching
//! verified pieces again, two sources serve one file, and a source that serves corrupted
//! chunks is caught and the file still comes out right.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::util::{HostExt, befriend, live};
use libra_engine::blob::{FileRef, Request};
use libra_engine::engine::Engine;
use libra_engine::net::{BLOB_ALPN, Host, HostConfig, ProtocolHandler, Router};
use libra_engine::node::Node;
use libra_engine::store::blobs::BlobState;

fn config() -> HostConfig {
    HostConfig::new("127.0.0.1:0".parse().expect("addr"))
}

fn start(h: Host) -> Arc<Host> {
    let h = Arc::new(h);
    let server = h.clone();
    tokio::spawn(async move { server.serve().await });
    h.run_fetcher();
    h
}

fn host(dir: &Path, name: &str) -> Arc<Host> {
    let node = Node::init(&dir.join(name), name).expect("init");
    start(Host::new(Engine::start(node), config()).expect("host"))
}

/// A host whose blob handler is `handler(engine)`.
fn host_serving(dir: &Path, name: &str, handler: impl FnOnce(Engine) -> Arc<dyn ProtocolHandler>) -> Arc<Host> {
    let engine = Engine::start(Node::init(&dir.join(name), name).expect("init"));
    let h = handler(engine.clone());
    start(Host::with_protocols(engine, config(), |r: Router| r.register(BLOB_ALPN, h)).expect("host"))
}

/// Serves blob requests like the real handler, then lets `spoil` change each response body.
struct Serving {
    engine: Engine,
    spoil: fn(&mut Vec<u8>),
    served: Arc<AtomicU64>,
    /// Before each response (a slow link).
    delay: Duration,
}

impl ProtocolHandler for Serving {
    fn accept(&self, conn: quinn::Connection) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let (blobs, spoil, served, delay) = (self.engine.blobs(), self.spoil, self.served.clone(), self.delay);
        // A connection counts too: being dialled for a file tells the peer one is wanted.
        served.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                loop {
                    let mut len = [0u8; 4];
                    if recv.read_exact(&mut len).await.is_err() {
                        break;
                    }
                    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                    if recv.read_exact(&mut body).await.is_err() {
                        break;
                    }
                    let Ok(req) = Request::decode(&body) else { break };
                    tokio::time::sleep(delay).await;
                    let (status, mut bytes) = blobs.serve(&req);
                    // Bytes served, plus one per request (so that a request answered with
                    // nothing still counts).
                    served.fetch_add(bytes.len() as u64 + 1, Ordering::SeqCst);
                    spoil(&mut bytes);
                    let mut head = vec![status as u8];
                    head.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                    if send.write_all(&head).await.is_err() || send.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
            }
        })
    }
}

fn content(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8).collect()
}

/// The file `a` sends to the chat with `to` (a user id or a group's chat id).
fn send(a: &Host, dir: &Path, to: &str, bytes: &[u8], name: &str) -> FileRef {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    let chat = a.read_node(|n| n.chat(to).expect("chat"));
    a.engine().send_file(&chat, &path, "have a look", None).expect("send file").1
}

async fn wait_long(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn complete(h: &Host, f: &FileRef) -> bool {
    h.engine().blobs().state(&f.root.0) == BlobState::Complete
}

fn exported(h: &Host, f: &FileRef, dir: &Path, name: &str) -> Vec<u8> {
    let out = dir.join(format!("got-{name}"));
    h.engine().blobs().export(f, &out).expect("export");
    std::fs::read(out).expect("read")
}

fn user(h: &Host) -> String {
    h.read_node(|n| n.user_id().expect("user")).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_arrives_intact_and_shows_in_the_chat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
    befriend(&a, &b);
    live(&a, &b);
    let bytes = content(5 << 20 | 12345, 1);
    let file = send(&a, dir.path(), &user(&b), &bytes, "holiday.jpg");
    wait_long("the file at B", 60, || complete(&b, &file)).await;
    assert_eq!(exported(&b, &file, dir.path(), "got.jpg"), bytes);
    // B's chat shows the message with its file.
    let chat = b.read_node(|n| n.chat(&user(&a)).expect("chat"));
    let msgs = b.read_node(|n| n.store.messages(&chat.chat, 10).expect("messages"));
    let m = msgs.iter().find(|m| m.file.is_some()).expect("a file message");
    assert_eq!(m.text.as_deref(), Some("have a look"));
    let f = m.file.as_ref().expect("file");
    assert_eq!((f.name.as_str(), f.size, f.media_type.as_str()), ("holiday.jpg", bytes.len() as u64, "image/jpeg"));
    // The serving side never held the plaintext anywhere but the sender's own file.
    let blob = std::fs::read(dir.path().join("ben/blobs").join(format!("{}.data", file.root_hex()))).expect("blob");
    assert!(!blob.windows(64).any(|w| w == &bytes[1000..1064]), "the blob is ciphertext");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_while_away_arrives_on_connect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
    befriend(&a, &b);
    let bytes = content(300_000, 2);
    let file = send(&a, dir.path(), &user(&b), &bytes, "notes.txt");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!complete(&b, &file));
    live(&b, &a);
    wait_long("the file at B", 30, || complete(&b, &file)).await;
    assert_eq!(exported(&b, &file, dir.path(), "notes.txt"), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sources_serve_one_file_and_a_corrupting_one_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = host(dir.path(), "ann");
    let served_by_c = Arc::new(AtomicU64::new(0));
    let counter = served_by_c.clone();
    let c = host_serving(dir.path(), "cat", move |engine| {
        Arc::new(Serving { engine, spoil: |_| {}, served: counter, delay: Duration::ZERO }) as Arc<dyn ProtocolHandler>
    });
    let eve_served = Arc::new(AtomicU64::new(0));
    let counter = eve_served.clone();
    // Eve flips one bit in every response she serves.
    let e = host_serving(dir.path(), "eve", move |engine| {
        let spoil: fn(&mut Vec<u8>) = |b| {
            if let Some(x) = b.last_mut() {
                *x ^= 1;
            }
        };
        Arc::new(Serving { engine, spoil, served: counter, delay: Duration::ZERO }) as Arc<dyn ProtocolHandler>
    });
    let b = host(dir.path(), "ben");
    for (x, y) in [(&a, &b), (&a, &c), (&a, &e), (&b, &c), (&b, &e), (&c, &e)] {
        befriend(x, y);
    }
    let members: Vec<_> = [&b, &c, &e].iter().map(|h| h.read_node(|n| n.user_id().expect("user"))).collect();
    let group = a.with_node(|n| n.group_create("trip", &members).expect("group"));
    let bytes = content(6 << 20, 3);
    let file = send(&a, dir.path(), &group.chat.to_hex(), &bytes, "video.mp4");
    // C and Eve fetch the whole file from A.
    live(&c, &a);
    live(&e, &a);
    wait_long("the file at C and Eve", 60, || complete(&c, &file) && complete(&e, &file)).await;
    // First A lacks the file (as if it had deleted it): Eve is B's only source, and all she
    // serves is caught and thrown away.
    let size = file.blob_size();
    let chunks = size.div_ceil(1024);
    set_have(dir.path(), "ann", &file, size, vec![]);
    live(&b, &e);
    live(&b, &a);
    wait_long("Eve asked", 30, || eve_served.load(Ordering::SeqCst) > 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!complete(&b, &file));
    assert!(matches!(b.engine().blobs().state(&file.root.0), BlobState::Missing | BlobState::Partial(0)));
    // Then A holds the first half again and C the second: B needs both of them.
    let mid = (chunks / 2) / 16 * 16;
    set_have(dir.path(), "ann", &file, size, vec![(0, mid)]);
    set_have(dir.path(), "cat", &file, size, vec![(mid, chunks)]);
    live(&b, &c);
    wait_long("the file at B", 60, || complete(&b, &file)).await;
    assert_eq!(exported(&b, &file, dir.path(), "video.mp4"), bytes);
    assert!(served_by_c.load(Ordering::SeqCst) > 0, "C served its half");
}

/// Rewrites a node's record of `file` so that it holds only `ranges` (chunks).
fn set_have(dir: &Path, name: &str, file: &FileRef, size: u64, ranges: Vec<(u64, u64)>) {
    let path = dir.join(name).join("blobs").join(format!("{}.have", file.root_hex()));
    std::fs::write(path, libra_engine::codec::encode(&(size, ranges))).expect("write have");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_download_resumes_without_fetching_verified_pieces_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    // A serves a piece every 30 ms, so that the download can be cut in the middle.
    let a = host_serving(dir.path(), "ann", move |engine| {
        Arc::new(Serving { engine, spoil: |_| {}, served: counter, delay: Duration::from_millis(30) })
            as Arc<dyn ProtocolHandler>
    });
    let b = host(dir.path(), "ben");
    befriend(&a, &b);
    let bytes = content(20 << 20, 4);
    let file = send(&a, dir.path(), &user(&b), &bytes, "big.bin");
    let size = file.blob_size();
    b.engine().want_file(&file).expect("want");
    live(&b, &a);
    // Cut B off once some of the file is verified; the download then ends and records it.
    wait_long("part of the file at B", 120, || b.engine().transfers().get(&file.root.0).is_some_and(|t| t.have > 0))
        .await;
    b.shutdown().await;
    wait_long("the download to stop", 30, || !b.engine().transfers().contains_key(&file.root.0)).await;
    let BlobState::Partial(kept) = b.engine().blobs().state(&file.root.0) else { panic!("not partial") };
    assert!(kept < size);
    let before = served.load(Ordering::SeqCst);
    // B comes back (same store, a new endpoint) and finishes.
    let engine = b.engine().clone();
    drop(b);
    let b = start(Host::new(engine, config()).expect("host"));
    live(&b, &a);
    wait_long("the rest of the file at B", 120, || complete(&b, &file)).await;
    let after = served.load(Ordering::SeqCst) - before;
    assert!(after < size - kept + (size / 50), "refetched {after} of {size} bytes though {kept} were verified");
    assert_eq!(exported(&b, &file, dir.path(), "big.bin"), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_chats_members_are_asked_for_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (host(dir.path(), "ann"), host(dir.path(), "ben"));
    let asked = Arc::new(AtomicU64::new(0));
    let counter = asked.clone();
    // Cid is Ben's contact, connected to him, but not in Ann and Ben's chat.
    let c = host_serving(dir.path(), "cid", move |engine| {
        Arc::new(Serving { engine, spoil: |_| {}, served: counter, delay: Duration::ZERO }) as Arc<dyn ProtocolHandler>
    });
    befriend(&a, &b);
    befriend(&b, &c);
    live(&b, &c);
    wait_long("Cid online at Ben", 10, || b.online().contains_key(&c.device())).await;
    live(&b, &a);
    let file = send(&a, dir.path(), &user(&b), &content(200_000, 5), "private.pdf");
    wait_long("the file at Ben", 30, || complete(&b, &file)).await;
    assert_eq!(asked.load(Ordering::SeqCst), 0, "Cid learned of the file");
}
