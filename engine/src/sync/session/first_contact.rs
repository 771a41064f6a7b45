//! The first-contact opening (spec/sync.md 8.10). With no sync point and a large set, the opener
//! sends a sketch; the answerer sends coded symbols sized by the sketch's estimate; the opener
//! peels the difference, sends at once what it can place on its own chains, and asks the answerer
//! only for what it could not settle.

use super::{Session, Transfer, item_of};
use crate::sync::SyncError;
use crate::sync::headset::{FP_LEN, HeadItem, HeadSet};
use crate::sync::session::LogIndex;
use crate::sync::sketch::{self, Cell, Decoder, LogKey, MAX_SYMBOLS, SYMBOLS_PER_MESSAGE, TOW_LEN};
use crate::sync::wire::{Item, MAX_SINCE, MAX_WANTS, Message, Range, RangeBody};

/// Sets smaller than this open with ranges: their few rounds cost less than a sketch (at 255
/// logs and 10 differing, ranges take 3 round trips and 2.4 × the entries' bytes; a sketch 2 and
/// 1.5 ×).
pub const SKETCH_MIN: usize = 256;
/// How far back along its own chain the opener looks for the peer's head of a log.
pub const PLACE_DEPTH: u64 = 16;
/// Further requests for symbols before the opener falls back to ranges.
const MAX_MORE: u8 = 2;

/// Where a session is in the sketch exchange.
#[derive(Debug, Default)]
pub(super) enum Sketch {
    #[default]
    None,
    /// The opener sent its sketch.
    Opened,
    /// The opener is peeling: symbols so far, its own keys, requests for more made.
    Decoding { dec: Decoder, keys: Vec<LogKey>, mores: u8 },
    /// The answerer sent symbols up to this index, and answered this many Mores.
    Serving { sent: usize, mores: u8 },
}

/// The opening message: the fingerprint of everything and the tug-of-war counters.
pub(super) fn opening(heads: &HeadSet) -> Message {
    let (a, b) = heads.span(&None, &None);
    Message::Sketch { fp: heads.fingerprint(a, b), tow: Box::new(sketch::tow(heads)) }
}

/// The tag of a log's entry at `seq` with `id`: what a log key carries for its head.
fn tag_at(author: &[u8; 32], seq: u64, id: crate::log::EntryId) -> u32 {
    sketch::tag_of_hash(&HeadItem { author: *author, seq, id }.hash())
}

/// Our logs whose author bits are `a` (normally one).
fn logs_of(heads: &HeadSet, a: u64) -> Vec<HeadItem> {
    // The first 7 bytes of the author hold 56 of the 60 bits.
    let prefix = (a << 4).to_be_bytes();
    heads.by_prefix(&prefix[..7]).into_iter().filter(|o| sketch::author_bits(&o.author) == a).collect()
}

impl Session {
    fn next_round(&mut self) -> Result<(), SyncError> {
        self.stats.rounds += 1;
        if self.stats.rounds > super::MAX_ROUNDS {
            return Err(SyncError::LimitExceeded("reconcile rounds"));
        }
        Ok(())
    }

    /// Answerer: a Sketch is the first message or nothing.
    pub(super) fn handle_sketch(&mut self, fp: [u8; FP_LEN], tow: &[i16; TOW_LEN]) -> Result<(), SyncError> {
        // A responder's first message or nothing (being reconciled or serving symbols both
        // follow a counted round).
        if self.initiator || self.stats.rounds > 0 {
            return Err(SyncError::Protocol("sketch out of place"));
        }
        self.next_round()?;
        let (a, b) = self.heads.span(&None, &None);
        if self.heads.fingerprint(a, b) == fp {
            self.reconciled = true;
            self.out.push_back(Message::Reconcile(Vec::new()));
            return Ok(());
        }
        let m = sketch::first_batch(sketch::estimate(tow, &sketch::tow(&self.heads)));
        if m > SYMBOLS_PER_MESSAGE {
            // So different that symbols would cost more than ranges.
            let ranges = self.whole_range();
            self.out.push_back(Message::Reconcile(ranges));
            self.count_out();
            return Ok(());
        }
        self.send_symbols(0, m, 0);
        Ok(())
    }

    fn send_symbols(&mut self, from: usize, to: usize, mores: u8) {
        let cells = sketch::encode(&sketch::keys(&self.heads), from, to);
        self.stats.symbols_sent += cells.len();
        self.out.push_back(Message::Symbols { from: from as u32, cells });
        self.sketch = Sketch::Serving { sent: to, mores };
    }

    /// Answerer: the opener asks for symbols up to `upto`.
    pub(super) fn handle_more(&mut self, upto: u32) -> Result<(), SyncError> {
        let Sketch::Serving { sent, mores } = self.sketch else {
            return Err(SyncError::Protocol("more without symbols"));
        };
        // An opener asks at most twice; each More makes us encode our whole set again.
        if mores >= MAX_MORE {
            return Err(SyncError::Protocol("more past the limit"));
        }
        self.next_round()?;
        let upto = upto as usize;
        if upto <= sent {
            return Err(SyncError::Protocol("more asks for symbols already sent"));
        }
        if upto - sent > SYMBOLS_PER_MESSAGE || upto > MAX_SYMBOLS {
            return Err(SyncError::LimitExceeded("symbols"));
        }
        self.send_symbols(sent, upto, mores + 1);
        Ok(())
    }

    /// Opener: peel what arrived; settle the difference, ask for more, or fall back to ranges.
    pub(super) fn handle_symbols(&mut self, from: u32, cells: Vec<Cell>, log: &impl LogIndex) -> Result<(), SyncError> {
        let (mut dec, keys, mores) = match std::mem::take(&mut self.sketch) {
            Sketch::Opened => (Decoder::new(), sketch::keys(&self.heads), 0),
            Sketch::Decoding { dec, keys, mores } => (dec, keys, mores),
            _ => return Err(SyncError::Protocol("symbols out of place")),
        };
        if from as usize != dec.len() {
            return Err(SyncError::Protocol("symbols out of order"));
        }
        self.next_round()?;
        let peeled = dec.add(&cells, &keys).is_ok();
        if peeled && dec.is_complete() {
            if self.settle(&dec, log)? {
                return Ok(());
            }
        } else if peeled && mores < MAX_MORE && dec.len() < MAX_SYMBOLS {
            // A quarter more first (the estimate was low), then half again.
            let step = if mores == 0 { dec.len() / 4 } else { dec.len() / 2 };
            let upto = (dec.len() + step.clamp(16, SYMBOLS_PER_MESSAGE)).min(MAX_SYMBOLS);
            self.out.push_back(Message::More { upto: upto as u32 });
            self.sketch = Sketch::Decoding { dec, keys, mores: mores + 1 };
            return Ok(());
        }
        // Not peeled within bounds, or the difference did not check out: ranges from the top.
        self.out.push_back(super::range_opening(&self.heads));
        self.count_out();
        Ok(())
    }

    /// Opener: acts on a peeled difference. `false` when it does not check out against our own
    /// set (a head said to be ours is not) or would not fit one Resolve.
    fn settle(&mut self, dec: &Decoder, log: &impl LogIndex) -> Result<bool, SyncError> {
        let (mut lack, mut heads, mut sends) = (Vec::new(), Vec::new(), Vec::new());
        let mut seen: Vec<u64> = dec.peeled().iter().map(|p| p.a).collect();
        seen.sort_unstable();
        if seen.windows(2).any(|w| w[0] == w[1]) {
            // An honest difference names a log once; crafted symbols could name one many times
            // to have it sent whole again and again.
            return Ok(false);
        }
        for p in dec.peeled() {
            if p.ours == 0 {
                // A log we lack: it comes whole.
                lack.push(p.a);
                continue;
            }
            let own = logs_of(&self.heads, p.a).into_iter().find(|o| sketch::key_of_item(o).tag == p.ours);
            let Some(o) = own else { return Ok(false) };
            if p.theirs == 0 {
                // The peer lacks it.
                sends.push(Transfer { author: o.author, from: 1, to: o.seq });
                continue;
            }
            match self.place(&o, p.theirs, log)? {
                Some(s) => sends.push(Transfer { author: o.author, from: s + 1, to: o.seq }),
                // Ahead of us, forked, or far behind: the peer places our head on its chain.
                None => heads.push((p.a, o.seq, p.ours)),
            }
        }
        lack.sort_unstable();
        lack.dedup();
        heads.sort_unstable();
        heads.dedup_by_key(|h| h.0);
        if lack.len() > MAX_WANTS || heads.len() > MAX_SINCE {
            return Ok(false);
        }
        self.transfers.extend(sends);
        if lack.is_empty() && heads.is_empty() {
            self.reconciled = true;
            self.out.push_back(Message::Reconcile(Vec::new()));
        } else {
            self.stats.items_sent += heads.len();
            self.out.push_back(Message::Resolve { lack, heads });
        }
        Ok(true)
    }

    /// The seq on our chain of `o`'s log whose tag is the peer's `tag`, looking back at most
    /// PLACE_DEPTH entries below our head.
    fn place(&self, o: &HeadItem, tag: u32, log: &impl LogIndex) -> Result<Option<u64>, SyncError> {
        let lowest = o.seq.saturating_sub(PLACE_DEPTH).max(1);
        for s in (lowest..o.seq).rev() {
            match log.id_at(&o.author, s) {
                Ok(Some(id)) if tag_at(&o.author, s, id) == tag => return Ok(Some(s)),
                Ok(_) => {}
                Err(e) => return Err(SyncError::Local(e.0)),
            }
        }
        Ok(None)
    }

    /// Answerer: what the opener could not settle. Logs it lacks go whole; each listed head is
    /// compared with ours by the rules of section 8.5 (complete form), the tag standing for the
    /// id prefix.
    pub(super) fn handle_resolve(
        &mut self,
        lack: Vec<u64>,
        heads: Vec<(u64, u64, u32)>,
        log: &impl LogIndex,
    ) -> Result<(), SyncError> {
        if !matches!(self.sketch, Sketch::Serving { .. }) {
            return Err(SyncError::Protocol("resolve out of place"));
        }
        self.sketch = Sketch::None;
        self.next_round()?;
        for a in &lack {
            for o in logs_of(&self.heads, *a) {
                self.transfers.push_back(Transfer { author: o.author, from: 1, to: o.seq });
            }
        }
        let mut answer: Vec<Item> = Vec::new();
        for (a, seq, tag) in heads {
            for o in logs_of(&self.heads, a) {
                if o.seq > seq {
                    let on_our_chain = match log.id_at(&o.author, seq) {
                        Ok(held) => held.is_some_and(|id| tag_at(&o.author, seq, id) == tag),
                        Err(e) => return Err(SyncError::Local(e.0)),
                    };
                    if on_our_chain {
                        self.transfers.push_back(Transfer { author: o.author, from: seq + 1, to: o.seq });
                    } else {
                        // Their head is not on our chain: send ours at that seq and ask for
                        // theirs, so both sides hold the fork proof.
                        self.stats.forks_seen += 1;
                        self.transfers.push_back(Transfer { author: o.author, from: seq, to: seq });
                        self.wants.push((o.author, seq));
                    }
                } else if o.seq == seq {
                    if sketch::key_of_item(&o).tag != tag {
                        // Two heads at one seq: each side sends its own.
                        self.stats.forks_seen += 1;
                        self.transfers.push_back(Transfer { author: o.author, from: seq, to: seq });
                        answer.push(item_of(&o));
                    }
                } else {
                    // The opener is ahead: it learns where we are and sends (section 8.5).
                    answer.push(item_of(&o));
                }
            }
        }
        self.flush_wants();
        answer.sort_by_key(|i| i.author);
        answer.dedup_by_key(|i| i.author);
        if answer.is_empty() {
            self.reconciled = true;
            self.out.push_back(Message::Reconcile(Vec::new()));
        } else {
            self.stats.items_sent += answer.len();
            self.out.push_back(Message::Reconcile(vec![Range { upper: None, body: RangeBody::Final(answer) }]));
            self.count_out();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Bytes;
    use crate::log::EntryId;
    use crate::sync::session::tests::{Chains, item, run};

    /// `n` logs, each at the seq `seq` gives (0: not held).
    fn logs(n: u32, seq: impl Fn(u32) -> u64) -> HeadSet {
        HeadSet::from_items((0..n).filter(|i| seq(*i) > 0).map(|i| item(i, seq(i))))
    }

    fn pump(a: HeadSet, b: HeadSet) -> (Vec<Transfer>, Vec<Transfer>, u32, usize) {
        let opener = Session::new(a, true);
        assert!(matches!(opener.out.front(), Some(Message::Sketch { .. })), "a large set opens with a sketch");
        run(opener, Session::new(b, false), &Chains)
    }

    /// The bench's case and more: the opener ahead on 100 logs, each side holding logs the other
    /// lacks. Everything the opener can place it sends at once: two round trips.
    #[test]
    fn a_first_contact_settles_what_the_opener_can_place_in_two_round_trips() {
        let a = logs(5_000, |i| match i {
            _ if i % 50 == 0 => 2,
            _ if i >= 4_980 => 0,
            _ => 1,
        });
        let b = logs(5_030, |i| if i < 10 { 0 } else { 1 });
        let (ta, tb, rounds, bytes) = pump(a, b);
        let ahead: Vec<&Transfer> = ta.iter().filter(|t| t.from == 2 && t.to == 2).collect();
        assert_eq!(ahead.len(), 99, "{ta:?}");
        assert_eq!(ta.iter().filter(|t| t.from == 1).count(), 10, "the logs the answerer lacks, whole");
        assert_eq!(ta.len(), 109);
        assert_eq!(tb.len(), 50, "the logs the opener lacks, whole");
        assert!(tb.iter().all(|t| t.from == 1 && t.to == 1));
        // Two when the first symbols peel, three when the estimate was low and more were asked.
        assert!(rounds <= 3, "{rounds} rounds");
        // 160 differing logs: the sketch, about 1.4 symbols of 20 bytes per differing log.
        assert!(bytes < 512 + 160 * 2 * 20 + 2_000, "{bytes} bytes");
    }

    /// Where the peer is ahead, forked or too far behind, the opener cannot place its head; it
    /// lists its own and the answerer compares (section 8.5).
    #[test]
    fn heads_the_opener_cannot_place_are_compared_by_the_answerer() {
        let a = logs(3_000, |i| match i {
            7 => 40,
            9 => 3,
            _ => 1,
        });
        let b = logs(3_000, |i| match i {
            5 => 4,
            7 => 2,
            _ => 1,
        });
        let (ta, tb, _, _) = pump(a, b);
        let author = |i: u32| item(i, 0).author;
        assert!(tb.contains(&Transfer { author: author(5), from: 2, to: 4 }), "the answerer is ahead: {tb:?}");
        assert!(ta.contains(&Transfer { author: author(7), from: 3, to: 40 }), "far behind, then placed: {ta:?}");
        assert!(ta.contains(&Transfer { author: author(9), from: 2, to: 3 }), "{ta:?}");
        assert_eq!((ta.len(), tb.len()), (2, 1));
    }

    /// Two heads at one seq: each side sends its own entry at that seq and counts the fork.
    #[test]
    fn an_equivocation_found_by_the_sketch_is_sent_both_ways() {
        let a = logs(3_000, |_| 1);
        let mut forked = item(11, 1);
        forked.id = EntryId(Bytes([0xee; 32]));
        let mut b = logs(3_000, |_| 1);
        b.set(forked);
        let mut opener = Session::new(a, true);
        let mut answerer = Session::new(b, false);
        for _ in 0..8 {
            while let Some(m) = opener.poll_message() {
                answerer.handle(m, &Chains).expect("answerer");
            }
            while let Some(m) = answerer.poll_message() {
                opener.handle(m, &Chains).expect("opener");
            }
        }
        let one = Transfer { author: forked.author, from: 1, to: 1 };
        assert_eq!((opener.poll_transfer(), answerer.poll_transfer()), (Some(one), Some(one)));
        assert_eq!(opener.stats.forks_seen + answerer.stats.forks_seen, 2);
    }

    /// Symbols that never peel: two requests for more, then ranges from the top.
    #[test]
    fn symbols_that_do_not_peel_fall_back_to_ranges() {
        let mut s = Session::new(logs(3_000, |_| 1), true);
        s.poll_message();
        let junk = |n: u32, from: u32| Message::Symbols {
            from,
            cells: (from..from + n)
                .map(|i| {
                    let h = blake3::hash(&i.to_le_bytes());
                    let u = |k: usize| u64::from_le_bytes(h.as_bytes()[k..k + 8].try_into().expect("8")) % sketch::P;
                    sketch::Cell { f: u(0), g: u(8), t: i }
                })
                .collect(),
        };
        s.handle(junk(96, 0), &Chains).expect("first");
        let Some(Message::More { upto }) = s.poll_message() else { panic!("more") };
        assert_eq!(upto, 96 + 24, "a quarter more");
        s.handle(junk(24, 96), &Chains).expect("second");
        let Some(Message::More { upto }) = s.poll_message() else { panic!("more") };
        assert_eq!(upto, 120 + 60, "half again");
        s.handle(junk(60, 120), &Chains).expect("third");
        let Some(Message::Reconcile(r)) = s.poll_message() else { panic!("ranges") };
        assert!(matches!(r.as_slice(), [Range { upper: None, body: RangeBody::Fingerprint(_) }]));
        let mut s = Session::new(logs(3_000, |_| 1), true);
        s.poll_message();
        assert_eq!(s.handle(junk(10, 3), &Chains), Err(SyncError::Protocol("symbols out of order")));
    }

    /// A difference too large for one Resolve (more than 4096 logs the opener lacks): the
    /// opener reconciles by ranges instead, and the session still reaches the union.
    #[test]
    fn a_difference_too_large_to_resolve_falls_back_to_ranges() {
        let a = logs(3_000, |_| 1);
        let b = logs(7_200, |_| 1);
        let (ta, tb, rounds, _) = pump(a, b);
        assert_eq!((ta.len(), tb.len()), (0, 4_200));
        assert!(rounds > 3, "ranges after the symbols: {rounds} rounds");
    }

    #[test]
    fn sketch_messages_out_of_place_are_refused() {
        let heads = || logs(3_000, |_| 1);
        let sketch = || opening(&heads());
        let mut opener = Session::new(heads(), true);
        assert_eq!(opener.handle(sketch(), &Chains), Err(SyncError::Protocol("sketch out of place")));
        assert_eq!(opener.handle(Message::More { upto: 5 }, &Chains), Err(SyncError::Protocol("more without symbols")));
        let mut answerer = Session::new(heads(), false);
        let cell = sketch::Cell::default();
        assert_eq!(
            answerer.handle(Message::Symbols { from: 0, cells: vec![cell] }, &Chains),
            Err(SyncError::Protocol("symbols out of place"))
        );
        assert_eq!(
            answerer.handle(Message::Resolve { lack: vec![], heads: vec![] }, &Chains),
            Err(SyncError::Protocol("resolve out of place"))
        );
        // Equal sets: one round trip, and a second sketch is refused.
        assert_eq!(answerer.handle(sketch(), &Chains), Ok(()));
        assert_eq!(answerer.poll_message(), Some(Message::Reconcile(Vec::new())));
        assert!(answerer.reconciled());
        assert_eq!(answerer.handle(sketch(), &Chains), Err(SyncError::Protocol("sketch out of place")));
    }

    /// The answerer serves more symbols only past what it sent and within the limits.
    #[test]
    fn more_is_bounded() {
        let mut opener_heads = logs(3_000, |_| 1);
        opener_heads.set(item(1, 2));
        // An answerer that sent its first symbols, and how many.
        let serving = || {
            let mut answerer = Session::new(logs(3_000, |_| 1), false);
            answerer.handle(opening(&opener_heads), &Chains).expect("sketch");
            let Some(Message::Symbols { from: 0, cells }) = answerer.poll_message() else { panic!("symbols") };
            (answerer, cells.len() as u32)
        };
        let (mut answerer, sent) = serving();
        assert_eq!(
            answerer.handle(Message::More { upto: sent }, &Chains),
            Err(SyncError::Protocol("more asks for symbols already sent"))
        );
        let (mut answerer, _) = serving();
        let too_many = sent + SYMBOLS_PER_MESSAGE as u32 + 1;
        assert_eq!(
            answerer.handle(Message::More { upto: too_many }, &Chains),
            Err(SyncError::LimitExceeded("symbols"))
        );
        let (mut answerer, _) = serving();
        assert_eq!(answerer.stats.symbols_sent, sent as usize);
        answerer.handle(Message::More { upto: sent + 10 }, &Chains).expect("more");
        assert_eq!(answerer.stats.symbols_sent, sent as usize + 10, "symbols sent are counted");
        // The edges: exactly SYMBOLS_PER_MESSAGE more is served, and up to MAX_SYMBOLS in all.
        let (mut edge, _) = serving();
        let most = sent + SYMBOLS_PER_MESSAGE as u32;
        assert_eq!(edge.handle(Message::More { upto: most }, &Chains), Ok(()));
        assert!(most as usize > MAX_SYMBOLS - SYMBOLS_PER_MESSAGE);
        let ((mut past, _), (mut at, _)) = (serving(), serving());
        past.handle(Message::More { upto: most }, &Chains).expect("more");
        assert_eq!(
            past.handle(Message::More { upto: MAX_SYMBOLS as u32 + 1 }, &Chains),
            Err(SyncError::LimitExceeded("symbols"))
        );
        at.handle(Message::More { upto: most }, &Chains).expect("more");
        assert_eq!(at.handle(Message::More { upto: MAX_SYMBOLS as u32 }, &Chains), Ok(()));
        assert!(
            matches!(answerer.poll_message(), Some(Message::Symbols { from, cells }) if from == sent && cells.len() == 10)
        );
    }

    /// A Sketch is refused by an initiator (one that opened with ranges too) and by a responder
    /// after any round; each sketch message counts a round, up to MAX_ROUNDS.
    #[test]
    fn sketch_rounds_are_counted_and_bounded() {
        let big = || logs(3_000, |_| 1);
        let mut small_opener = Session::new(logs(10, |_| 1), true);
        assert_eq!(small_opener.handle(opening(&big()), &Chains), Err(SyncError::Protocol("sketch out of place")));
        let mut after_a_round = Session::new(big(), false);
        let differs = Message::Reconcile(vec![Range { upper: None, body: RangeBody::Fingerprint([0; FP_LEN]) }]);
        assert_eq!(after_a_round.handle(differs, &Chains), Ok(()));
        assert_eq!(after_a_round.handle(opening(&big()), &Chains), Err(SyncError::Protocol("sketch out of place")));

        let mut opener_heads = big();
        opener_heads.set(item(1, 2));
        let mut answerer = Session::new(big(), false);
        answerer.handle(opening(&opener_heads), &Chains).expect("sketch");
        assert_eq!(answerer.stats.rounds, 1);
        let Some(Message::Symbols { cells, .. }) = answerer.poll_message() else { panic!("symbols") };
        let sent = cells.len() as u32;
        let mut opener = Session::new(opener_heads, true);
        opener.poll_message();
        opener.handle(Message::Symbols { from: 0, cells }, &Chains).expect("symbols");
        assert_eq!(opener.stats.rounds, 1);
        // The round limit holds in the sketch exchange too: the last allowed round, then one more.
        answerer.stats.rounds = crate::sync::MAX_ROUNDS - 1;
        assert_eq!(answerer.handle(Message::More { upto: sent + 1 }, &Chains), Ok(()));
        assert_eq!(answerer.stats.rounds, crate::sync::MAX_ROUNDS);
        assert_eq!(
            answerer.handle(Message::More { upto: sent + 2 }, &Chains),
            Err(SyncError::LimitExceeded("reconcile rounds"))
        );
    }

    /// An answerer serves at most two Mores: each makes it encode its whole set again.
    #[test]
    fn a_third_more_is_refused() {
        let mut opener_heads = logs(3_000, |_| 1);
        opener_heads.set(item(1, 2));
        let mut answerer = Session::new(logs(3_000, |_| 1), false);
        answerer.handle(opening(&opener_heads), &Chains).expect("sketch");
        let Some(Message::Symbols { cells, .. }) = answerer.poll_message() else { panic!("symbols") };
        let mut upto = cells.len() as u32;
        for _ in 0..MAX_MORE {
            upto += 1;
            assert_eq!(answerer.handle(Message::More { upto }, &Chains), Ok(()));
        }
        assert_eq!(
            answerer.handle(Message::More { upto: upto + 1 }, &Chains),
            Err(SyncError::Protocol("more past the limit"))
        );
    }

    /// A Resolve stays within its message's limits: exactly MAX_WANTS lacked logs and
    /// MAX_SINCE unplaced heads are sent (and the heads counted), one more falls back to ranges.
    #[test]
    fn a_resolve_holds_exactly_its_limits() {
        use crate::sync::{MAX_SINCE, MAX_WANTS};
        let heads = logs(5_000, |_| 1);
        let lacked = |n: usize| -> Vec<sketch::Peeled> {
            (0..n as u64).map(|i| sketch::Peeled { a: (1 << 59) + i, ours: 0, theirs: 7 }).collect()
        };
        let unplaced = |n: u32| -> Vec<sketch::Peeled> {
            (0..n)
                .map(|i| {
                    let k = sketch::key_of_item(&item(i, 1));
                    sketch::Peeled { a: k.a, ours: k.tag, theirs: k.tag ^ 1 }
                })
                .collect()
        };
        let opener = || {
            let mut s = Session::new(heads.clone(), true);
            s.poll_message();
            s
        };
        let mut s = opener();
        assert_eq!(s.settle(&Decoder::with_peeled(lacked(MAX_WANTS)), &Chains), Ok(true));
        assert!(matches!(s.poll_message(), Some(Message::Resolve { lack, .. }) if lack.len() == MAX_WANTS));
        assert_eq!(opener().settle(&Decoder::with_peeled(lacked(MAX_WANTS + 1)), &Chains), Ok(false));
        let mut s = opener();
        assert_eq!(s.settle(&Decoder::with_peeled(unplaced(MAX_SINCE as u32)), &Chains), Ok(true));
        assert_eq!(s.stats.items_sent, MAX_SINCE);
        assert!(matches!(s.poll_message(), Some(Message::Resolve { heads, .. }) if heads.len() == MAX_SINCE));
        assert_eq!(opener().settle(&Decoder::with_peeled(unplaced(MAX_SINCE as u32 + 1)), &Chains), Ok(false));
    }

    /// A difference that names one log twice (crafted symbols could, to have the log sent whole
    /// again and again) is not acted on: the opener falls back to ranges.
    #[test]
    fn a_difference_naming_a_log_twice_is_not_acted_on() {
        let heads = logs(3_000, |_| 1);
        let o = sketch::key_of_item(&item(5, 1));
        let twice = sketch::Peeled { a: o.a, ours: o.tag, theirs: 0 };
        let mut s = Session::new(heads, true);
        s.poll_message();
        assert_eq!(s.settle(&Decoder::with_peeled(vec![twice, twice]), &Chains), Ok(false));
        assert_eq!(s.poll_transfer(), None);
        assert_eq!(s.settle(&Decoder::with_peeled(vec![twice]), &Chains), Ok(true));
        assert_eq!(s.poll_transfer(), Some(Transfer { author: item(5, 1).author, from: 1, to: 1 }));
    }

    /// So different that symbols would cost more than ranges: the answerer answers with ranges.
    #[test]
    fn a_very_different_set_is_answered_with_ranges() {
        let mut answerer = Session::new(logs(3_000, |_| 1), false);
        let stranger = HeadSet::from_items((100_000..160_000).map(|i| item(i, 1)));
        answerer.handle(opening(&stranger), &Chains).expect("sketch");
        assert!(matches!(answerer.poll_message(), Some(Message::Reconcile(r)) if r.len() > 1));
    }

    /// The switch to ranges at its edge: an estimate that asks for exactly
    /// SYMBOLS_PER_MESSAGE symbols is still served with symbols, a little more is not.
    #[test]
    fn symbols_are_served_up_to_exactly_one_message() {
        // Σδ² = 384 × 20,460 (an estimate of 20,460 logs): ⌈1.6 × 20,460⌉ + 32 = 32,768.
        let mut tow = [0i16; TOW_LEN];
        let spread = [203i16; 54].into_iter().chain([202; 135]).chain([154, 173, 263]);
        for (c, v) in tow.iter_mut().zip(spread) {
            *c = v;
        }
        assert_eq!(sketch::first_batch(sketch::estimate(&tow, &[0; TOW_LEN])), SYMBOLS_PER_MESSAGE);
        let mut at_edge = Session::new(HeadSet::default(), false);
        at_edge.handle(Message::Sketch { fp: [1; FP_LEN], tow: Box::new(tow) }, &Chains).expect("sketch");
        match at_edge.poll_message() {
            Some(Message::Symbols { from: 0, cells }) => assert_eq!(cells.len(), SYMBOLS_PER_MESSAGE),
            other => panic!("expected symbols, got {:?}", other.map(|m| m.encode().len())),
        }
        tow[191] += 1;
        assert!(sketch::first_batch(sketch::estimate(&tow, &[0; TOW_LEN])) > SYMBOLS_PER_MESSAGE);
        let mut past = Session::new(HeadSet::default(), false);
        past.handle(Message::Sketch { fp: [1; FP_LEN], tow: Box::new(tow) }, &Chains).expect("sketch");
        assert!(matches!(past.poll_message(), Some(Message::Reconcile(_))));
    }
}
