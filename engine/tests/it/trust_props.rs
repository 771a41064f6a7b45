//! The trust chain converges (spec/devices.md, section 6): two devices holding the user key
//! certify and revoke devices concurrently, each in its own log, and every order in which a
//! peer folds those entries gives the same trust view — folded directly, and through real
//! stores that receive the logs as sync delivers them (each log in order, logs interleaved,
//! in batches), where entries after a revocation point are refused.

use libra_engine::identity::{DeviceKeys, UserKeys};
use libra_engine::log::{Entry, sign_entry};
use libra_engine::payload::{AgreementKey, DeviceCertPayload, DeviceHello, Payload, RevocationPayload};
use libra_engine::projection::{Projection, TrustView};
use proptest::prelude::*;

const DEVICES: usize = 5;

/// One act of a device holding the user key (device 0 or 4), written to its own log; or
/// (`Write`) an entry another device writes to its own log.
#[derive(Debug, Clone)]
enum Act {
    Certify(usize),
    Revoke(usize, u64),
    Rotate,
    Write(usize),
}

fn arb_act() -> impl Strategy<Value = (bool, Act)> {
    let act = prop_oneof![
        (0..DEVICES).prop_map(Act::Certify),
        ((0..DEVICES), 0u64..4).prop_map(|(d, s)| Act::Revoke(d, s)),
        Just(Act::Rotate),
        (1..DEVICES - 1).prop_map(Act::Write),
    ];
    (any::<bool>(), act)
}

fn keys(i: usize) -> DeviceKeys {
    let s = |what: &str| blake3::derive_key("libra trust props", format!("{i} {what}").as_bytes());
    DeviceKeys::from_secrets(s("sign"), s("agree"))
}

/// The logs: the user log, every device's hello, and the two writers' acts in their logs.
fn logs(acts: &[(bool, Act)]) -> Vec<Vec<Entry>> {
    let user = UserKeys::from_secret([7; 32]);
    let devices: Vec<DeviceKeys> = (0..DEVICES).map(keys).collect();
    let cert = |i: usize| user.certify(&devices[i], &format!("device {i}"), 1000 + i as u64);
    let append = |log: &mut Vec<Entry>, key: &DeviceKeys, p: Payload| {
        let prev = log.last().map(|e: &Entry| (e.header().seq, e.id));
        let ts = 1_000_000 + log.len() as u64;
        log.push(sign_entry(&key.signing, prev, ts, p.kind(), p.encode()));
    };
    let mut out = Vec::new();
    let mut user_log = Vec::new();
    for p in [Payload::Profile(libra_engine::payload::Profile { name: "u".into() }), cert_payload(cert(0))] {
        let prev = user_log.last().map(|e: &Entry| (e.header().seq, e.id));
        user_log.push(sign_entry(&user.signing, prev, 1_000_000 + user_log.len() as u64, p.kind(), p.encode()));
    }
    out.push(user_log);
    let mut device_logs: Vec<Vec<Entry>> = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let mut log = Vec::new();
        append(&mut log, d, Payload::DeviceHello(DeviceHello { cert: cert(i) }));
        device_logs.push(log);
    }
    for (second, act) in acts {
        let w = match act {
            Act::Write(d) => *d,
            _ if *second => 4,
            _ => 0,
        };
        let p = match act {
            Act::Certify(d) => cert_payload(cert(*d)),
            Act::Revoke(d, s) => {
                Payload::Revocation(RevocationPayload { revocation: user.revoke(devices[*d].id(), *s, "", 2000) })
            }
            Act::Rotate | Act::Write(_) => Payload::Agreement(AgreementKey {
                agreement: libra_engine::codec::Bytes([device_logs[w].len() as u8; 32]),
            }),
        };
        let key = &devices[w];
        append(&mut device_logs[w], key, p);
    }
    out.extend(device_logs);
    out
}

fn cert_payload(cert: libra_engine::identity::DeviceCert) -> Payload {
    Payload::DeviceCert(DeviceCertPayload { cert })
}

fn fold(entries: &[&Entry]) -> TrustView {
    let mut v = TrustView::default();
    for e in entries {
        v.apply(e);
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn concurrent_adds_and_revocations_converge(
        acts in proptest::collection::vec(arb_act(), 0..24),
        order_a in proptest::collection::vec(any::<u32>(), 64),
        order_b in proptest::collection::vec(any::<u32>(), 64),
    ) {
        let logs = logs(&acts);
        let all: Vec<&Entry> = logs.iter().flatten().collect();
        let shuffled = |keys: &[u32]| {
            let mut v: Vec<(u32, usize)> = (0..all.len()).map(|i| (keys[i % keys.len()] ^ (i as u32).wrapping_mul(2_654_435_761), i)).collect();
            v.sort_unstable();
            v.into_iter().map(|(_, i)| all[i]).collect::<Vec<_>>()
        };
        let a = fold(&shuffled(&order_a));
        let b = fold(&shuffled(&order_b));
        let in_order = fold(&all);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &in_order);
        // The fold says what the acts say: a device is revoked iff some act revoked it, at the
        // lowest point named.
        for d in 0..DEVICES {
            let want = acts.iter().filter_map(|(_, a)| match a { Act::Revoke(x, s) if *x == d => Some(*s), _ => None }).min();
            prop_assert_eq!(a.revoked_after(&keys(d).id()), want);
        }
    }

    #[test]
    fn stores_that_receive_the_logs_in_any_order_fold_the_same_trust_chain(
        acts in proptest::collection::vec(arb_act(), 0..20),
        order_a in proptest::collection::vec(any::<u32>(), 64),
        order_b in proptest::collection::vec(any::<u32>(), 64),
    ) {
        let logs = logs(&acts);
        let (a, a_reopened) = through_store(deliveries(&logs, &order_a));
        let (b, b_reopened) = through_store(deliveries(&logs, &order_b));
        prop_assert_eq!(&a, &a_reopened, "a reopened store rebuilds what it folded");
        prop_assert_eq!(&b, &b_reopened);
        prop_assert_eq!(&a, &b, "two peers, two delivery orders, one trust chain");
        // And it is the fold of every entry: what a revoked device wrote after its point is
        // refused from its log, but the statements in it count as if it had been held.
        prop_assert_eq!(&a, &fold(&logs.iter().flatten().collect::<Vec<_>>()));
    }
}

/// The logs as one sync after another delivers them: each log in its own order, the logs
/// interleaved as `keys` say, 1 to 4 entries of a log at a time, 1 to 3 such runs per ingest.
fn deliveries(logs: &[Vec<Entry>], keys: &[u32]) -> Vec<Vec<Entry>> {
    let mut next = vec![0usize; logs.len()];
    let mut out = Vec::new();
    let mut k = 0usize;
    let mut draw = || {
        k += 1;
        keys[k % keys.len()].wrapping_add((k as u32).wrapping_mul(2_654_435_761))
    };
    loop {
        let mut batch = Vec::new();
        for _ in 0..1 + draw() as usize % 3 {
            let live: Vec<usize> = (0..logs.len()).filter(|&i| next[i] < logs[i].len()).collect();
            let Some(&log) = live.get(draw() as usize % live.len().max(1)) else { break };
            let end = (next[log] + 1 + draw() as usize % 4).min(logs[log].len());
            batch.extend_from_slice(&logs[log][next[log]..end]);
            next[log] = end;
        }
        if batch.is_empty() {
            return out;
        }
        out.push(batch);
    }
}

/// A real store fed `batches`: its trust view, and the same after a reopen (checked against a
/// rebuild).
fn through_store(batches: Vec<Vec<Entry>>) -> (TrustView, TrustView) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut store = libra_engine::Store::open(dir.path()).expect("open");
    for b in batches {
        store.ingest(b, 2_000_000).expect("ingest");
    }
    let live = store.trust().clone();
    drop(store);
    let reopened = libra_engine::Store::open(dir.path()).expect("reopen");
    let rebuilt: TrustView = reopened.rebuild().expect("rebuild");
    assert_eq!(reopened.trust(), &rebuilt, "the persisted view is what the logs (and kept statements) rebuild");
    (live, reopened.trust().clone())
}
