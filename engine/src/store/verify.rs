//! Auditing a whole store: every chain from seq 1, every head record, every fork proof, and every
//! persisted view against a rebuild from the logs.

use super::{Store, StoreError};
use crate::log::{Entry, validate_run};
use crate::projection::{Projection, TrustView};

/// One thing found wrong by [`Store::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The log concerned, if the problem is about one log.
    pub author: Option<[u8; 32]>,
    pub what: String,
}

/// Entries read and checked at a time; bounds memory on large logs.
const CHUNK: usize = 4096;

impl Store {
    /// Rebuilds a view from the logs alone (and the trust statements of refused entries),
    /// ignoring the persisted state.
    pub fn rebuild<P: Projection>(&self) -> Result<P, StoreError> {
        let mut view = P::default();
        for (author, _) in self.heads().collect::<Vec<_>>() {
            let mut from = 1;
            loop {
                let chunk = self.read_log(&author, from, CHUNK)?;
                let Some(last) = chunk.last() else { break };
                from = last.header().seq + 1;
                for e in &chunk {
                    view.apply(e);
                }
            }
        }
        for e in self.refused_statements()? {
            view.apply(&e);
        }
        Ok(view)
    }

    /// Checks everything the store holds and lists each problem found.
    pub fn verify(&self) -> Result<Vec<Problem>, StoreError> {
        let mut problems = Vec::new();
        for (author, head) in self.heads().collect::<Vec<_>>() {
            let problem = |what: String| Problem { author: Some(author), what };
            let mut at = None;
            let mut from = 1;
            loop {
                let chunk: Vec<Entry> = self.read_log(&author, from, CHUNK)?;
                if chunk.is_empty() {
                    break;
                }
                let refs: Vec<&Entry> = chunk.iter().collect();
                if refs.iter().any(|e| e.header().author.0 != author) {
                    problems.push(problem("an entry is stored under another author's log".into()));
                    break;
                }
                // The audit uses verify_strict on every entry, never the batch equation.
                let (points, failure) = validate_run(at, &refs, self.threads, true);
                at = points.last().copied().or(at);
                if let Some((i, err)) = failure {
                    problems.push(problem(format!("entry seq {}: {err}", refs[i].header().seq)));
                    break;
                }
                from = chunk.last().map_or(from, |e| e.header().seq + 1);
            }
            match at {
                Some(p) if p == head.point() => {}
                Some(p) => problems.push(problem(format!(
                    "head record says seq {} id {}, the chain ends at seq {} id {}",
                    head.seq,
                    head.id.to_hex(),
                    p.seq,
                    p.id.to_hex()
                ))),
                None => problems.push(problem("head record for a log with no entries".into())),
            }
        }
        for (author, proof) in self.forks()? {
            match proof.verify() {
                Ok((a, _)) if a == author => {}
                Ok(_) => {
                    problems.push(Problem { author: Some(author), what: "fork proof names another author".into() })
                }
                Err(e) => problems.push(Problem { author: Some(author), what: format!("fork proof invalid: {e}") }),
            }
        }
        let rebuilt: TrustView = self.rebuild()?;
        if rebuilt != self.trust {
            problems.push(Problem { author: None, what: "trust view differs from its rebuild from the logs".into() });
        }
        if self.chat_rows()? != self.chat_rows_rebuilt()? {
            problems.push(Problem { author: None, what: "chats view differs from its rebuild from the logs".into() });
        }
        let positions = self.view_positions(TrustView::NAME)?;
        for (author, head) in self.heads() {
            if positions.get(&author) != Some(&head.seq) {
                problems
                    .push(Problem { author: Some(author), what: "trust view position does not match the head".into() });
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys;
    use crate::testkit;

    /// Puts `value` at `key` of `ks` (None removes it), committed.
    fn put(store: &Store, ks: &fjall::Keyspace, key: &[u8], value: Option<Vec<u8>>) {
        let mut batch = store.db.batch();
        match value {
            Some(v) => batch.insert(ks, key.to_vec(), v),
            None => batch.remove(ks, key.to_vec()),
        }
        batch.commit().expect("commit");
    }

    fn says(problems: &[Problem], what: &str) -> bool {
        problems.iter().any(|p| p.what.contains(what))
    }

    /// The audit names each kind of damage it is for — an entry under another author's log, a
    /// fork proof for another author or with a bad signature, a trust view or a chats row that
    /// differs from its rebuild — and finds nothing in the same store undamaged.
    #[test]
    fn the_audit_finds_each_kind_of_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut ann, ben) = testkit::ben_wrote_to_ann(dir.path(), 3, |i| format!("m{i}")).expect("seed");
        let from_ben = testkit::entries_of(&ben).expect("entries");
        let ben_device = ben.device_id().0.0;
        ann.store.ingest(from_ben, 0).expect("ingest");
        let s = &ann.store;
        assert_eq!(s.verify().expect("verify"), Vec::new(), "undamaged");

        // An entry of Ann's device stored as Ben's device's second entry.
        let ann_device = ann.device_id().0.0;
        let theirs = keys::entry_key(&ben_device, 2);
        let original = s.entries.get(theirs).expect("read").expect("held").to_vec();
        let mine = s.entries.get(keys::entry_key(&ann_device, 2)).expect("read").expect("held").to_vec();
        put(s, &s.entries, &theirs, Some(mine));
        let p = s.verify().expect("verify");
        assert!(says(&p, "stored under another author's log"), "{p:?}");
        assert!(p.iter().all(|p| p.author.is_none() || p.author == Some(ben_device)), "{p:?}");
        put(s, &s.entries, &theirs, Some(original));
        assert_eq!(s.verify().expect("verify"), Vec::new());

        // Fork proofs: a valid one filed under another author, and one whose signature fails.
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let one = crate::log::sign_entry(&key, None, 1, 99, b"one".to_vec());
        let two = crate::log::sign_entry(&key, None, 1, 99, b"two".to_vec());
        let proof = crate::log::ForkProof {
            first: crate::codec::Blob(one.signed_bytes.clone()),
            second: crate::codec::Blob(two.signed_bytes.clone()),
        };
        assert!(proof.verify().is_ok());
        put(s, &s.forks, &ben_device, Some(proof.encode()));
        assert!(says(&s.verify().expect("verify"), "fork proof names another author"));
        let mut forged = two.signed_bytes.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let bad =
            crate::log::ForkProof { first: crate::codec::Blob(one.signed_bytes), second: crate::codec::Blob(forged) };
        put(s, &s.forks, &key.verifying_key().to_bytes(), Some(bad.encode()));
        put(s, &s.forks, &ben_device, None);
        assert!(says(&s.verify().expect("verify"), "fork proof invalid"));
        put(s, &s.forks, &key.verifying_key().to_bytes(), None);
        assert_eq!(s.verify().expect("verify"), Vec::new());

        // A chats row changed on disk.
        let (k, v) = s.chats.prefix(b"m").next().expect("a message row").into_inner().expect("row");
        let mut changed = v.to_vec();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        put(s, &s.chats, &k, Some(changed));
        assert!(says(&s.verify().expect("verify"), "chats view differs"));
        put(s, &s.chats, &k, Some(v.to_vec()));
        assert_eq!(s.verify().expect("verify"), Vec::new());

        // The persisted trust view replaced by an empty one: read back at the next open.
        let at = dir.path().join("ann");
        put(s, &s.views, &keys::view_state_key(TrustView::NAME), Some(crate::codec::encode(&TrustView::default())));
        ann.store.flush().expect("flush");
        drop(ann);
        let store = Store::open(at.join("store")).expect("reopen");
        assert!(says(&store.verify().expect("verify"), "trust view differs"));
    }
}
