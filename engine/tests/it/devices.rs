//! Several devices of one user, between real nodes on loopback (spec/devices.md): linking by
//! code over `libra/link/1`, one conversation on every device, revocation that shuts a device
//! out, and restoring from the recovery phrase without a fork.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::util::{HostExt, befriend, live};
use libra_engine::engine::Engine;
use libra_engine::messenger::ChatTarget;
use libra_engine::net::{Host, HostConfig, link_protocol};
use libra_engine::node::Node;

fn config() -> HostConfig {
    HostConfig::new("127.0.0.1:0".parse().expect("addr"))
}

fn start(node: Node) -> Arc<Host> {
    let h = Arc::new(Host::new(Engine::start(node), config()).expect("host"));
    let server = h.clone();
    tokio::spawn(async move { server.serve().await });
    h
}

async fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Links a new device in `dir/name` to `linker`'s user, as `libra init --link` does, and keeps
/// it in sync with the linker.
async fn link(linker: &Arc<Host>, dir: &Path, name: &str) -> Arc<Host> {
    let addr = linker.local_addr().expect("addr");
    let code = linker.engine().open_link(vec![addr.to_string()]).expect("code");
    let linked = link_protocol::request(&code, name, &[]).await.expect("link");
    let (node, _) = link_protocol::create(&dir.join(name), linked).await.expect("init");
    let h = start(node);
    h.allow(linker.device(), Some(addr.to_string())).expect("allow");
    live(&h, linker);
    h
}

fn chat(h: &Host, with: &str) -> ChatTarget {
    h.read_node(|n| n.chat(with).expect("chat"))
}

/// The texts of a chat as this device shows them, each once per message.
fn texts(h: &Host, with: &str) -> Vec<String> {
    let c = h.read_node(|n| n.chat(with).ok());
    let Some(c) = c else { return Vec::new() };
    h.read_node(|n| n.store.messages(&c.chat, 1000).expect("messages")).into_iter().filter_map(|m| m.text).collect()
}

fn count(h: &Host, with: &str, text: &str) -> usize {
    texts(h, with).iter().filter(|t| *t == text).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_devices_share_one_conversation_and_a_revoked_one_is_shut_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let d1 = start(Node::init(&dir.path().join("d1"), "alice").expect("init"));
    let carol = start(Node::init(&dir.path().join("carol"), "carol").expect("init"));
    befriend(&d1, &carol);
    live(&carol, &d1);
    // History from before the other devices existed.
    let to_alice = chat(&carol, "alice");
    carol.with_node(|n| n.send(&to_alice, "before linking", None).expect("send"));
    wait("carol's first message at device 1", || count(&d1, "carol", "before linking") == 1).await;

    // Device 1's first agreement secret is rotated out and deleted (forward secrecy): the new
    // devices read the history through the content keys it kept and hands over.
    let far = libra_engine::clock::wall_ms()
        + libra_engine::devices::ROTATE_AFTER_MS
        + libra_engine::devices::KEEP_RETIRED_MS;
    d1.with_node(|n| {
        n.keep_keys(far).expect("upkeep");
        assert!(n.secrets.history.is_empty());
    });
    let d2 = link(&d1, dir.path(), "d2").await;
    let d3 = link(&d1, dir.path(), "d3").await;
    // A code works once.
    let code = d1.engine().open_link(vec![d1.local_addr().expect("addr").to_string()]).expect("code");
    link_protocol::request(&code, "d4", &[]).await.expect("first use");
    assert!(link_protocol::request(&code, "d5", &[]).await.is_err(), "a used code must be refused");

    // The new devices learn the contact and read the history sealed before they existed.
    wait("the history on devices 2 and 3", || {
        count(&d2, "carol", "before linking") == 1 && count(&d3, "carol", "before linking") == 1
    })
    .await;

    // Carol learns the new devices from device 1's log; a message from device 2 reaches her,
    // and shows once on every device of Alice's, however many paths carry it.
    let d2_dev = libra_engine::identity::DeviceId(libra_engine::codec::Bytes(d2.device()));
    wait("carol knows device 2", || carol.read_node(|n| n.store.trust().owner_of(&d2_dev).is_some())).await;
    live(&d2, &d3);
    let to_carol = chat(&d2, "carol");
    d2.with_node(|n| n.send(&to_carol, "from device 2", None).expect("send"));
    wait("device 2's message everywhere", || {
        count(&carol, "alice", "from device 2") == 1
            && count(&d1, "carol", "from device 2") == 1
            && count(&d3, "carol", "from device 2") == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (h, with) in [(&carol, "alice"), (&d1, "carol"), (&d2, "carol"), (&d3, "carol")] {
        assert_eq!(count(h, with, "from device 2"), 1, "shown exactly once");
    }

    // Device 1 revokes device 3 and rotates its key; device 2 rotates when it sees that.
    let d3_dev = libra_engine::identity::DeviceId(libra_engine::codec::Bytes(d3.device()));
    d1.with_node(|n| n.revoke_device(&d3_dev, "lost", None).expect("revoke"));
    let rotated = |h: &Host, d: [u8; 32]| {
        h.read_node(|n| {
            n.store.trust().agreements.contains_key(&libra_engine::identity::DeviceId(libra_engine::codec::Bytes(d)))
        })
    };
    wait("carol sees the revocation and both rotations", || {
        carol.read_node(|n| n.store.trust().revoked_after(&d3_dev).is_some())
            && rotated(&carol, d1.device())
            && rotated(&carol, d2.device())
    })
    .await;
    carol.with_node(|n| n.send(&to_alice, "after revocation", None).expect("send"));
    wait("the new message at devices 1 and 2", || {
        count(&d1, "carol", "after revocation") == 1 && count(&d2, "carol", "after revocation") == 1
    })
    .await;
    // Even handed the entry by someone, device 3 cannot open it.
    let carol_log = carol.device();
    let entries = carol.read_node(|n| n.store.read_log(&carol_log, 1, 10_000).expect("log"));
    d3.with_node(|n| n.store.ingest(entries, libra_engine::clock::wall_ms()).expect("ingest"));
    assert_eq!(count(&d3, "carol", "after revocation"), 0, "a revoked device must not read later messages");
    assert_eq!(count(&d3, "carol", "from device 2"), 1);

    // What device 3 writes now is refused by the contact.
    let to_carol3 = chat(&d3, "carol");
    d3.with_node(|n| n.send(&to_carol3, "from a stolen device", None).expect("append locally"));
    let stolen = d3.read_node(|n| n.store.read_log(&d3.device(), 1, 10_000).expect("log"));
    let report = carol.with_node(|n| n.store.ingest(stolen, libra_engine::clock::wall_ms()).expect("ingest"));
    assert!(report.rejected.iter().any(|r| r.error.code() == "revoked"), "{report:?}");
    assert_eq!(count(&carol, "alice", "from a stolen device"), 0);
    for h in [&d1, &d2, &carol] {
        assert!(!h.engine().is_allowed(&d3.device()), "a revoked device may not connect");
    }
    // Carol can tell from the logs alone who added each of Alice's devices and who revoked one.
    let d1_dev = libra_engine::identity::DeviceId(libra_engine::codec::Bytes(d1.device()));
    let alice_user = d1.read_node(|n| n.user_id().expect("user"));
    let seen = carol.read_node(|n| n.store.trust().user(&alice_user).expect("alice").devices.clone());
    let by = |d: &libra_engine::identity::DeviceId| seen[d].certified_in.iter().map(|a| a.0).collect::<Vec<_>>();
    assert_eq!(by(&d1_dev), vec![*alice_user.as_bytes()], "device 1: the user key at init");
    assert_eq!(by(&d2_dev), vec![d1.device()], "device 2: linked by device 1");
    assert_eq!(seen[&d3_dev].revoked_in.iter().map(|a| a.0).collect::<Vec<_>>(), vec![d1.device()]);
    assert!(seen[&d3_dev].revoked_ms.is_some());
    let listed = d2.read_node(|n| n.devices(Some(&alice_user)).expect("devices"));
    let d3_row = listed.iter().find(|d| d.device == d3_dev).expect("device 3 listed");
    assert_eq!(d3_row.added_by, vec![Some(d1_dev)]);
    assert_eq!(d3_row.revoked_by, vec![d1_dev]);

    // Restore from the phrase on a new device: a new key, no old log written, no fork.
    let phrase = d1.read_node(|n| n.recovery_phrase().expect("phrase"));
    let secret = libra_engine::phrase::decode(&phrase).expect("phrase");
    let d4 = start(Node::init_restored(&dir.path().join("d4"), secret, Vec::new()).expect("restore"));
    let user = d1.read_node(|n| n.user_id().expect("user"));
    assert_eq!(d4.read_node(|n| n.user_id()), Some(user));
    // It and device 2 accept each other by invites (signed by the same user key); it adds
    // Carol again (its contacts were sealed to the old devices' keys).
    let i4 = d4.with_node(|n| n.invite(None, 1).expect("invite"));
    let i2 = d2.with_node(|n| n.invite(None, 1).expect("invite"));
    let ic = carol.with_node(|n| n.invite(None, 1).expect("invite"));
    d2.with_node(|n| n.add_contact(&i4, None).expect("own invite"));
    d4.with_node(|n| n.add_contact(&i2, None).expect("own invite"));
    d4.with_node(|n| n.add_contact(&ic, None).expect("contact"));
    live(&d4, &d2);
    live(&d2, &carol);
    let d4_dev = libra_engine::identity::DeviceId(libra_engine::codec::Bytes(d4.device()));
    wait("carol knows the restored device (from device 2's log)", || {
        carol.read_node(|n| n.store.trust().owner_of(&d4_dev) == Some(user))
    })
    .await;
    live(&d4, &carol);
    let to_carol4 = chat(&d4, "carol");
    d4.with_node(|n| n.send(&to_carol4, "restored", None).expect("send"));
    carol.with_node(|n| n.send(&to_alice, "welcome back", None).expect("send"));
    wait("the restored device's message at carol, and hers at it", || {
        count(&carol, "alice", "restored") == 1 && count(&d4, "carol", "welcome back") == 1
    })
    .await;
    for h in [&d1, &d2, &d4, &carol] {
        h.read_node(|n| {
            assert_eq!(n.store.head(user.as_bytes()).map(|h| h.seq), Some(2), "the user log is written once");
            assert!(n.store.forks().expect("forks").is_empty(), "no fork anywhere");
        });
    }
}

/// All entries of `from`'s own device log, as a peer would receive them.
fn device_log(from: &Node) -> Vec<libra_engine::log::Entry> {
    let me = *from.device_id().as_bytes();
    let mut all = from.store.read_log(&me, 1, 100_000).expect("log");
    let user = from.user_id().expect("user");
    all.extend(from.store.read_log(user.as_bytes(), 1, 100).expect("user log"));
    all
}

fn node_texts(n: &Node, with: &str) -> Vec<String> {
    let c = n.chat(with).expect("chat");
    n.store.messages(&c.chat, 1000).expect("messages").into_iter().filter_map(|m| m.text).collect()
}

/// Ann and Cy in `dir`, each with the other's invite added; and Ann's invite.
fn contacts(dir: &Path) -> (Node, Node, libra_engine::messenger::Invite) {
    let mut ann = Node::init(&dir.join("ann"), "ann").expect("init");
    let mut cy = Node::init(&dir.join("cy"), "cy").expect("init");
    let (ia, ic) = (ann.invite(None, 1).expect("invite"), cy.invite(None, 1).expect("invite"));
    ann.add_contact(&ic, None).expect("add");
    cy.add_contact(&ia, None).expect("add");
    (ann, cy, ia)
}

/// Forward secrecy by rotation (spec/devices.md, sections 7 and 7.1): a week-old agreement key
/// is rotated, a retired secret is deleted after its window, what it opened stays readable
/// (also in a rebuild) through the kept content keys, a message sealed to it that arrives
/// later cannot be opened, and the key file left on disk opens nothing sealed to the old key.
#[test]
fn old_agreement_secrets_are_deleted_and_what_they_opened_stays_readable() {
    use libra_engine::devices::{KEEP_RETIRED_MS, ROTATE_AFTER_MS};
    let dir = tempfile::tempdir().expect("tmp");
    let (mut ann, mut cy, ia) = contacts(dir.path());
    let now = libra_engine::clock::wall_ms();
    let carry = |from: &Node, to: &mut Node| {
        to.store.ingest(device_log(from), libra_engine::clock::wall_ms()).expect("ingest");
    };
    carry(&ann, &mut cy);
    let to_ann = cy.chat("ann").expect("chat");
    let first = cy.send(&to_ann, "sealed to the first key", None).expect("send");
    // Cy writes again before learning of any rotation: sealed to the first key too.
    cy.send(&to_ann, "late, to the first key", None).expect("send");
    let late = cy.store.read_log(cy.device_id().as_bytes(), 1, 1000).expect("log");
    let early: Vec<_> = late.iter().filter(|e| e.id != late.last().expect("last").id).cloned().collect();
    ann.store.ingest(early, now).expect("ingest");
    assert_eq!(node_texts(&ann, "cy"), ["sealed to the first key"]);

    // Nothing due today; a week on, a rotation.
    assert_eq!(ann.key_upkeep(now).expect("upkeep"), (false, 0));
    assert!(ann.keep_keys(now + ROTATE_AFTER_MS).expect("rotate"));
    assert_eq!(ann.secrets.history.len(), 1);
    carry(&ann, &mut cy);
    cy.send(&to_ann, "sealed to the second key", None).expect("send");
    carry(&cy, &mut ann);
    assert!(node_texts(&ann, "cy").contains(&"sealed to the second key".to_owned()));
    assert!(node_texts(&ann, "cy").contains(&"late, to the first key".to_owned()), "within the window");

    // After the window the first secret is gone; everything read stays readable, in a rebuild too.
    let later = now + ROTATE_AFTER_MS + KEEP_RETIRED_MS;
    assert!(ann.keep_keys(later).expect("upkeep"));
    assert!(ann.secrets.history.is_empty(), "retired secrets past the window are deleted");
    let on_disk = libra_engine::keyfile::load(&dir.path().join("ann")).expect("key file");
    assert!(on_disk.history.is_empty());
    assert_eq!(ann.store.chat_rows().expect("rows"), ann.store.chat_rows_rebuilt().expect("rebuild"));
    assert_eq!(node_texts(&ann, "cy").len(), 3);
    // The key file alone no longer opens what was sealed to the first key.
    let sealed = libra_engine::messaging::Sealed::decode(first.payload.as_deref().expect("payload")).expect("sealed");
    for s in on_disk.agreements() {
        assert!(sealed.content_key(&s).is_err(), "a deleted secret must not be on disk");
    }

    // A message sealed to the deleted key that arrives only now cannot be read.
    let mut dave = Node::init(&dir.path().join("dave"), "dave").expect("init");
    let id = dave.invite(None, 1).expect("invite");
    ann.add_contact(&id, None).expect("add");
    dave.add_contact(&ia, None).expect("add the old invite (first key)");
    let to_ann_d = dave.chat("ann").expect("chat");
    dave.send(&to_ann_d, "too late", None).expect("send");
    carry(&dave, &mut ann);
    assert!(!node_texts(&ann, "dave").contains(&"too late".to_owned()), "sealed to a deleted key");
}

/// Kept content keys page in id order with nothing missed or repeated (the link handover and
/// backups read them a page at a time).
#[test]
fn kept_keys_page_in_order() {
    let (_dir, store) = crate::util::temp_store();
    let pairs: Vec<([u8; 32], [u8; 32])> =
        (0..5000u32).map(|i| (*blake3::hash(&i.to_be_bytes()).as_bytes(), [i as u8; 32])).collect();
    store.keep_content_keys(&pairs).expect("keep");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.kept_keys_after(after.as_ref(), 1024).expect("page");
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 1024);
        after = Some(last.0);
        seen.extend(page);
    }
    let mut want = pairs;
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(store.kept_keys().expect("all"), want);
}

/// Keys kept as entries are stored ride on their `ids` rows; keys handed over later live in
/// `views` (spec/devices.md, 7.1). A lookup finds either and opens the entry, pages merge both in
/// id order with nothing missed or repeated, and a repair carries both into the rebuilt store.
#[test]
fn kept_keys_from_ids_rows_and_views_page_together_and_survive_a_repair() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut ann, mut cy, _) = contacts(dir.path());
    let now = libra_engine::clock::wall_ms();
    cy.store.ingest(device_log(&ann), now).expect("ingest");
    let to_ann = cy.chat("ann").expect("chat");
    for i in 0..40 {
        cy.send(&to_ann, &format!("message {i}"), None).expect("send");
    }
    let sealed: Vec<_> = device_log(&cy)
        .into_iter()
        .filter(|e| e.header().kind == libra_engine::payload::KIND_SEALED)
        .filter(|e| e.payload.as_deref().is_some_and(|p| libra_engine::messaging::Sealed::decode(p).is_ok()))
        .collect();
    assert!(sealed.len() >= 40, "{}", sealed.len());
    ann.store.ingest(device_log(&cy), now).expect("ingest");

    // Every message cy sent opens with the key ann kept for it as it was stored (cy's other
    // sealed entries, its contact notes, are sealed to cy's own devices only).
    let mut want = Vec::new();
    for e in &sealed {
        let Some(key) = ann.store.kept_key(&e.id).expect("read") else { continue };
        let s = libra_engine::messaging::Sealed::decode(e.payload.as_deref().expect("payload")).expect("sealed");
        s.open_with(&key, &libra_engine::messaging::view::aad(&e.header().author.0)).expect("opens");
        want.push((*e.id.as_bytes(), key));
    }
    assert!(want.len() >= 40, "a key kept for each message: {}", want.len());
    // Keys handed over later, one of them for an entry whose key is already kept.
    let handed: Vec<([u8; 32], [u8; 32])> =
        (0..30u32).map(|i| (*blake3::hash(&i.to_be_bytes()).as_bytes(), [i as u8; 32])).collect();
    ann.store.keep_content_keys(&handed).expect("keep");
    ann.store.keep_content_keys(&[want[0]]).expect("keep again");
    want.extend(handed);
    let mut all = ann.store.kept_keys().expect("all");
    all.retain(|p| want.contains(p));
    want.sort();
    assert_eq!(all, want);
    let (mut seen, mut after) = (Vec::new(), None);
    while let Some(last) = {
        let page = ann.store.kept_keys_after(after.as_ref(), 7).expect("page");
        assert!(page.len() <= 7);
        let last = page.last().map(|p| p.0);
        seen.extend(page);
        last
    } {
        after = Some(last);
    }
    assert_eq!(seen, ann.store.kept_keys().expect("all"), "pages of 7 give each key once, in order");

    let before = ann.store.kept_keys().expect("all");
    let own = Some(*ann.device_id().as_bytes());
    let path = dir.path().join("ann/store");
    drop(ann);
    let report = libra_engine::store::Store::repair(&path, now, own).expect("repair");
    assert!(report.lost.is_empty(), "{:?}", report.lost);
    let store = libra_engine::store::Store::open(&path).expect("open");
    assert_eq!(store.kept_keys().expect("all"), before, "the repaired store keeps every key");
}
