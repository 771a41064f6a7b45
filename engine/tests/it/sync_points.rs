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
    // One round trip, as before the restart; a first-contact reconciliation of 2000 logs
    // takes three and more than twice the bytes.
    assert_eq!((warm.rounds, after.rounds), (1, 1), "the sync point was lost");
    assert!(
        after_bytes <= warm_bytes + warm_bytes / 4,
        "after the restart {after_bytes} B on the wire, before it {warm_bytes} B: the sync point was lost"
    );
}
