//! Sync points survive a restart (spec/sync.md, section 8.9): two nodes that synced before
//! reopen their stores and reconnect with a Since, not a first-contact reconciliation.

use std::sync::Arc;

use libra_engine::engine::Engine;
use libra_engine::net::{Host, HostConfig};
use libra_engine::node::Node;
use libra_engine::sync::Outcome;

fn host(node: Node) -> Arc<Host> {
    Arc::new(Host::new(Engine::start(node), HostConfig::new("127.0.0.1:0".parse().expect("addr"))).expect("host"))
}

/// A one-shot sync from `a` to `b`, which serves.
async fn sync(a: &Host, b: &Arc<Host>) -> Outcome {
    let server = b.clone();
    let serving = tokio::spawn(async move { server.serve().await });
    let out = a.connect(b.local_addr().expect("addr"), Some(b.device()), false).await.expect("sync");
    serving.abort();
    assert!(out.synced);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_synced_before_a_restart_reconnect_with_a_since() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, mut logs) = libra_engine::testkit::own_devices(dir.path(), 2000, 1).expect("nodes");
    let (ha, hb) = (host(a), host(b));
    let cold = sync(&ha, &hb).await;
    assert!(cold.entries_out >= 2000);
    // Synced before, no restart: five logs moved, reconciled from the sync point. What the cold
    // sync brought the responder is not listed again (the peer holds it at our head).
    let mut rounds = Vec::new();
    for round in 0..2 {
        let moved: Vec<_> = (0..5).map(|i| logs[i * 300 + round].extend()).collect();
        ha.engine().ingest(moved).await.expect("ingest");
        let out = sync(&ha, &hb).await;
        assert_eq!(out.entries_out, 5);
        rounds.push(out);
    }
    let warm = rounds.pop().expect("two rounds");
    let warm_bytes = warm.bytes_out + warm.bytes_in;
    let first = rounds[0].bytes_out + rounds[0].bytes_in;
    assert!(
        first <= warm_bytes + warm_bytes / 4,
        "the first reconnection after a cold sync moved {first} B, the next {warm_bytes} B"
    );

    // Both restart: stores closed and reopened, new engines and hosts.
    for h in [&ha, &hb] {
        h.shutdown().await;
        h.engine().shutdown();
    }
    drop((ha, hb));
    let (a, b) =
        (Node::open(&dir.path().join("a")).expect("reopen a"), Node::open(&dir.path().join("b")).expect("reopen b"));
    let (ha, hb) = (host(a), host(b));
    let moved: Vec<_> = (0..5).map(|i| logs[i * 300 + 7].extend()).collect();
    ha.engine().ingest(moved).await.expect("ingest");
    let after = sync(&ha, &hb).await;
    assert_eq!(after.entries_out, 5);
    let after_bytes = after.bytes_out + after.bytes_in;
    // One round trip, as before the restart; a first contact of 2000 logs takes two (a sketch,
    // section 8.10) and more bytes.
    assert_eq!((warm.rounds, after.rounds), (1, 1), "the sync point was lost");
    assert!(
        after_bytes <= warm_bytes + warm_bytes / 4,
        "after the restart {after_bytes} B on the wire, before it {warm_bytes} B: the sync point was lost"
    );
}

/// Two nodes that never synced but hold nearly the same 300 logs (B got them another way): the
/// first contact over QUIC opens with a sketch (spec/sync.md 8.10) and moves just the five
/// entries B lacks, after one round trip, with the sketch's few hundred bytes on top.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_contact_between_nodes_holding_nearly_the_same_logs_moves_only_the_difference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut a, mut b, mut logs) = libra_engine::testkit::own_devices(dir.path(), 300, 2).expect("nodes");
    const { assert!(300 >= libra_engine::sync::SKETCH_MIN) };
    // Each side gets every log the other holds (the device logs, and each node's own logs).
    let all = |n: &libra_engine::node::Node| -> Vec<_> {
        let authors: Vec<[u8; 32]> = n.store.heads().map(|(a, _)| a).collect();
        authors.iter().flat_map(|a| n.store.read_log(a, 1, usize::MAX).expect("read")).collect()
    };
    let (to_b, to_a) = (all(&a), all(&b));
    let now = libra_engine::clock::wall_ms();
    b.store.ingest(to_b, now).expect("carried to b");
    a.store.ingest(to_a, now).expect("carried to a");
    let (ha, hb) = (host(a), host(b));
    let moved: Vec<_> = (0..5).map(|i| logs[i * 60].extend()).collect();
    let moved_bytes: u64 = moved.iter().map(|e| e.encode().len() as u64).sum();
    ha.engine().ingest(moved).await.expect("ingest");
    let first = sync(&ha, &hb).await;
    assert_eq!((first.entries_out, first.entries_in), (5, 0));
    // The opener received one round (the symbols), placed the five heads on its own chains and
    // ended reconciliation itself: ranges over 300 logs would take three.
    assert_eq!(first.rounds, 1);
    let bytes = first.bytes_out + first.bytes_in;
    assert!(bytes > moved_bytes + 408, "the 408-byte sketch opened it: {bytes} B");
    assert!(bytes < moved_bytes + 2_500, "{bytes} B on the wire for {moved_bytes} B of entries");
    // And they are held: the next session moves nothing.
    let again = sync(&ha, &hb).await;
    assert_eq!(again.entries_out + again.entries_in, 0);
}
