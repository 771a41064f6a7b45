//! Realistic stores for benchmarks (engine and app): no test double, the real node and store.

use std::path::Path;

use crate::log::Entry;
use crate::messaging::{Body, SealRandom, aad, seal};
use crate::node::{Node, NodeError};
use crate::payload::KIND_SEALED;

/// Ann and Ben, contacts of each other, in `dir/ann` and `dir/ben`; Ben has written `n`
/// messages (`text(i)`) to Ann, sealed as `send` seals them (to Ann's device and his own) and
/// appended 1000 to a group. Ann holds none of them yet: see [`entries_of`].
pub fn ben_wrote_to_ann(dir: &Path, n: usize, text: impl Fn(usize) -> String) -> Result<(Node, Node), NodeError> {
    let bad = |e: &dyn std::fmt::Display| NodeError::Store(crate::store::StoreError::Corrupt(e.to_string()));
    let mut a = Node::init(&dir.join("ann"), "Ann")?;
    let mut b = Node::init(&dir.join("ben"), "Ben")?;
    let (ia, ib) = (a.invite(None, 1).map_err(|e| bad(&e))?, b.invite(None, 1).map_err(|e| bad(&e))?);
    a.add_contact(&ib, None).map_err(|e| bad(&e))?;
    b.add_contact(&ia, None).map_err(|e| bad(&e))?;
    let chat = b.chat(&ia.user().to_string()).map_err(|e| bad(&e))?;
    let recipients: Vec<[u8; 32]> = vec![ia.card.certs[0].body.agreement.0, b.secrets.device.agreement_public()];
    let author = b.device_id();
    let mut items = Vec::with_capacity(1000);
    for i in 0..n {
        let body = Body::Text { chat: chat.chat, text: text(i), reply_to: None };
        let s =
            seal(&body.encode(), &aad(author.as_bytes()), &recipients, &SealRandom::fresh()).map_err(|e| bad(&e))?;
        items.push((KIND_SEALED, s.encode()));
        if items.len() == 1000 || i + 1 == n {
            let batch = std::mem::take(&mut items);
            b.store.append(&b.secrets.device.signing, batch, crate::clock::wall_ms())?;
        }
    }
    Ok((a, b))
}

/// Every entry of every log `node` holds, log by log in seq order: what a cold sync moves.
pub fn entries_of(node: &Node) -> Result<Vec<Entry>, NodeError> {
    let mut all = Vec::new();
    for (author, _) in node.store.heads().collect::<Vec<_>>() {
        all.extend(node.store.read_log(&author, 1, usize::MAX)?);
    }
    Ok(all)
}

/// Ann (`dir/a`) holding `logs` logs of her own certified devices, `per_log` entries each
/// (120-byte payloads of kind 99), and Ben (`dir/b`), who allows all of them and holds none:
/// the shape of a node with many logs that it offers whole to a peer (spec/sync.md, 4.2).
/// Returns both nodes and each bench device's key with its head (to extend the logs later).
pub fn own_devices(dir: &Path, logs: usize, per_log: usize) -> Result<(Node, Node, Vec<DeviceLog>), NodeError> {
    use crate::identity::{DeviceKeys, UserKeys};
    use crate::payload::{DeviceCertPayload, Payload};
    use crate::store::PeerRecord;
    let mut a = Node::init(&dir.join("a"), "a")?;
    let mut b = Node::init(&dir.join("b"), "b")?;
    let missing = || NodeError::Store(crate::store::StoreError::Corrupt("no user key".into()));
    let user = UserKeys::from_secret(a.secrets.user.as_ref().ok_or_else(missing)?.signing.to_bytes());
    let now = crate::clock::wall_ms();
    let secrets: Vec<[u8; 32]> =
        (0..logs).map(|l| blake3::derive_key("libra sync bench", &(l as u64).to_le_bytes())).collect();
    let certs: Vec<(u16, Vec<u8>)> = secrets
        .iter()
        .map(|s| {
            let p = Payload::DeviceCert(DeviceCertPayload {
                cert: user.certify(&DeviceKeys::from_secrets(*s, *s), "bench", now),
            });
            (p.kind(), p.encode())
        })
        .collect();
    for chunk in certs.chunks(1000) {
        a.store.append(&user.signing, chunk.to_vec(), now)?;
    }
    // Ben knows Ann's identity already (as from her contact card): the sync moves device logs.
    b.store.ingest(a.store.read_log(user.id().as_bytes(), 1, usize::MAX)?, now)?;
    let allowed = PeerRecord { allowed: true, ..PeerRecord::default() };
    let threads = crate::par::cores();
    let made: Vec<DeviceLog> = std::thread::scope(|s| {
        let parts: Vec<_> = secrets
            .chunks(logs.div_ceil(threads).max(1))
            .map(|part| s.spawn(move || part.iter().map(|sec| DeviceLog::new(*sec, per_log)).collect::<Vec<_>>()))
            .collect();
        parts.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut batch = Vec::new();
    for d in &made {
        batch.extend(d.entries.iter().cloned());
        if batch.len() >= 10_000 {
            a.store.ingest(std::mem::take(&mut batch), now)?;
        }
    }
    a.store.ingest(batch, now)?;
    for d in &made {
        a.store.set_peer(&d.author(), &allowed, false)?;
        b.store.set_peer(&d.author(), &allowed, false)?;
    }
    a.store.set_peer(b.device_id().as_bytes(), &allowed, true)?;
    b.store.set_peer(a.device_id().as_bytes(), &allowed, true)?;
    Ok((a, b, made))
}

/// One bench device's log: its key and the entries made so far.
pub struct DeviceLog {
    pub key: ed25519_dalek::SigningKey,
    pub entries: Vec<Entry>,
}

impl DeviceLog {
    fn new(secret: [u8; 32], n: usize) -> DeviceLog {
        let mut d = DeviceLog { key: ed25519_dalek::SigningKey::from_bytes(&secret), entries: Vec::with_capacity(n) };
        for _ in 0..n {
            d.extend();
        }
        d
    }

    pub fn author(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs the next entry (a 120-byte payload derived from the position) and returns it.
    pub fn extend(&mut self) -> Entry {
        let seq = self.entries.len() as u64 + 1;
        let mut p = vec![0u8; 120];
        blake3::Hasher::new().update(&self.author()).update(&seq.to_le_bytes()).finalize_xof().fill(&mut p);
        let prev = self.entries.last().map(|e| (e.header().seq, e.id));
        let e = crate::log::sign_entry(&self.key, prev, 1_000_000 + seq, 99, p);
        self.entries.push(e.clone());
        e
    }
}
