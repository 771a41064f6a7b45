//! Projections: a rebuild from the logs equals the incremental state, whatever the arrival
//! order; a view that fell behind catches up on open.

use libra_engine::identity::{DeviceKeys, UserKeys};
use libra_engine::log::{Entry, sign_entry};
use libra_engine::payload::{DeviceCertPayload, DeviceHello, DeviceRevoke, Payload, Profile};
use libra_engine::projection::TrustView;
use libra_engine::{Store, clock};
use proptest::prelude::*;

use crate::util::temp_store;

/// A user log (profile, certificates, a rename, a revocation) and each device's log.
fn identity(label: &str, devices: usize) -> Vec<Vec<Entry>> {
    let seed = |s: &str| blake3::derive_key("libra tests", format!("{label} {s}").as_bytes());
    let user = UserKeys::from_secret(seed("user"));
    let devs: Vec<DeviceKeys> =
        (0..devices).map(|i| DeviceKeys::from_secrets(seed(&format!("d{i}")), seed(&format!("x{i}")))).collect();
    let mut user_payloads = vec![Payload::Profile(Profile { name: format!("{label} first") })];
    let mut logs = Vec::new();
    for (i, d) in devs.iter().enumerate() {
        let cert = user.certify(d, &format!("device {i}"), 1_000 + i as u64);
        user_payloads.push(Payload::DeviceCert(DeviceCertPayload { cert: cert.clone() }));
        let hello = Payload::DeviceHello(DeviceHello { cert });
        logs.push(vec![sign_entry(&d.signing, None, 10, hello.kind(), hello.encode())]);
    }
    user_payloads.push(Payload::Profile(Profile { name: format!("{label} renamed") }));
    if devices > 1 {
        user_payloads
            .push(Payload::DeviceRevoke(DeviceRevoke { device: devs[devices - 1].id(), reason: "lost".into() }));
    }
    let mut user_log: Vec<Entry> = Vec::new();
    for (i, p) in user_payloads.iter().enumerate() {
        let prev = user_log.last().map(|e| (e.header().seq, e.id));
        user_log.push(sign_entry(&user.signing, prev, 100 + i as u64, p.kind(), p.encode()));
    }
    logs.push(user_log);
    logs
}

fn all_logs() -> Vec<Vec<Entry>> {
    let mut logs = identity("alice", 3);
    logs.extend(identity("bob", 1));
    logs.extend(identity("carol", 2));
    logs
}

#[test]
fn trust_view_reads_right() {
    let (_dir, mut store) = temp_store();
    store.ingest(all_logs().concat(), clock::wall_ms()).expect("ingest");
    let t = store.trust();
    let named: Vec<String> = t.users.values().filter_map(|u| u.name.clone().map(|(_, n)| n)).collect();
    assert_eq!(named.len(), 3);
    assert!(named.contains(&"alice renamed".to_owned()));
    let alice = t.users.values().find(|u| u.name.as_ref().is_some_and(|(_, n)| n == "alice renamed")).expect("alice");
    assert_eq!(alice.devices.len(), 3);
    assert_eq!(alice.devices.values().filter(|d| d.trusted()).count(), 2);
    assert!(alice.devices.values().all(|d| d.in_user_log && d.in_device_log));
}

#[test]
fn rebuild_equals_incremental_and_survives_restart() {
    let (dir, mut store) = temp_store();
    // Arrive in small batches, device logs before user logs, plus local appends.
    for log in all_logs().into_iter().rev() {
        for chunk in log.chunks(2) {
            store.ingest(chunk.to_vec(), clock::wall_ms()).expect("ingest");
        }
    }
    let local = UserKeys::from_secret([5; 32]);
    store
        .append(&local.signing, vec![Payload::Profile(Profile { name: "local".into() }).encoded()], 1)
        .expect("append");
    let incremental = store.trust().clone();
    assert_eq!(store.rebuild::<TrustView>().expect("rebuild"), incremental);
    drop(store);
    let store = Store::open(dir.path().join("store")).expect("reopen");
    assert_eq!(store.trust(), &incremental);
    assert!(store.verify().expect("verify").is_empty());
}

#[test]
fn a_view_that_fell_behind_catches_up_on_open() {
    let (dir, mut store) = temp_store();
    store.ingest(all_logs().concat(), clock::wall_ms()).expect("ingest");
    let expected = store.trust().clone();
    drop(store);
    let path = dir.path().join("store");
    {
        // Erase the persisted view as if it had been added by an upgrade.
        let db = fjall::Database::builder(&path).open().expect("fjall");
        let views = db.keyspace("views", fjall::KeyspaceCreateOptions::default).expect("ks");
        let keys: Vec<_> = views.iter().map(|g| g.key().expect("key")).collect();
        assert!(!keys.is_empty());
        for k in keys {
            views.remove(k).expect("remove");
        }
        db.persist(fjall::PersistMode::SyncAll).expect("persist");
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.trust(), &expected);
    assert!(store.verify().expect("verify").is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn the_trust_view_does_not_depend_on_arrival_order(order in Just((0..9usize).collect::<Vec<_>>()).prop_shuffle(), split in 1usize..4) {
        let logs = all_logs();
        prop_assert_eq!(logs.len(), 9, "every log is shuffled");
        let (_d1, mut s1) = temp_store();
        s1.ingest(logs.concat(), 0).expect("ingest");
        let (_d2, mut s2) = temp_store();
        for log in order.into_iter().map(|i| &logs[i]) {
            for chunk in log.chunks(split) {
                s2.ingest(chunk.to_vec(), 0).expect("ingest");
            }
        }
        prop_assert_eq!(s1.trust(), s2.trust());
    }
}

/// Anyone can certify any device key; the user the device's own log names owns it.
#[test]
fn a_device_belongs_to_the_user_its_own_log_names() {
    use libra_engine::projection::Projection;
    let seed = |s: &str| blake3::derive_key("libra tests owner", s.as_bytes());
    let alice = UserKeys::from_secret(seed("alice"));
    let device = DeviceKeys::from_secrets(seed("alice device"), seed("alice agreement"));
    // Try several squatters: whatever their key order relative to Alice, she owns her device.
    for i in 0..8 {
        let squatter = UserKeys::from_secret(seed(&format!("mallory {i}")));
        let mut view = TrustView::default();
        let certify = |u: &UserKeys| {
            let p = Payload::DeviceCert(DeviceCertPayload { cert: u.certify(&device, "mine", 1) });
            sign_entry(&u.signing, None, 5, p.kind(), p.encode())
        };
        view.apply(&certify(&squatter));
        view.apply(&certify(&alice));
        let hello = Payload::DeviceHello(DeviceHello { cert: alice.certify(&device, "mine", 1) });
        view.apply(&sign_entry(&device.signing, None, 10, hello.kind(), hello.encode()));
        assert_eq!(view.owner_of(&device.id()), Some(alice.id()), "squatter {i} took Alice's device");
    }
}
