//! Sync benchmarks, figures next to their limits measured in the same run.
//!
//!     cargo bench -p libra-engine --bench sync -- [--entries N] [--logs L] [--seed S] [--quic-entries M]
//!
//! reconcile: two stores of N entries in L logs differing by d ∈ {0, 10, 1000, 100000} entries
//!            scattered across logs (in memory, real messages and codec): round trips, bytes on
//!            the wire ÷ bytes of the differing entries, time; by ranges (first contact) and
//!            from a sync point (a Since, spec/sync.md 8.9). Targets: d=0 → 1 round trip,
//!            ≤ 512 B, ≤ 1 ms; d=1000 → ≤ 4 round trips, bytes ≤ 1.2 × entries + 4 KiB.
//! store:     (with --store [--store-logs 1000,10000,100000] [--per-log 2] [--d 1000]) the same
//!            through real stores and engines over an in-memory byte stream (interest, head
//!            sets and the connection included): an idle session, then one after d new entries.
//! quic:      (with --quic-entries M) cold full sync of M entries over QUIC on loopback into an
//!            empty store, entries/s next to the same run's ingest rate; target ≥ 0.7 ×; with
//!            its fresh pages per entry and what a fresh page costs now (on a VM: 1–40 µs, by
//!            the minute). Then a live push of --live N small messages: entries/s, p50/p99
//!            append→stored latency
//!            (--peers P: A allows P more peers, offline, as a node with many contacts does).

#[path = "common/alloc.rs"]
mod alloc;

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use libra_engine::log::{Entry, sign_entry};
use libra_engine::sync::memory::{MemLogs as Mem, run_pair};
use libra_engine::sync::{Outcome, Session};

#[path = "common/proc_stat.rs"]
mod proc_stat;
use proc_stat::{fresh_mark, fresh_page_cost, fresh_since};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn make(entries: usize, logs: usize) -> Mem {
    let per = entries / logs;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = logs.div_ceil(threads);
    let parts: Vec<Vec<([u8; 32], Vec<Entry>)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(logs))
                        .map(|l| {
                            let k = SigningKey::from_bytes(&blake3::derive_key("libra sync bench", &l.to_le_bytes()));
                            let mut log: Vec<Entry> = Vec::with_capacity(per);
                            for i in 0..per {
                                let mut p = vec![0u8; 120];
                                blake3::Hasher::new()
                                    .update(&(l, i).0.to_le_bytes())
                                    .update(&i.to_le_bytes())
                                    .finalize_xof()
                                    .fill(&mut p);
                                let prev = log.last().map(|e| (e.header().seq, e.id));
                                log.push(sign_entry(&k, prev, 1_000_000 + i as u64, 99, p));
                            }
                            (k.verifying_key().to_bytes(), log)
                        })
                        .collect()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("gen")).collect()
    });
    Mem { logs: parts.into_iter().flatten().collect(), forked: Default::default() }
}

/// A session to completion between in-memory stores; entries move as wire bytes but are not
/// re-validated (that is the ingest benchmark's job). Returns (round trips, bytes, time).
fn reconcile(a: &mut Mem, b: &mut Mem) -> (usize, usize, Duration) {
    let t = Instant::now();
    let tr = run_pair(a, b, false).expect("converges");
    let took = t.elapsed();
    // Where the bytes went, by message tag (framed).
    let mut by: std::collections::BTreeMap<u8, (usize, usize)> = Default::default();
    for (_, m) in &tr.messages {
        let e = by.entry(m.get(1).copied().unwrap_or(0)).or_default();
        e.0 += 1;
        e.1 += m.len() + 4;
    }
    let names = [
        "?",
        "reconcile",
        "entries",
        "want",
        "done",
        "close",
        "introduce",
        "grant",
        "since",
        "since-answer",
        "sketch",
        "symbols",
        "more",
        "resolve",
    ];
    let parts: Vec<String> =
        by.iter().map(|(t, (n, b))| format!("{} {n}× {b} B", names.get(usize::from(*t)).unwrap_or(&"?"))).collect();
    println!("    bytes by message: {}", parts.join(", "));
    (tr.round_trips(), tr.bytes, took)
}

/// One session between two engines over an in-memory byte stream (the driver QUIC uses, no
/// socket): what each side did, and the wall time until both ended.
async fn session(a: &libra_engine::engine::Engine, b: &libra_engine::engine::Engine) -> (Outcome, Outcome, Duration) {
    use libra_engine::net::stream;
    use libra_engine::sync::{Conn, Limits};
    let (ab, ba) = tokio::io::duplex(256 * 1024);
    let (ar, aw) = tokio::io::split(ab);
    let (br, bw) = tokio::io::split(ba);
    let (da, db) = (a.device(), b.device());
    let (ea, eb) = (a.clone(), b.clone());
    let t = Instant::now();
    let ta =
        tokio::spawn(async move { stream::run(&ea, Conn::new(db, true, false, Limits::default(), 0), ar, aw).await });
    let tb =
        tokio::spawn(async move { stream::run(&eb, Conn::new(da, false, false, Limits::default(), 0), br, bw).await });
    let (ca, cb) = (ta.await.expect("a"), tb.await.expect("b"));
    let took = t.elapsed();
    assert!(ca.outcome.synced && cb.outcome.synced, "session ended unsynced: {:?} / {:?}", ca.end(), cb.end());
    (ca.outcome, cb.outcome, took)
}

/// Reconciliation through real stores and the engine (interest, head sets, the connection state
/// machine), at `logs` logs: an idle session, then one after A gained `d` entries in `d` logs.
fn store(logs: usize, per_log: usize, d: usize) {
    use libra_engine::engine::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let (a, b, mut made) = libra_engine::testkit::own_devices(dir.path(), logs, per_log).expect("stores");
    println!("store, {logs} logs × {per_log} entries: made in {:.1?}", t.elapsed());
    let (a, b) = (Engine::start(a), Engine::start(b));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let (oa, _, took) = session(&a, &b).await;
        let held = b.read(|n| n.store.entry_count()).expect("read");
        println!("  cold: {} entries out, {held} held, in {took:.1?}, {} round trips", oa.entries_out, oa.rounds);
        let mut idle = Vec::new();
        for _ in 0..arg("--idle", 7) {
            let (oa, ob, took) = session(&a, &b).await;
            assert_eq!(oa.entries_out + ob.entries_out, 0);
            idle.push((took, oa.rounds, oa.bytes_out + ob.bytes_out));
        }
        idle.sort();
        let (m, rounds, bytes) = idle[idle.len() / 2];
        println!(
            "  d=0: {rounds} round trip(s) (target 1), {bytes} B on the wire (target ≤ 512), median session {:.3} ms over {} (min {:.3}, max {:.3}; target ≤ 1 ms at 100k logs) — both sides in one process, wall time",
            m.as_secs_f64() * 1e3,
            idle.len(),
            idle[0].0.as_secs_f64() * 1e3,
            idle[idle.len() - 1].0.as_secs_f64() * 1e3
        );
        let d = d.min(logs);
        let step = logs / d.max(1);
        let fresh: Vec<Entry> = (0..d).map(|i| made[i * step].extend()).collect();
        let diff_bytes: usize = fresh.iter().map(|e| e.encode().len()).sum();
        a.ingest(fresh).await.expect("ingest");
        let (oa, ob, took) = session(&a, &b).await;
        let bytes = (oa.bytes_out + ob.bytes_out) as f64;
        let limit = 1.2 * diff_bytes as f64 + 4096.0;
        println!(
            "  d={d}: {} round trips (target ≤ 4), {bytes} B on the wire for {diff_bytes} B of differing entries = {:.3} × (limit 1.2 × + 4 KiB = {limit:.0} B: {}), {:.1?}",
            oa.rounds.max(ob.rounds),
            bytes / diff_bytes as f64,
            if bytes <= limit { "PASS" } else { "FAIL" },
            took
        );
        assert_eq!(oa.entries_out, d as u64);
    });
    a.shutdown();
    b.shutdown();
}

/// A memory figure of this process from /proc/self/status (`VmHWM`: peak, `VmRSS`: now), MiB;
/// 0 where there is none.
fn rss_mib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map_or(0, |kib| kib / 1024)
}

/// Starts a new peak: the kernel resets `VmHWM` to the current RSS.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Cold full sync over QUIC on loopback, then live push latency.
fn quic(m: usize, logs: usize, live_n: usize, pace: Duration) {
    use libra_engine::net::{Host, HostConfig};
    use libra_engine::node::Node;
    use libra_engine::store::PeerRecord;
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("tempdir");
    let data = make(m, logs);
    let authors: Vec<[u8; 32]> = data.logs.keys().copied().collect();
    let mut a = Node::init(&dir.path().join("a"), "a").expect("init a");
    let b = Node::init(&dir.path().join("b"), "b").expect("init b");
    let allowed = PeerRecord { allowed: true, ..PeerRecord::default() };
    // The bench logs are A's own devices (certified in A's user log), so A offers them to B
    // (spec/sync.md, section 4.2); B allows them, so it accepts them before A's certificates
    // arrive.
    {
        let user = libra_engine::identity::UserKeys::from_secret(
            a.secrets.user.as_ref().expect("user key").signing.to_bytes(),
        );
        let certs: Vec<(u16, Vec<u8>)> = (0..logs)
            .map(|l| {
                let secret = blake3::derive_key("libra sync bench", &l.to_le_bytes());
                let dk = libra_engine::identity::DeviceKeys::from_secrets(secret, secret);
                let cert = user.certify(&dk, "bench", libra_engine::clock::wall_ms());
                let p = libra_engine::payload::Payload::DeviceCert(libra_engine::payload::DeviceCertPayload { cert });
                (p.kind(), p.encode())
            })
            .collect();
        for chunk in certs.chunks(1000) {
            a.store.append(&user.signing, chunk.to_vec(), libra_engine::clock::wall_ms()).expect("certify");
        }
    }
    for k in authors.iter().chain([b.device_id().as_bytes()]) {
        a.store.set_peer(k, &allowed, false).expect("allow");
    }
    // Other allowed peers A knows (offline): per-write work must not grow with them.
    let peers = arg("--peers", 0);
    for i in 0..peers {
        let k = SigningKey::from_bytes(&blake3::derive_key("libra sync bench peer", &(i as u64).to_le_bytes()));
        a.store.set_peer(&k.verifying_key().to_bytes(), &allowed, false).expect("allow");
    }
    if peers > 0 {
        println!("A allows {peers} more peers (offline)");
    }
    for k in authors.iter().chain([a.device_id().as_bytes()]) {
        b.store.set_peer(k, &allowed, false).expect("allow");
    }
    // Ingest into A: the same run's ingest rate is the limit the sync is measured against.
    let all: Vec<Entry> = data.logs.into_values().collect::<Vec<_>>().chunks(10).flat_map(|c| c.concat()).collect();
    let total = all.len();
    let t = Instant::now();
    for batch in all.chunks(10_000) {
        a.store.ingest(batch.to_vec(), libra_engine::clock::wall_ms()).expect("ingest");
    }
    let ingest_rate = total as f64 / t.elapsed().as_secs_f64();
    let a_device = *a.device_id().as_bytes();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let ha = Arc::new(Host::new(libra_engine::engine::Engine::start(a), HostConfig::new("127.0.0.1:0".parse().expect("addr"))).expect("host a"));
        let hb = Arc::new(Host::new(libra_engine::engine::Engine::start(b), HostConfig::new("127.0.0.1:0".parse().expect("addr"))).expect("host b"));
        let server = ha.clone();
        tokio::spawn(async move { server.serve().await });
        let addr = ha.local_addr().expect("addr");
        let before = rss_mib("VmRSS:");
        reset_peak_rss();
        hb.engine().take_longest_read_wait();
        // An app open on B meanwhile: it reads the node every 2 ms (a progress bar, a chat).
        let syncing = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let app = {
            let (engine, syncing) = (hb.engine().clone(), syncing.clone());
            std::thread::spawn(move || {
                while syncing.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = engine.read(|n| n.store.head(&a_device).map(|h| h.seq));
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        let fresh_before = fresh_mark();
        let t = Instant::now();
        let out = hb.connect(addr, Some(a_device), false).await.expect("cold sync");
        let d = t.elapsed();
        syncing.store(false, std::sync::atomic::Ordering::SeqCst);
        app.join().expect("app reader");
        let cold_wait = hb.engine().take_longest_read_wait();
        let rate = out.entries_in as f64 / d.as_secs_f64();
        if !pace.is_zero() {
            // The paced run only sets up a peer for the latency figure.
        } else {
        println!(
            "quic cold sync: {} entries in {d:.1?} = {rate:.0} entries/s = {:.2} × this run's ingest rate {ingest_rate:.0}/s (target ≥ 0.70) {}; {} B on the wire in",
            out.entries_in,
            rate / ingest_rate,
            if rate / ingest_rate >= 0.7 { "PASS" } else { "FAIL" },
            out.bytes_in
        );
        let peak = rss_mib("VmHWM:");
        println!(
            "  memory: {before} MiB resident before the sync (the bench's generated entries and node A), peak {peak} MiB during it: the sync's two sides together added at most {} MiB",
            peak.saturating_sub(before)
        );
        println!("  longest wait of a read on B during the sync (its session, and an app reading every 2 ms): {cold_wait:.1?}");
        if let Some((heap, bytes)) = fresh_since(fresh_before, out.entries_in as u64) {
            // What new memory cost just now: on a VM it swings between minutes (see messaging.rs).
            println!(
                "  fresh memory per entry: {heap:.2} pages of the heap + {bytes:.0} B written to files; a fresh 4 KiB page costs {:.1} µs on this machine now",
                fresh_page_cost()
            );
        }
        }

        // Live: B stays connected; A appends small messages in batches of 10 (group commit);
        // B's head is sampled to time each entry from append to stored.
        let live = hb.clone();
        tokio::spawn(async move { live.connect(addr, Some(a_device), true).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let author = a_device;
        // Sampling reads (never a write group: that would fsync B at every sample).
        let at_b = || hb.engine().read(|n| n.store.head(&author).map_or(0, |h| h.seq)).expect("read");
        let base = at_b();
        ha.engine().take_longest_read_wait();
        hb.engine().take_longest_read_wait();
        let appended: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
        let writer = {
            let ha = ha.clone();
            let appended = appended.clone();
            std::thread::spawn(move || {
                let t0 = Instant::now();
                for i in 0..live_n / 10 {
                    if !pace.is_zero() {
                        let due = t0 + pace * u32::try_from(i).unwrap_or(u32::MAX);
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    }
                    let items = (0..10).map(|j| (99u16, format!("live {i} {j}").into_bytes())).collect();
                    ha.with_node(|n| n.store.append(&n.secrets.device.signing, items, libra_engine::clock::wall_ms()).expect("append"));
                    let now = Instant::now();
                    appended.lock().expect("lock").extend(std::iter::repeat_n(now, 10));
                }
            })
        };
        let start = Instant::now();
        let mut seen: Vec<Instant> = Vec::with_capacity(live_n);
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen.len() < live_n && Instant::now() < deadline {
            let head = at_b() - base;
            let now = Instant::now();
            while (seen.len() as u64) < head {
                seen.push(now);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        writer.join().expect("writer");
        let took = start.elapsed();
        let appended = appended.lock().expect("lock").clone();
        let mut lat: Vec<Duration> = seen.iter().zip(&appended).map(|(s, a)| s.saturating_duration_since(*a)).collect();
        lat.sort();
        let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or_default();
        println!(
            "live push ({}): {} of {live_n} entries in {took:.1?} = {:.0} entries/s; latency append→stored on peer p50 {:.2} ms, p99 {:.2} ms (sampled every 0.2 ms; target p50 ≤ 5 ms, p99 ≤ 50 ms) {}",
            if pace.is_zero() { "flood, appends of 10 back to back".to_owned() } else { format!("paced, 10 entries every {pace:?}") },
            seen.len(),
            seen.len() as f64 / took.as_secs_f64(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            if pct(0.5) <= Duration::from_millis(5) && pct(0.99) <= Duration::from_millis(50) { "PASS" } else { "FAIL" }
        );
        println!(
            "  longest wait of a read for the node (sessions, this bench polling B): A {:.1?}, B {:.1?}",
            ha.engine().take_longest_read_wait(),
            hb.engine().take_longest_read_wait()
        );
    });
}

fn main() {
    if std::env::args().any(|a| a == "--store") {
        let list: Vec<usize> = std::env::args()
            .skip_while(|a| a != "--store-logs")
            .nth(1)
            .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
        for logs in list {
            store(logs, arg("--per-log", 2), arg("--d", 1_000));
        }
        return;
    }
    let quic_entries = arg("--quic-entries", 0);
    if quic_entries > 0 {
        quic(quic_entries, arg("--logs", 1_000), arg("--live", 100_000), Duration::ZERO);
        // The same at a pace the pipeline keeps up with: latency without queueing.
        quic(quic_entries.min(10_000), arg("--logs", 1_000).min(100), 20_000, Duration::from_millis(2));
        return;
    }
    let entries = arg("--entries", 1_000_000);
    let logs = arg("--logs", 1_000);
    let t = Instant::now();
    let full = make(entries, logs);
    println!("generated {entries} entries in {logs} logs in {:.1?}", t.elapsed());
    let authors: Vec<[u8; 32]> = full.logs.keys().copied().collect();
    let seed = arg("--seed", 0);
    for d in [0usize, 10, 1_000, 100_000] {
        if d > entries / 2 {
            continue;
        }
        let mut a = full.clone();
        let mut b = full.clone();
        // Remove d tail entries from logs picked by a fixed hash sequence.
        let mut diff_bytes = 0;
        let mut moved: Vec<[u8; 32]> = Vec::new();
        for i in 0..d {
            // `--seed S` picks another set of logs (0: the historical picks).
            let key = if seed == 0 { i.to_le_bytes().to_vec() } else { [i.to_le_bytes(), seed.to_le_bytes()].concat() };
            let pick = u64::from_le_bytes(blake3::hash(&key).as_bytes()[..8].try_into().expect("8"));
            let mut idx = (pick % authors.len() as u64) as usize;
            while b.logs[&authors[idx]].is_empty() {
                idx = (idx + 1) % authors.len();
            }
            let e = b.logs.get_mut(&authors[idx]).and_then(Vec::pop).expect("entry");
            diff_bytes += e.encode().len();
            moved.push(authors[idx]);
        }
        moved.sort_unstable();
        moved.dedup();
        // The same difference between two nodes that synced before (A moved those logs since;
        // spec/sync.md, 8.9), when it fits one Since.
        let since = if d > 0 && moved.len() <= libra_engine::sync::MAX_SINCE {
            let (mut a2, mut b2) = (a.clone(), b.clone());
            let t = Instant::now();
            let tr = libra_engine::sync::memory::run_pair_since(
                &mut a2,
                &mut b2,
                false,
                Some(moved.clone()),
                Some(Vec::new()),
            )
            .expect("converges");
            Some((tr.round_trips(), tr.bytes, t.elapsed()))
        } else {
            None
        };
        // The same first contact opened by the node that is behind.
        let behind = if d > 0 && d < 100_000 {
            let (mut a2, mut b2) = (a.clone(), b.clone());
            let r = reconcile(&mut b2, &mut a2);
            assert_eq!(a2.entry_count(), b2.entry_count());
            Some(r)
        } else {
            None
        };
        let (rt, bytes, took) = reconcile(&mut a, &mut b);
        assert_eq!(a.entry_count(), b.entry_count());
        if d == 0 {
            // The node keeps its head set up to date; time an idle reconcile's message handling
            // with the head sets already built, and separately with building them.
            let t = Instant::now();
            let (ha, hb) = (a.heads(), b.heads());
            let build = t.elapsed();
            let t = Instant::now();
            let mut sa = Session::new(ha, true);
            let mut sb = Session::new(hb, false);
            let m = sa.poll_message().expect("opening");
            sb.handle(m, &b).expect("handle");
            let reply = sb.poll_message().expect("reply");
            sa.handle(reply, &a).expect("handle");
            let warm = t.elapsed();
            println!(
                "d=0: {rt} round trip(s) (target 1), {bytes} B on the wire (target ≤ 512), {:.3} ms of reconcile work both sides (target ≤ 1 ms), +{:.3} ms to build both head sets from scratch; whole run {:.3} ms",
                warm.as_secs_f64() * 1e3,
                build.as_secs_f64() * 1e3,
                took.as_secs_f64() * 1e3
            );
        } else {
            let ratio = bytes as f64 / diff_bytes as f64;
            let limit = 1.2 * diff_bytes as f64 + 4096.0;
            println!(
                "d={d}: first contact (sketch at ≥ {} logs, else ranges): {rt} round trips, {bytes} B on the wire for {diff_bytes} B of differing entries = {ratio:.3} × (limit 1.2 × + 4 KiB = {:.0} B: {}), {:.1} ms",
                libra_engine::sync::SKETCH_MIN,
                limit,
                if bytes as f64 <= limit { "PASS" } else { "FAIL" },
                took.as_secs_f64() * 1e3
            );
            // The same difference opened another way, next to the same limit.
            let other = |what: &str, (rt, bytes, took): (usize, usize, Duration), target: &str| {
                println!(
                    "d={d}: {what}: {rt} round trips{target}, {bytes} B = {:.3} × ({}), {:.1} ms",
                    bytes as f64 / diff_bytes as f64,
                    if bytes as f64 <= limit { "PASS" } else { "FAIL" },
                    took.as_secs_f64() * 1e3
                );
            };
            if let Some(r) = behind {
                other("first contact opened by the node behind", r, "");
            }
            if let Some(r) = since {
                other("synced before (Since)", r, " (target ≤ 4)");
            }
        }
    }
}

/// The bench drives the node through the host's engine; an engine error ends the bench.
trait HostExt {
    fn with_node<R>(&self, f: impl FnOnce(&mut libra_engine::node::Node) -> R) -> R;
}

impl HostExt for libra_engine::net::Host {
    fn with_node<R>(&self, f: impl FnOnce(&mut libra_engine::node::Node) -> R) -> R {
        self.engine().write_here(f).expect("engine write")
    }
}
