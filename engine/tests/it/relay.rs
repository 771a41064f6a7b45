//! Relaying through a friend on loopback: two contacts who never dial each other talk through a
//! third contact that relays (end-to-end TLS over the spliced stream), and nobody relays for
//! strangers or without having opted in.

use crate::util::{HostExt, befriend, live, wait_until};
use std::sync::Arc;

use libra_engine::net::{Host, HostConfig, NetError};
use libra_engine::node::Node;

fn host(dir: &std::path::Path, name: &str, relay: bool) -> Arc<Host> {
    host_with(dir, name, |c| HostConfig { relay, ..c })
}

/// A serving host on loopback, its configuration changed by `cfg`.
fn host_with(dir: &std::path::Path, name: &str, cfg: impl FnOnce(HostConfig) -> HostConfig) -> Arc<Host> {
    let node = Node::init(&dir.join(name), name).expect("init");
    let cfg = cfg(HostConfig::new("127.0.0.1:0".parse().expect("addr")));
    let h = Arc::new(Host::new(libra_engine::engine::Engine::start(node), cfg).expect("host"));
    let server = h.clone();
    tokio::spawn(async move { server.serve().await });
    h
}

/// Ann and Ben, contacts of each other and of Rex who relays, each with a live session to Rex;
/// neither knows the other's address.
async fn at_the_relay(dir: &std::path::Path) -> (Arc<Host>, Arc<Host>, Arc<Host>) {
    let (a, b, r) = (host(dir, "ann", false), host(dir, "ben", false), host(dir, "rex", true));
    befriend(&a, &b);
    befriend(&a, &r);
    befriend(&b, &r);
    live(&a, &r);
    live(&b, &r);
    wait_until("both at the relay", || r.online().contains_key(&a.device()) && r.online().contains_key(&b.device()))
        .await;
    (a, b, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_contacts_talk_through_a_friend_who_relays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, r) = at_the_relay(dir.path()).await;
    let ub = b.read_node(|n| n.user_id().expect("user"));
    let chat = a.read_node(|n| n.chat(&ub.to_string()).expect("chat"));
    a.with_node(|n| n.send(&chat, "through the relay", None).expect("send"));

    let (ha, raddr, rdev, bdev) = (a.clone(), r.local_addr().expect("addr"), r.device(), b.device());
    tokio::spawn(async move {
        let _ = ha.connect_via(raddr, rdev, bdev, true).await;
    });
    let ua = a.read_node(|n| n.user_id().expect("user"));
    let back = b.read_node(|n| n.chat(&ua.to_string()).expect("chat"));
    wait_until("the message at B", || {
        b.read_node(|n| n.store.messages(&back.chat, 10).expect("m"))
            .iter()
            .any(|m| m.text.as_deref() == Some("through the relay"))
    })
    .await;
    // The message may also reach B through R's copy of A's log (R is a contact of both), so wait
    // for the relayed session itself: A sees B online, by way of the relay's address.
    wait_until("B online at A", || a.online().contains_key(&bdev)).await;
    assert_eq!(a.online().get(&bdev), Some(&raddr));
    // The relay holds A's and B's logs as any contact does, but cannot read the message.
    let at_r = r.read_node(|n| n.store.chats().expect("chats"));
    assert!(at_r.iter().all(|c| c.last.as_ref().and_then(|m| m.text.as_deref()) != Some("through the relay")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_relays_without_opting_in_or_for_strangers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (host(dir.path(), "ann", false), host(dir.path(), "ben", false));
    let (quiet, r) = (host(dir.path(), "quiet", false), host(dir.path(), "rex", true));
    let stranger = host(dir.path(), "eve", false);
    for x in [&a, &b] {
        befriend(x, &quiet);
        befriend(x, &r);
    }
    befriend(&a, &b);
    befriend(&stranger, &a); // Eve knows A, but R does not know Eve.
    live(&b, &quiet);
    live(&b, &r);
    wait_until("B at both", || quiet.online().contains_key(&b.device()) && r.online().contains_key(&b.device())).await;

    let off = a.connect_via(quiet.local_addr().expect("addr"), quiet.device(), b.device(), false).await;
    assert!(matches!(&off, Err(NetError::Relay(why)) if why.contains("does not relay")), "{off:?}");
    // Eve cannot even reach R (not R's contact), let alone be spliced.
    let eve = stranger.connect_via(r.local_addr().expect("addr"), r.device(), a.device(), false).await;
    assert!(eve.is_err());
    // A target that is not connected to the relay.
    let unreachable = b.connect_via(r.local_addr().expect("addr"), r.device(), a.device(), false).await;
    assert!(matches!(&unreachable, Err(NetError::Relay(why)) if why.contains("cannot reach")), "{unreachable:?}");
    // And with A at the relay, the same request works (one-shot session, synced).
    live(&a, &r);
    wait_until("A at the relay", || r.online().contains_key(&a.device())).await;
    let ok = b.connect_via(r.local_addr().expect("addr"), r.device(), a.device(), false).await.expect("relayed");
    assert!(ok.synced);
}

/// A relayed session is replaced as soon as a direct path appears, and `links` says which
/// path is in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_path_replaces_a_relayed_one() {
    use libra_engine::engine::PathKind;
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, r) = at_the_relay(dir.path()).await;
    let (ha, raddr, rdev, bdev) = (a.clone(), r.local_addr().expect("addr"), r.device(), b.device());
    let relayed = tokio::spawn(async move { ha.connect_via(raddr, rdev, bdev, true).await });
    // Each side registers its end of the session on its own schedule: wait for both.
    wait_until("each online at the other", || a.links().contains_key(&bdev) && b.links().contains_key(&a.device()))
        .await;
    assert_eq!(a.links()[&bdev].path, PathKind::Relayed { via: rdev });
    assert_eq!(b.links()[&a.device()].path, PathKind::Relayed { via: rdev });
    // Now A finds B directly (as LAN discovery or a learned address would).
    live(&a, &b);
    wait_until("the direct path in use", || a.links().get(&bdev).is_some_and(|l| l.path == PathKind::Direct)).await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), relayed).await;
    assert!(ended.is_ok(), "the relayed session kept running beside the direct one");
    wait_until("B sees the inbound path", || b.links().get(&a.device()).is_some_and(|l| l.path == PathKind::Inbound))
        .await;
    assert_eq!(a.links()[&bdev].addr, b.local_addr().expect("addr"));
}

fn host_punching(dir: &std::path::Path, name: &str, punch: bool) -> Arc<Host> {
    host_with(dir, name, |c| HostConfig { punch, ..c })
}

/// Punching passes an address only with consent (spec/connectivity.md, sections 1 and 4): the
/// introducer passes the target's address only when the target agreed, and the target agrees
/// only to a contact of its own and only if it punches at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn punching_needs_a_mutual_contact_and_the_targets_consent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, r) = (host_punching(dir.path(), "ann", true), host_punching(dir.path(), "rex", true));
    let no_punch = host_punching(dir.path(), "ben", false);
    let not_ann = host_punching(dir.path(), "cid", true);
    for x in [&a, &no_punch, &not_ann] {
        befriend(x, &r);
        live(x, &r);
    }
    befriend(&a, &no_punch);
    // Cid is Rex's contact but not Ann's: Ann may ask, Cid refuses.
    a.allow(not_ann.device(), None).expect("allow");
    wait_until("all three at Rex", || [&a, &no_punch, &not_ann].iter().all(|x| r.online().contains_key(&x.device())))
        .await;
    let raddr = r.local_addr().expect("addr");
    for target in [&no_punch, &not_ann] {
        let asked = a.punch_via(raddr, r.device(), target.device(), false).await;
        assert!(matches!(&asked, Err(NetError::Relay(why)) if why.contains("between these devices")), "{asked:?}");
        assert!(!a.online().contains_key(&target.device()), "a session came about anyway");
    }
    // A node that turned punching off does not ask either.
    let off = no_punch.punch_via(raddr, r.device(), a.device(), false).await;
    assert!(matches!(&off, Err(NetError::Relay(why)) if why.contains("turned off")), "{off:?}");
    // Between two contacts who both punch, the introduction works (a punched path on loopback).
    let ben = host_punching(dir.path(), "ben2", true);
    befriend(&a, &ben);
    befriend(&ben, &r);
    live(&ben, &r);
    wait_until("Ben at Rex", || r.online().contains_key(&ben.device())).await;
    let ok = a.punch_via(raddr, r.device(), ben.device(), false).await.expect("punched");
    assert!(ok.synced);
}
