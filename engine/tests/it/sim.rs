//! A seeded, deterministic simulation of 2–6 real nodes (real stores, real engines, real
//! messaging) whose connections are sans-IO `Conn`s joined by in-memory byte queues. The seed
//! decides everything that happens: sends, contact adds, groups, dials, partial deliveries,
//! disconnects, restarts, partitions, and damaged streams (bytes dropped, duplicated or cut
//! off). After a healing phase every run must end with equal heads between people who chose
//! each other, every view equal to its rebuild, and every message whose send returned `Ok`
//! present at its sender and its recipients, acknowledged.
//!
//! `LIBRA_SIM_SEEDS=N` runs more seeds, from `LIBRA_SIM_FROM` (0); `LIBRA_SIM_SEED=S` runs one
//! (printed on failure); `LIBRA_SIM_STEPS` makes each run longer ([`STEPS`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use libra_engine::engine::{Engine, NodeLocal};
use libra_engine::identity::{DeviceKeys, UserId, UserKeys};
use libra_engine::keyfile::Secrets;
use libra_engine::log::EntryId;
use libra_engine::messenger::{ChatTarget, Invite};
use libra_engine::node::Node;
use libra_engine::store::Delivery;
use libra_engine::sync::{Conn, Effect, Limits, LocalError};

/// splitmix64: small, seedable, good enough to pick actions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct SimNode {
    dir: PathBuf,
    engine: Option<Engine>,
    user: UserId,
    device: [u8; 32],
    /// Steps left in a partition (no links while > 0).
    cut_off: u32,
}

impl SimNode {
    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("node is running")
    }
}

/// One side of a connection: its state machine, and the bytes it sent not yet delivered.
struct Side {
    node: usize,
    conn: Conn,
    outbound: VecDeque<u8>,
    finished: bool,
}

struct Link {
    sides: [Side; 2],
}

/// A message whose send returned Ok: its id, sender, and the users it was sent to.
struct Sent {
    id: EntryId,
    from: usize,
    to: Vec<usize>,
}

const STEP_MS: u64 = 100;

fn limits() -> Limits {
    Limits {
        frame_deadline: Duration::from_secs(2),
        reconcile_idle: Duration::from_secs(3),
        session_bytes_in: 64 << 20,
    }
}

struct Sim {
    rng: Rng,
    nodes: Vec<SimNode>,
    links: Vec<Link>,
    sent: Vec<Sent>,
    now: u64,
    _root: tempfile::TempDir,
}

fn temp_root() -> tempfile::TempDir {
    // A tmpfs makes the many fsyncs cheap where there is one.
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().expect("tempdir")
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed);
        let n = 2 + rng.below(5);
        let root = temp_root();
        let mut nodes = Vec::new();
        for i in 0..n {
            let key = |what: &str| blake3::derive_key("libra sim", format!("{seed} {i} {what}").as_bytes());
            let secrets = Secrets::new(
                Some(UserKeys::from_secret(key("user"))),
                DeviceKeys::from_secrets(key("device"), key("agreement")),
            );
            let dir = root.path().join(format!("n{i}"));
            let node = Node::init_with(&dir, &format!("node{i}"), secrets).expect("init");
            let (user, device) = (node.user_id().expect("user"), *node.device_id().as_bytes());
            nodes.push(SimNode { dir, engine: Some(start(node)), user, device, cut_off: 0 });
        }
        Sim { rng, nodes, links: Vec::new(), sent: Vec::new(), now: 0, _root: root }
    }

    fn invite(&self, i: usize) -> Invite {
        self.nodes[i].engine().write(|n| n.invite(None, 1).expect("invite")).expect("write")
    }

    fn contacts(&self, i: usize) -> BTreeSet<UserId> {
        self.nodes[i]
            .engine()
            .read(|n| n.store.contacts().expect("contacts"))
            .expect("read")
            .into_iter()
            .map(|(u, _)| u)
            .collect()
    }

    fn index_of(&self, u: &UserId) -> Option<usize> {
        self.nodes.iter().position(|n| n.user == *u)
    }

    fn allows(&self, i: usize, j: usize) -> bool {
        self.nodes[i].engine().is_allowed(&self.nodes[j].device)
    }

    fn linked(&self, i: usize, j: usize) -> bool {
        self.links.iter().any(|l| {
            let (a, b) = (l.sides[0].node, l.sides[1].node);
            (a, b) == (i, j) || (a, b) == (j, i)
        })
    }

    /// Dials j from i, as the QUIC handshake would allow it: i must allow j; j must allow i or
    /// have open invites.
    fn connect(&mut self, i: usize, j: usize) {
        if i == j || self.linked(i, j) || self.nodes[i].cut_off > 0 || self.nodes[j].cut_off > 0 {
            return;
        }
        let (ej, di, dj) = (self.nodes[j].engine(), self.nodes[i].device, self.nodes[j].device);
        if !self.allows(i, j) || !(ej.is_allowed(&di) || ej.intro_open()) {
            return;
        }
        let a = Side {
            node: i,
            conn: Conn::new(dj, true, true, limits(), self.now),
            outbound: VecDeque::new(),
            finished: false,
        };
        let b = Side {
            node: j,
            conn: Conn::new(di, false, true, limits(), self.now),
            outbound: VecDeque::new(),
            finished: false,
        };
        self.links.push(Link { sides: [a, b] });
    }

    /// Runs one side: processes input, carries out its effects at once, collects its output.
    fn turn(nodes: &[SimNode], side: &mut Side, now: u64) -> bool {
        let engine = nodes[side.node].engine();
        let mut moved = false;
        loop {
            let out: Vec<Vec<u8>> = engine
                .read(|n| {
                    let local = NodeLocal::new(engine, n);
                    side.conn.drive(&local, now);
                    std::iter::from_fn(|| side.conn.poll_transmit(&local, now)).collect()
                })
                .expect("read");
            for b in &out {
                side.outbound.extend(b);
            }
            moved |= !out.is_empty();
            if side.conn.poll_finish(now) {
                side.finished = true;
            }
            let Some(effect) = side.conn.poll_effect() else { break };
            moved = true;
            let peer = side.conn.peer();
            match effect {
                Effect::Ingest(es) => {
                    let r = engine
                        .write(move |n| n.store.ingest(es, libra_engine::clock::wall_ms()))
                        .map_err(|e| LocalError(e.to_string()))
                        .and_then(|r| r.map_err(|e| LocalError(e.to_string())))
                        .map(|report| report.summary(libra_engine::clock::wall_ms()));
                    engine.read(|n| side.conn.handle_ingested(r, &NodeLocal::new(engine, n))).expect("read");
                }
                Effect::Introduce { token, card } => {
                    let r = engine
                        .write(move |n| n.accept_introduction(&token, &card, &peer))
                        .map_err(|e| LocalError(e.to_string()))
                        .and_then(|r| r.map_err(|e| LocalError(e.to_string())));
                    engine.read(|n| side.conn.handle_introduced(r, &NodeLocal::new(engine, n))).expect("read");
                }
                Effect::Grants(tags) => {
                    let r = engine
                        .write(move |n| n.receive_grants(&peer, &tags))
                        .map_err(|e| LocalError(e.to_string()))
                        .and_then(|r| r.map(|_| ()).map_err(|e| LocalError(e.to_string())));
                    side.conn.handle_granted(r);
                }
                Effect::Welcome { token, card } => {
                    let r = engine
                        .write(move |n| n.complete_short_invite(&peer, &token, &card))
                        .map_err(|e| LocalError(e.to_string()))
                        .and_then(|r| r.map(|_| ()).map_err(|e| LocalError(e.to_string())));
                    side.conn.handle_welcomed(r);
                }
            }
        }
        moved
    }

    /// Moves some of the bytes in flight on link `k`, possibly damaging them; drops the link
    /// once either side ended. Returns whether anything happened.
    fn pump(&mut self, k: usize, faults: bool) -> bool {
        let now = self.now;
        let mut moved = false;
        for s in 0..2 {
            moved |= Sim::turn(&self.nodes, &mut self.links[k].sides[s], now);
        }
        for s in 0..2 {
            let (from, to) = if s == 0 { (0, 1) } else { (1, 0) };
            let pending = self.links[k].sides[from].outbound.len();
            if pending > 0 {
                let take = if self.rng.chance(50) { pending } else { 1 + self.rng.below(pending) };
                let mut bytes: Vec<u8> = self.links[k].sides[from].outbound.drain(..take).collect();
                if faults && self.rng.chance(3) {
                    match self.rng.below(3) {
                        // Bytes lost in the middle.
                        0 => {
                            let at = self.rng.below(bytes.len());
                            bytes.drain(at..(at + 1 + self.rng.below(64)).min(bytes.len()));
                        }
                        // A stretch delivered twice.
                        1 => {
                            let at = self.rng.below(bytes.len());
                            let dup: Vec<u8> = bytes[at..].iter().take(1 + self.rng.below(64)).copied().collect();
                            bytes.splice(at..at, dup);
                        }
                        // Cut off: the rest never arrives.
                        _ => {
                            bytes.truncate(self.rng.below(bytes.len()));
                            self.links[k].sides[from].outbound.clear();
                            self.links[k].sides[from].finished = true;
                        }
                    }
                }
                self.links[k].sides[to].conn.handle_input(&bytes, now);
                moved = true;
            }
            if self.links[k].sides[from].finished && self.links[k].sides[from].outbound.is_empty() {
                self.links[k].sides[to].conn.handle_eof(now);
            }
        }
        for s in 0..2 {
            moved |= Sim::turn(&self.nodes, &mut self.links[k].sides[s], now);
        }
        if self.links[k].sides.iter().any(|s| s.conn.end().is_some()) {
            // Whatever the ended side still had to say is delivered, then the link is gone.
            let link = self.links.remove(k);
            drop(link);
            moved = true;
        }
        moved
    }

    /// Tells every live session on node `i` that its logs may have changed.
    fn changed(&mut self, i: usize) {
        for l in &mut self.links {
            for s in &mut l.sides {
                if s.node == i && s.conn.wants_changes() {
                    s.conn.handle_changed(None);
                }
            }
        }
    }

    fn chat_between(&self, i: usize, j: usize) -> Option<ChatTarget> {
        let u = self.nodes[j].user.to_string();
        self.nodes[i].engine().read(|n| n.chat(&u).ok()).expect("read")
    }

    fn send(&mut self) {
        let i = self.rng.below(self.nodes.len());
        let contacts: Vec<usize> = self.contacts(i).iter().filter_map(|u| self.index_of(u)).collect();
        if contacts.is_empty() {
            return;
        }
        let groups: Vec<ChatTarget> = self.nodes[i]
            .engine()
            .read(|n| {
                n.store
                    .chats()
                    .expect("chats")
                    .into_iter()
                    .filter_map(|c| match c.kind {
                        libra_engine::store::ChatKind::Group { name, members } => {
                            Some(ChatTarget { chat: c.chat, users: members, title: name })
                        }
                        _ => None,
                    })
                    .collect()
            })
            .expect("read");
        let target = if !groups.is_empty() && self.rng.chance(30) {
            groups[self.rng.below(groups.len())].clone()
        } else {
            let j = contacts[self.rng.below(contacts.len())];
            let Some(c) = self.chat_between(i, j) else { return };
            c
        };
        let text = format!("m{} from {i}", self.sent.len());
        let t = target.clone();
        let r = self.nodes[i].engine().write(move |n| n.send(&t, &text, None)).expect("write");
        let to = target.users.iter().filter_map(|u| self.index_of(u)).filter(|j| *j != i).collect();
        if let Ok(e) = r {
            self.sent.push(Sent { id: e.id, from: i, to });
        }
        self.changed(i);
    }

    fn add_contact(&mut self) {
        let (i, j) = (self.rng.below(self.nodes.len()), self.rng.below(self.nodes.len()));
        if i == j || self.contacts(i).contains(&self.nodes[j].user) {
            return;
        }
        let inv = self.invite(j);
        self.nodes[i].engine().write(move |n| n.add_contact(&inv, None).expect("add")).expect("write");
        self.changed(i);
    }

    fn group(&mut self) {
        let i = self.rng.below(self.nodes.len());
        let members: Vec<UserId> = self.contacts(i).into_iter().collect();
        if members.len() < 2 {
            return;
        }
        let name = format!("g{}", self.now);
        self.nodes[i].engine().write(move |n| n.group_create(&name, &members).expect("group")).expect("write");
        self.changed(i);
    }

    fn restart(&mut self, i: usize) {
        self.links.retain(|l| l.sides.iter().all(|s| s.node != i));
        if let Some(e) = self.nodes[i].engine.take() {
            e.shutdown();
        }
        let node = Node::open(&self.nodes[i].dir).expect("reopen after restart");
        self.nodes[i].engine = Some(start(node));
    }

    fn step(&mut self) {
        self.now += STEP_MS;
        for n in &mut self.nodes {
            n.cut_off = n.cut_off.saturating_sub(1);
        }
        match self.rng.below(100) {
            0..=24 => self.send(),
            25..=34 => self.add_contact(),
            35..=37 => self.group(),
            38..=52 => {
                let (i, j) = (self.rng.below(self.nodes.len()), self.rng.below(self.nodes.len()));
                self.connect(i, j);
            }
            53..=92 => {
                if !self.links.is_empty() {
                    let k = self.rng.below(self.links.len());
                    self.pump(k, true);
                }
            }
            93..=95 => {
                if !self.links.is_empty() {
                    let k = self.rng.below(self.links.len());
                    self.links.remove(k);
                }
            }
            96..=97 => {
                let i = self.rng.below(self.nodes.len());
                self.restart(i);
            }
            _ => {
                let i = self.rng.below(self.nodes.len());
                self.links.retain(|l| l.sides.iter().all(|s| s.node != i));
                self.nodes[i].cut_off = 20;
            }
        }
        let _ = self.timers();
    }

    /// Fires due timers; returns whether a link ended.
    fn timers(&mut self) -> bool {
        let now = self.now;
        for l in &mut self.links {
            for s in &mut l.sides {
                if s.conn.poll_timeout().is_some_and(|t| t <= now) {
                    s.conn.handle_timeout(now);
                }
            }
        }
        let before = self.links.len();
        self.links.retain(|l| l.sides.iter().all(|s| s.conn.end().is_none()));
        self.links.len() != before
    }

    /// No more faults: everyone who allows each other connects, and the links run until
    /// nothing moves.
    fn heal(&mut self) {
        for n in &mut self.nodes {
            n.cut_off = 0;
        }
        let mut quiet = false;
        for round in 0..400 {
            let n = self.nodes.len();
            for i in 0..n {
                for j in 0..n {
                    self.connect(i, j);
                }
            }
            let mut moved = false;
            let mut k = 0;
            while k < self.links.len() {
                let before = self.links.len();
                moved |= self.pump(k, false);
                if self.links.len() == before {
                    k += 1;
                }
            }
            for i in 0..n {
                self.changed(i);
            }
            self.now += STEP_MS;
            // A link damaged before healing may wait for bytes that never come: its idle
            // timer ends it, and the next round dials again.
            moved |= self.timers();
            let settled = self.links.iter().all(|l| l.sides.iter().all(|s| s.conn.outcome.synced));
            if !moved && settled && round > 2 {
                if quiet {
                    return;
                }
                // Acks sealed after an ingest become sendable with their own group's fsync,
                // which runs beside the writer: once every node's writes are durable, look
                // again.
                for n in &self.nodes {
                    n.engine().wait_durable().expect("wait durable");
                }
                quiet = true;
            } else {
                quiet = false;
            }
        }
        panic!("the healed network did not settle");
    }

    fn check(&self) {
        let n = self.nodes.len();
        for (i, node) in self.nodes.iter().enumerate() {
            let e = node.engine();
            let problems = e.read(|n| n.store.verify().expect("verify")).expect("read");
            assert!(problems.is_empty(), "node {i}: {problems:?}");
            let (rows, rebuilt) = e
                .read(|n| (n.store.chat_rows().expect("rows"), n.store.chat_rows_rebuilt().expect("rebuilt")))
                .expect("read");
            assert_eq!(rows, rebuilt, "node {i}: chats view differs from its rebuild");
        }
        // People who chose each other hold the same heads of what one offers and the other takes.
        for i in 0..n {
            for j in 0..n {
                if i == j || !(self.allows(i, j) && self.allows(j, i)) {
                    continue;
                }
                let (ei, ej) = (self.nodes[i].engine(), self.nodes[j].engine());
                let offered = ei.read(|n| n.offer_set(&self.nodes[j].device).expect("offer")).expect("read");
                let accepted = ej.read(|n| n.accept_set().expect("accept")).expect("read");
                for log in offered.intersection(&accepted) {
                    let hi = ei.read(|n| n.store.sendable_seq(log)).expect("read");
                    let hj = ej.read(|n| n.store.head(log).map(|h| h.seq)).expect("read");
                    let owner = self.nodes.iter().position(|n| n.device == *log || n.user.as_bytes() == log);
                    assert!(
                        hj >= hi,
                        "node {j} is behind node {i} on a log of node {owner:?} that {i} offers it: {hj:?} < {hi:?}; linked: {}",
                        self.linked(i, j)
                    );
                }
            }
        }
        for s in &self.sent {
            let has =
                |k: usize| self.nodes[k].engine().read(|n| n.store.get(&s.id).expect("get").is_some()).expect("read");
            assert!(has(s.from), "a message node {} was told was sent is gone", s.from);
            for &r in &s.to {
                if self.allows(s.from, r) && self.allows(r, s.from) {
                    assert!(has(r), "node {r} never got a message from its contact {}", s.from);
                }
            }
        }
        // Direct messages between mutual contacts are acknowledged.
        for s in self.sent.iter().filter(|s| s.to.len() == 1) {
            let r = s.to[0];
            if !(self.allows(s.from, r) && self.allows(r, s.from)) {
                continue;
            }
            let Some(chat) = self.chat_between(s.from, r) else { continue };
            let delivery = self.nodes[s.from]
                .engine()
                .read(|n| n.store.messages(&chat.chat, 10_000).expect("messages"))
                .expect("read")
                .into_iter()
                .find(|m| m.id == s.id)
                .and_then(|m| m.delivery);
            assert!(delivery >= Some(Delivery::Delivered), "not acknowledged: {delivery:?}");
        }
    }
}

/// An engine whose acks follow the simulation's steps, not the wall clock (a pause measured
/// in real milliseconds would make a seed's run depend on how fast the machine is).
fn start(node: Node) -> Engine {
    let e = Engine::start(node);
    e.set_ack_pause(Duration::ZERO);
    e
}

fn run(seed: u64, steps: usize) {
    let result = std::panic::catch_unwind(|| {
        let mut sim = Sim::new(seed);
        for _ in 0..steps {
            sim.step();
        }
        sim.heal();
        sim.check();
    });
    if let Err(e) = result {
        eprintln!("simulation failed with seed {seed} (rerun: LIBRA_SIM_SEED={seed} LIBRA_SIM_STEPS={steps})");
        std::panic::resume_unwind(e);
    }
}

/// Steps per run unless `LIBRA_SIM_STEPS` says otherwise.
const STEPS: usize = 120;

/// Seeds that once failed, kept as regressions (17: a grant arriving after a live session's
/// offer set was taken; 80: a link ended by its timer at the end of healing). Each replays the
/// run that failed: [`STEPS`] steps, whatever `LIBRA_SIM_STEPS` says (healing comes after them).
const REGRESSIONS: &[u64] = &[17, 80];

#[test]
fn seeded_simulations_converge() {
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    let steps = var("LIBRA_SIM_STEPS").map_or(STEPS, |s| s as usize);
    if let Some(seed) = var("LIBRA_SIM_SEED") {
        return run(seed, steps);
    }
    let (from, seeds) = (var("LIBRA_SIM_FROM").unwrap_or(0), var("LIBRA_SIM_SEEDS").unwrap_or(200));
    for &seed in REGRESSIONS {
        run(seed, STEPS);
    }
    for seed in from..from + seeds {
        run(seed, steps);
    }
}

#[test]
fn the_same_seed_makes_the_same_run() {
    let trace = |seed: u64| {
        let mut sim = Sim::new(seed);
        let mut t = Vec::new();
        for _ in 0..60 {
            sim.step();
            t.push((sim.links.len(), sim.sent.len()));
        }
        let heads: BTreeMap<usize, u64> = sim
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (i, n.engine().read(|n| n.store.entry_count()).expect("read")))
            .collect();
        (t, heads)
    };
    assert_eq!(trace(7), trace(7));
}
