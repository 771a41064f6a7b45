//! Sync benchmarks, figures next to their limits measured in the same run.
//!
//!     cargo bench -p libra-engine --bench sync -- [--entries N] [--logs L] [--quic-entries M]
//!
//! reconcile: two stores of N entries in L logs differing by d ∈ {0, 10, 1000, 100000} entries
//!            scattered across logs (in memory, real messages and codec): round trips, bytes on
//!            the wire ÷ bytes of the differing entries, time. Targets: d=0 → 1 round trip,
//!            ≤ 512 B, ≤ 1 ms; d=1000 → ≤ 4 round trips, bytes ≤ 1.2 × entries + 4 KiB.
//! quic:      cold full sync of M entries over QUIC on loopback into an empty store, entries/s
//!            next to the same run's ingest rate; target ≥ 0.7 ×.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use libra_engine::log::{Entry, sign_entry};
use libra_engine::sync::Session;
use libra_engine::sync::memory::{MemLogs as Mem, run_pair};

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
    (tr.round_trips(), tr.bytes, t.elapsed())
}

fn main() {
    let entries = arg("--entries", 1_000_000);
    let logs = arg("--logs", 1_000);
    let t = Instant::now();
    let full = make(entries, logs);
    println!("generated {entries} entries in {logs} logs in {:.1?}", t.elapsed());
    let authors: Vec<[u8; 32]> = full.logs.keys().copied().collect();
    for d in [0usize, 10, 1_000, 100_000] {
        if d > entries / 2 {
            continue;
        }
        let mut a = full.clone();
        let mut b = full.clone();
        // Remove d tail entries from logs picked by a fixed hash sequence.
        let mut diff_bytes = 0;
        for i in 0..d {
            let pick = u64::from_le_bytes(blake3::hash(&i.to_le_bytes()).as_bytes()[..8].try_into().expect("8"));
            let mut idx = (pick % authors.len() as u64) as usize;
            while b.logs[&authors[idx]].is_empty() {
                idx = (idx + 1) % authors.len();
            }
            let e = b.logs.get_mut(&authors[idx]).and_then(Vec::pop).expect("entry");
            diff_bytes += e.encode().len();
        }
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
                "d={d}: {rt} round trips, {bytes} B on the wire for {diff_bytes} B of differing entries = {ratio:.3} × (limit 1.2 × + 4 KiB = {:.0} B: {}), {:.1} ms",
                limit,
                if bytes as f64 <= limit { "PASS" } else { "FAIL" },
                took.as_secs_f64() * 1e3
            );
        }
    }
}
