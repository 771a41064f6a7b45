//! Connection paths on this machine: set-up time direct, punched (introduced by a mutual
//! contact) and relayed on loopback, and relayed throughput against direct throughput in the
//! same run (target ≥ 0.5×); then LAN set-up: two fresh contacts start LAN discovery (beacons by
//! broadcast on this machine's interfaces, which Linux also delivers to its own sockets) and
//! the time to a synced session is timed. The LAN and NAT tests in tools/tests run those paths
//! in network namespaces.
//!
//!     cargo bench -p libra-engine --bench paths -- [--entries N] [--setups N] [--lan-setups N]

#[path = "common/alloc.rs"]
mod alloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use libra_engine::engine::Engine;
use libra_engine::net::{Host, HostConfig};
use libra_engine::node::Node;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn host(node: Node, relay: bool) -> Arc<Host> {
    host_at(node, relay, "127.0.0.1:0")
}

fn host_at(node: Node, relay: bool, listen: &str) -> Arc<Host> {
    let cfg = HostConfig { relay, ..HostConfig::new(listen.parse().expect("addr")) };
    let h = Arc::new(Host::new(Engine::start(node), cfg).expect("host"));
    let server = h.clone();
    tokio::spawn(async move { server.serve().await });
    h
}

fn befriend(a: &Host, b: &Host) {
    let ia = a.engine().write_here(|n| n.invite(None, 1).expect("invite")).expect("write");
    let ib = b.engine().write_here(|n| n.invite(None, 1).expect("invite")).expect("write");
    a.engine().write_here(|n| n.add_contact(&ib, None).expect("add")).expect("write");
    b.engine().write_here(|n| n.add_contact(&ia, None).expect("add")).expect("write");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Two fresh contacts on every interface start LAN discovery at once (on a port of their
/// own); how long until both hold a session found by a beacon. `None` if no beacon reached
/// them within 10 s (a machine whose only interface is loopback).
async fn lan_setup(dir: &std::path::Path, port: u16) -> Option<Duration> {
    let a = host_at(Node::init(&dir.join(format!("la{port}")), "a").expect("init"), false, "0.0.0.0:0");
    let b = host_at(Node::init(&dir.join(format!("lb{port}")), "b").expect("init"), false, "0.0.0.0:0");
    befriend(&a, &b);
    let cfg = libra_engine::net::LanConfig { port, ..Default::default() };
    let t = Instant::now();
    a.run_lan(cfg).expect("lan");
    b.run_lan(cfg).expect("lan");
    let (da, db) = (a.device(), b.device());
    let took = loop {
        if a.online().contains_key(&db) && b.online().contains_key(&da) {
            break Some(t.elapsed());
        }
        if t.elapsed() > Duration::from_secs(10) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    a.shutdown().await;
    b.shutdown().await;
    took
}

fn main() {
    let entries = arg("--entries", 50_000);
    let setups = arg("--setups", 20);
    let lan_setups = arg("--lan-setups", 5);
    let dir = tempfile::tempdir().expect("tempdir");
    // B holds `entries` small entries in its device log: what a new contact syncs cold.
    let mut b_node = Node::init(&dir.path().join("b"), "b").expect("init");
    let key = b_node.secrets.device.signing.clone();
    for chunk in (0..entries).collect::<Vec<_>>().chunks(5_000) {
        let items = chunk.iter().map(|i| (99u16, format!("entry {i:>200}").into_bytes())).collect();
        b_node.store.append(&key, items, libra_engine::clock::wall_ms()).expect("append");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let b = host(b_node, false);
        let r = host(Node::init(&dir.path().join("r"), "r").expect("init"), true);
        let fresh: Vec<Arc<Host>> =
            (0..4).map(|i| host(Node::init(&dir.path().join(format!("a{i}")), "a").expect("init"), false)).collect();
        for a in &fresh {
            befriend(a, &b);
            befriend(a, &r);
        }
        let (direct_a, relayed_a) = (fresh[0].clone(), fresh[1].clone());
        befriend(&b, &r);
        let (baddr, bdev, raddr, rdev) = (b.local_addr().expect("addr"), b.device(), r.local_addr().expect("addr"), r.device());
        // B keeps a live session with R (as a node behind a NAT keeps one with its friend).
        let lb = b.clone();
        tokio::spawn(async move {
            let _ = lb.connect(raddr, Some(rdev), true).await;
        });
        while !r.online().contains_key(&bdev) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // Throughput: a cold sync of everything B holds, directly and through R, each by a
        // fresh contact; in both orders (the first sync also warms B's store).
        let mut direct = Vec::new();
        let mut relayed = Vec::new();
        for (i, a) in fresh.iter().enumerate() {
            let via_relay = i == 1 || i == 2;
            let t = Instant::now();
            let out = if via_relay {
                a.connect_via(raddr, rdev, bdev, false).await.expect("relayed sync")
            } else {
                a.connect(baddr, Some(bdev), false).await.expect("direct sync")
            };
            let rate = out.entries_in as f64 / t.elapsed().as_secs_f64();
            if via_relay { relayed.push(rate) } else { direct.push(rate) }
        }
        let (direct, relayed) = (direct.iter().sum::<f64>() / 2.0, relayed.iter().sum::<f64>() / 2.0);

        // Set-up: a one-shot session with nothing to transfer (handshakes, TLS, reconciliation
        // of equal sets), by each path; the medians of `setups` runs.
        let mut d = Vec::new();
        let mut p = Vec::new();
        let mut rl = Vec::new();
        for _ in 0..setups {
            let t = Instant::now();
            direct_a.connect(baddr, Some(bdev), false).await.expect("direct");
            d.push(t.elapsed());
            let t = Instant::now();
            direct_a.punch_via(raddr, rdev, bdev, false).await.expect("punched");
            p.push(t.elapsed());
            let t = Instant::now();
            relayed_a.connect_via(raddr, rdev, bdev, false).await.expect("relayed");
            rl.push(t.elapsed());
        }
        println!(
            "set-up to a synced session on loopback (median of {setups}): direct {:.2} ms, punched (introduction + direct dial) {:.2} ms, relayed {:.2} ms",
            ms(median(d)),
            ms(median(p)),
            ms(median(rl))
        );
        println!(
            "cold sync of {entries} entries: direct {direct:.0} entries/s, relayed {relayed:.0} entries/s = {:.2} × direct (target ≥ 0.50) {}",
            relayed / direct,
            if relayed / direct >= 0.5 { "PASS" } else { "FAIL" }
        );
        let mut lan = Vec::new();
        for i in 0..lan_setups {
            let port = 27_445 + u16::try_from(i).unwrap_or(0);
            match lan_setup(dir.path(), port).await {
                Some(d) => lan.push(d),
                None => {
                    println!("LAN set-up: no beacon arrived within 10 s (no interface but loopback?)");
                    break;
                }
            }
        }
        if !lan.is_empty() {
            println!(
                "LAN set-up, discovery started → session both ways (median of {}): {:.2} ms (the first beacons go out at start; later ones every 5 s)",
                lan.len(),
                ms(median(lan))
            );
        }
    });
}
