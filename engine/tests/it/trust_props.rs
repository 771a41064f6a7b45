//! The trust chain converges (spec/devices.md, section 6): two devices holding the user key
//! certify and revoke devices concurrently, each in its own log, and every order in which a
//! peer folds those entries gives the same trust view.

use libra_engine::identity::{DeviceKeys, UserKeys};
use libra_engine::log::{Entry, sign_entry};
use libra_engine::payload::{AgreementKey, DeviceCertPayload, DeviceHello, Payload, RevocationPayload};
use libra_engine::projection::{Projection, TrustView};
use proptest::prelude::*;

const DEVICES: usize = 5;

/// One act of a device holding the user key (device 0 or 4), written to its own log.
#[derive(Debug, Clone)]
enum Act {
    Certify(usize),
    Revoke(usize, u64),
    Rotate,
}

fn arb_act() -> impl Strategy<Value = (bool, Act)> {
    let act = prop_oneof![
        (0..DEVICES).prop_map(Act::Certify),
        ((0..DEVICES), 0u64..4).prop_map(|(d, s)| Act::Revoke(d, s)),
        Just(Act::Rotate),
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
        let w = if *second { 4 } else { 0 };
        let p = match act {
            Act::Certify(d) => cert_payload(cert(*d)),
            Act::Revoke(d, s) => {
                Payload::Revocation(RevocationPayload { revocation: user.revoke(devices[*d].id(), *s, "", 2000) })
            }
            Act::Rotate => Payload::Agreement(AgreementKey {
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
}
