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
