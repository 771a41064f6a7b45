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
