//! Benchmarks of the log and store, each figure printed next to its limit measured in the same run.
//!
//!     cargo bench -p libra-engine --bench log -- [all|ingest|append|open] [--entries N] [--logs L]
//!
//! ingest: N signed entries across L logs into an empty store, from memory.
//!         target: entries/s ≥ 0.6 × one core's batch-verify rate.
//! append: local appends (sign + encode + store + fsync per call) next to raw sign/s; target ≥ 0.7.
//! open:   reopen the ingested store right after ingest (journal as ingest left it), and after
//!         compaction reading the newest 50 entries of one log; target ≤ 300 ms for both;
//!         bytes on disk ÷ raw entry bytes after compaction; target ≤ 1.2.

#[path = "common/alloc.rs"]
mod alloc;

use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use libra_engine::Store;
use libra_engine::log::{Entry, sign_entry};

const PAYLOAD: usize = 120;

struct Args {
    what: String,
    entries: usize,
    logs: usize,
}

fn args() -> Args {
    let mut a = Args { what: "all".into(), entries: 1_000_000, logs: 1_000 };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--entries" => a.entries = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.entries),
            "--logs" => a.logs = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.logs),
            "--bench" => {}
            w if !w.starts_with('-') => a.what = w.to_owned(),
            _ => {}
        }
    }
    a
}

fn key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&blake3::derive_key("libra bench", &i.to_le_bytes()))
}

/// Incompressible, like the ciphertext real messages carry.
fn payload(log: usize, seq: usize) -> Vec<u8> {
    let mut p = vec![0u8; PAYLOAD];
    let mut h = blake3::Hasher::new();
    h.update(&log.to_le_bytes()).update(&seq.to_le_bytes());
    h.finalize_xof().fill(&mut p);
    p
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// One core's raw rates: verify_strict/s, verify_batch(256)/s, sign/s.
fn raw_limits() -> (f64, f64, f64) {
    let k = key(0);
    let msgs: Vec<Vec<u8>> = (0..4096).map(|i| payload(0, i)).collect();
    let t = Instant::now();
    let sigs: Vec<Signature> = msgs.iter().map(|m| k.sign(m)).collect();
    let sign = rate(msgs.len(), t.elapsed());
    let vk = k.verifying_key();
    let t = Instant::now();
    for (m, s) in msgs.iter().zip(&sigs) {
        assert!(vk.verify_strict(m, s).is_ok());
    }
    let verify = rate(msgs.len(), t.elapsed());
    let keys: Vec<VerifyingKey> = vec![vk; 256];
    let t = Instant::now();
    for chunk in 0..msgs.len() / 256 {
        let m: Vec<&[u8]> = msgs[chunk * 256..(chunk + 1) * 256].iter().map(Vec::as_slice).collect();
        assert!(ed25519_dalek::verify_batch(&m, &sigs[chunk * 256..(chunk + 1) * 256], &keys).is_ok());
    }
    let batch = rate(msgs.len(), t.elapsed());
    (verify, batch, sign)
}

/// `entries` entries in `logs` logs, grouped by log, built on both cores.
fn make_logs(entries: usize, logs: usize) -> Vec<Vec<Entry>> {
    let per = entries / logs;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = logs.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(logs))
                        .map(|l| {
                            let k = key(l + 1);
                            let mut log: Vec<Entry> = Vec::with_capacity(per);
                            for i in 0..per {
                                let prev = log.last().map(|e| (e.header().seq, e.id));
                                log.push(sign_entry(&k, prev, 1_000_000 + i as u64, 99, payload(l, i)));
                            }
                            log
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("generator")).collect()
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn main() {
    let a = args();
    let (verify, batch, sign) = raw_limits();
    println!(
        "limits (one core): verify_strict {verify:.0}/s, verify_batch(256) {batch:.0}/s, sign {sign:.0}/s; allocator {}",
        alloc::NAME
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");

    if a.what == "all" || a.what == "append" {
        let adir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(adir.path()).expect("open");
        let k = key(9999);
        let n = 20_000;
        let t = Instant::now();
        for i in 0..n / 100 {
            let items = (0..100).map(|j| (99u16, payload(0, i * 100 + j))).collect();
            store.append(&k, items, 1).expect("append");
        }
        let grouped = rate(n, t.elapsed());
        let t = Instant::now();
        let single_n = 2_000;
        for i in 0..single_n {
            store.append(&k, vec![(99u16, payload(1, i))], 1).expect("append");
        }
        let single = rate(single_n, t.elapsed());
        println!(
            "append: {grouped:.0} entries/s in calls of 100 (one fsync per call) = {:.2} × sign/s (target ≥ 0.70) {}",
            grouped / sign,
            verdict(grouped / sign >= 0.7)
        );
        println!("append: {single:.0} entries/s one per call (one fsync each) = {:.2} × sign/s", single / sign);
    }

    if a.what == "all" || a.what == "ingest" || a.what == "open" {
        let t = Instant::now();
        let logs = make_logs(a.entries, a.logs);
        let total: usize = logs.iter().map(Vec::len).sum();
        let raw_bytes: usize = logs.iter().flatten().map(|e| e.signed_bytes.len() + PAYLOAD).sum();
        println!("generated {total} entries in {} logs in {:.1?}", logs.len(), t.elapsed());

        let mut store = Store::open(&path).expect("open");
        // As sync delivers them: runs of each log, 10 logs per call of 10,000 entries.
        let per_call = 10;
        let t = Instant::now();
        let mut logs = logs;
        while !logs.is_empty() {
            let take = per_call.min(logs.len());
            let batch: Vec<Entry> = logs.drain(..take).flatten().collect();
            let r = store.ingest(batch, libra_engine::clock::wall_ms()).expect("ingest");
            assert!(r.rejected.is_empty());
        }
        let d = t.elapsed();
        let ingest = rate(total, d);
        println!(
            "ingest: {total} entries in {d:.1?} = {ingest:.0} entries/s = {:.2} × batch-verify/s of one core (target ≥ 0.60) {}; {:.2} × verify_strict/s",
            ingest / batch,
            verdict(ingest / batch >= 0.6),
            ingest / verify
        );
        let (tables, journal) = store.disk_space().expect("space");
        println!(
            "disk before compaction: tables {tables} B ({:.2} × raw), journal {journal} B",
            tables as f64 / raw_bytes as f64
        );
        // Reopen with the journal as ingest left it (what a crash or a kill leaves).
        drop(store);
        let t = Instant::now();
        let store = Store::open(&path).expect("reopen");
        let d = t.elapsed();
        println!(
            "open right after ingest (journal as ingest left it): {:.1} ms (target ≤ 300 ms) {}",
            d.as_secs_f64() * 1e3,
            verdict(d <= Duration::from_millis(300))
        );
        let t = Instant::now();
        store.compact().expect("compact");
        let (tables, journal) = store.disk_space().expect("space");
        let ratio = tables as f64 / raw_bytes as f64;
        println!(
            "disk after compaction ({:.1?}): tables {tables} B = {ratio:.3} × raw entry bytes {raw_bytes} B (target ≤ 1.20) {}; journal file {journal} B apparent (preallocated, sparse; {:.3} × raw if counted)",
            t.elapsed(),
            verdict(ratio <= 1.2),
            (tables + journal) as f64 / raw_bytes as f64
        );
        drop(store);

        let author = key(a.logs / 2 + 1).verifying_key().to_bytes();
        let t = Instant::now();
        let store = Store::open(&path).expect("reopen");
        let opened = t.elapsed();
        let newest = store.newest(&author, 50).expect("newest");
        let d = t.elapsed();
        assert_eq!(newest.len(), 50.min(a.entries / a.logs));
        println!(
            "open: reopen {} entries + newest 50 of one log in {:.1} ms (open {:.1} ms; target ≤ 300 ms) {}",
            store.entry_count(),
            d.as_secs_f64() * 1e3,
            opened.as_secs_f64() * 1e3,
            verdict(d <= Duration::from_millis(300))
        );
    }
}
