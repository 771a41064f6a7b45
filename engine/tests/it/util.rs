//! Shared helpers: keys from labels, chains of entries, temporary stores.

use ed25519_dalek::SigningKey;
use libra_engine::Store;
use libra_engine::log::{Entry, sign_entry};

pub fn key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&blake3::derive_key("libra tests", label.as_bytes()))
}

/// A valid chain of `n` entries by `key` whose payloads are `payload(i)`.
pub fn chain_with(key: &SigningKey, n: usize, payload: impl Fn(usize) -> Vec<u8>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::with_capacity(n);
    for i in 0..n {
        let prev = out.last().map(|e| (e.header().seq, e.id));
        out.push(sign_entry(key, prev, 1_000_000 + i as u64, 99, payload(i)));
    }
    out
}

pub fn chain(key: &SigningKey, n: usize) -> Vec<Entry> {
    chain_with(key, n, |i| format!("entry {i}").into_bytes())
}

pub fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("store")).expect("open store");
    (dir, store)
}

/// What the tests do on a running host, through its engine (panicking on engine errors).
pub trait HostExt {
    fn with_node<R>(&self, f: impl FnOnce(&mut libra_engine::node::Node) -> R) -> R;
    fn read_node<R>(&self, f: impl FnOnce(&libra_engine::node::Node) -> R) -> R;
    fn allow(&self, key: [u8; 32], address: Option<String>) -> Result<(), libra_engine::engine::EngineError>;
}

impl HostExt for libra_engine::net::Host {
    fn with_node<R>(&self, f: impl FnOnce(&mut libra_engine::node::Node) -> R) -> R {
        self.engine().write_here(f).expect("engine write")
    }
    fn read_node<R>(&self, f: impl FnOnce(&libra_engine::node::Node) -> R) -> R {
        self.engine().read(f).expect("engine read")
    }
    fn allow(&self, key: [u8; 32], address: Option<String>) -> Result<(), libra_engine::engine::EngineError> {
        self.engine().allow(key, address)
    }
}

/// Each adds the other's invite.
pub fn befriend(a: &libra_engine::net::Host, b: &libra_engine::net::Host) {
    let ia = a.with_node(|n| n.invite(None, 1).expect("invite"));
    let ib = b.with_node(|n| n.invite(None, 1).expect("invite"));
    a.with_node(|n| n.add_contact(&ib, None).expect("add"));
    b.with_node(|n| n.add_contact(&ia, None).expect("add"));
}

pub async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..400 {
        if f() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn live(
    from: &std::sync::Arc<libra_engine::net::Host>,
    to: &libra_engine::net::Host,
) -> tokio::task::JoinHandle<()> {
    let (h, addr, key) = (from.clone(), to.local_addr().expect("addr"), to.device());
    tokio::spawn(async move {
        let _ = h.connect(addr, Some(key), true).await;
    })
}

/// A node `name` under `dir`, initialised, served on loopback by a real QUIC host.
pub fn host(dir: &std::path::Path, name: &str) -> std::sync::Arc<libra_engine::net::Host> {
    let node = libra_engine::node::Node::init(&dir.join(name), name).expect("init");
    let h = std::sync::Arc::new(
        libra_engine::net::Host::new(
            libra_engine::engine::Engine::start(node),
            libra_engine::net::HostConfig::new("127.0.0.1:0".parse().expect("addr")),
        )
        .expect("host"),
    );
    let server = h.clone();
    tokio::spawn(async move { server.serve().await });
    h
}

/// The user of a host's node.
pub fn user(h: &libra_engine::net::Host) -> libra_engine::identity::UserId {
    h.read_node(|n| n.user_id().expect("user"))
}

/// Ann (`dir/a`) and Ben (`dir/b`), each the other's contact.
pub fn ann_and_ben(dir: &std::path::Path) -> (libra_engine::node::Node, libra_engine::node::Node) {
    let mut a = libra_engine::node::Node::init(&dir.join("a"), "ann").expect("a");
    let mut b = libra_engine::node::Node::init(&dir.join("b"), "ben").expect("b");
    let (ia, ib) = (a.invite(None, 1).expect("i"), b.invite(None, 1).expect("i"));
    a.add_contact(&ib, None).expect("add");
    b.add_contact(&ia, None).expect("add");
    (a, b)
}
