//! Crash safety of a whole node: a child process runs Ann's engine (group commit, its fsync
//! thread, automatic acknowledgements) through every write path a person drives — sending (one
//! at a time, and several queued at once, which are stored as one batch),
//! editing, marking read, ingesting a contact's messages as a peer session does, importing two
//! bundles in either order (the later one's entries wait in the store), downloading a file's
//! blob piece by piece as the fetcher does (and removing it once complete, to download it
//! again) — and prints what each call acknowledged. We SIGKILL it at random moments, reopen,
//! and check that everything acknowledged is there, every chain verifies, every persisted view
//! (trust, chats) equals its rebuild from the logs (`Store::verify`), every message from others
//! is acknowledged by Ann or behind an acknowledgement point, every range the blob's
//! record claims verifies against its root, and a complete blob opens to the file's bytes.
//!
//! 100 kills by default; `LIBRA_CRASH_KILLS=10000` for a long run, and `LIBRA_CRASH_SEED=N`
//! replays a run's kill delays and the child's choices (every run prints its seed).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libra_engine::blob::{FileRef, Pieces, Request as BlobRequest, Status, decode_response};
use libra_engine::control::{self, BundleCommand, Cx, Request};
use libra_engine::engine::Engine;
use libra_engine::log::Entry;
use libra_engine::node::Node;
use libra_engine::store::blobs::{BlobState, Blobs};

const CHILD_ENV: &str = "LIBRA_CRASH_NODE_DIR";
const SEED_ENV: &str = "LIBRA_CRASH_NODE_CHILD_SEED";
/// Messages Ben wrote to Ann, which she ingests as if from a session, a few at a time.
const BEN_MESSAGES: usize = 300;
/// Messages Cy wrote to Ann, which reach her in one bundle.
const CY_MESSAGES: usize = 200;
/// The file whose blob Ann downloads (from a blob store beside hers, as a peer would serve it).
const FILE_BYTES: usize = 1 << 20;
/// Chunks per request: small pieces, so that kills land between and inside them.
const PIECE_CHUNKS: u64 = 64;

fn file_bytes() -> Vec<u8> {
    (0..FILE_BYTES as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// The source blob store and the reference to the file in it.
fn source(dir: &Path) -> (Blobs, FileRef) {
    let file = libra_engine::codec::decode(&std::fs::read(dir.join("file.ref")).expect("file ref")).expect("decode");
    (Blobs::new(&dir.join("source")), file)
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

/// Every entry of every log a node holds, user logs first (a device log names its user).
fn all_entries(n: &Node) -> Vec<Entry> {
    let users: Vec<[u8; 32]> = n.store.trust().users.keys().map(|u| *u.as_bytes()).collect();
    let mut heads: Vec<[u8; 32]> = n.store.heads().map(|(a, _)| a).collect();
    heads.sort_by_key(|a| !users.contains(a));
    heads.iter().flat_map(|a| n.store.read_log(a, 1, usize::MAX).expect("read")).collect()
}

fn write_entries(path: &Path, entries: &[Entry]) {
    let mut out = Vec::new();
    for e in entries {
        let b = e.encode();
        out.extend_from_slice(&u32::try_from(b.len()).expect("size").to_be_bytes());
        out.extend_from_slice(&b);
    }
    std::fs::write(path, out).expect("write entries");
}

fn read_entries(path: &Path) -> Vec<Entry> {
    let bytes = std::fs::read(path).expect("read entries");
    let (mut at, mut out) = (0, Vec::new());
    while at + 4 <= bytes.len() {
        let n = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
        out.push(Entry::decode(&bytes[at + 4..at + 4 + n]).expect("entry"));
        at += 4 + n;
    }
    out
}

/// Ann, Ben and Cy, contacts of Ann; Ben's messages in a file, Cy's in a bundle; a file's blob
/// in a store of its own.
fn setup(dir: &Path) {
    let plain = dir.join("file.bin");
    std::fs::write(&plain, file_bytes()).expect("file");
    let file = Blobs::new(&dir.join("source")).import(&plain).expect("import");
    std::fs::write(dir.join("file.ref"), libra_engine::codec::encode(&file)).expect("file ref");
    let mut ann = Node::init(&dir.join("ann"), "Ann").expect("ann");
    let ia = ann.invite(None, 10).expect("invite");
    for (name, count) in [("Ben", BEN_MESSAGES), ("Cy", CY_MESSAGES)] {
        let mut other = Node::init(&dir.join(name), name).expect("init");
        let io = other.invite(None, 1).expect("invite");
        ann.add_contact(&io, None).expect("add");
        other.add_contact(&ia, None).expect("add");
        let chat = other.chat(&ia.user().to_string()).expect("chat");
        let say = move |other: &mut Node, range: std::ops::Range<usize>| {
            for i in range {
                other.send(&chat, &format!("{name} says {i}"), None).expect("send");
            }
        };
        if name == "Ben" {
            say(&mut other, 0..count);
            write_entries(&dir.join("ben.entries"), &all_entries(&other));
        } else {
            // Two trips of a stick, the second carrying only what came since the first; the
            // child imports them in either order (the second one's entries then wait).
            let cy = Engine::start(other);
            for (trip, range) in [(1, 0..count / 2), (2, count / 2..count)] {
                let say = say.clone();
                cy.write_here(move |n| say(n, range)).expect("write");
                let export = Request::Bundle(BundleCommand::Export {
                    file: dir.join(format!("cy{trip}.libra")).display().to_string(),
                    for_contacts: vec!["Ann".into()],
                    all: false,
                    full: false,
                    with_files: false,
                });
                control::execute(&Cx::local(cy.clone()), &export).expect("export");
            }
        }
    }
}

/// The child: Ann's engine doing one random thing after another, printing what was
/// acknowledged: `OWN seq` (her device log holds it durably) or `HAVE author seq`.
#[test]
#[ignore = "run as a child process by a_node_survives_sigkill_on_every_write_path"]
fn crash_node_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let dir = Path::new(&dir);
    let seed: u64 = std::env::var(SEED_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let engine = Engine::open(&dir.join("ann")).expect("child open");
    let own = engine.device();
    let (ben_chat, ben_entries) = engine
        .read(|n| {
            let ben = n.store.contacts().expect("contacts").into_iter().find(|(_, c)| c.name == "Ben").expect("ben").0;
            (n.chat(&ben.to_string()).expect("chat"), read_entries(&dir.join("ben.entries")))
        })
        .expect("read");
    let held = |e: &Entry| {
        engine.read(|n| n.store.head(&e.header().author.0).is_some_and(|h| h.seq >= e.header().seq)).expect("read")
    };
    let source = source(dir);
    let mut ben_left: std::collections::VecDeque<Entry> = ben_entries.into_iter().filter(|e| !held(e)).collect();
    let mut rng = blake3::hash(&seed.to_le_bytes()).as_bytes()[..8].to_vec();
    let (mut sent, mut imported) = (Vec::new(), false);
    for i in 0u64.. {
        rng = blake3::hash(&rng).as_bytes()[..8].to_vec();
        let own_head = || engine.read(|n| n.store.head(&own).map_or(0, |h| h.seq)).expect("read");
        let did = match rng[0] % 12 {
            0..=3 => {
                // Half the time several sends queued at once, which the writer stores as one batch.
                let k = if rng[6].is_multiple_of(2) { 1 } else { 2 + usize::from(rng[6] % 7) };
                let queued: Vec<_> = (0..k)
                    .map(|j| engine.queue_send(&ben_chat, &format!("Ann says {seed} {i}.{j}"), None).expect("queue"))
                    .collect();
                for q in queued {
                    let e = q.wait().expect("send");
                    sent.push(e.id);
                    println!("OWN {}", e.header().seq);
                }
                "send"
            }
            4..=6 if !ben_left.is_empty() => {
                let n = (1 + usize::from(rng[1]) % 8).min(ben_left.len());
                let batch: Vec<Entry> = ben_left.drain(..n).collect();
                let last = batch.last().map(|e| (e.header().author.0, e.header().seq)).expect("batch");
                rt.block_on(engine.ingest(batch)).expect("ingest");
                // Ingest answers once visible; what a session has acknowledged is durable.
                engine.wait_durable().expect("durable");
                println!("HAVE {} {}", hex::encode(last.0), last.1);
                "ingest"
            }
            7 => {
                let chat = ben_chat.clone();
                engine.write(move |n| n.mark_read(&chat, true)).expect("write").expect("mark read");
                println!("OWN {}", own_head());
                "read"
            }
            8 if !sent.is_empty() => {
                let (chat, target) = (ben_chat.clone(), sent[usize::from(rng[2]) % sent.len()]);
                let e = if rng[3].is_multiple_of(2) {
                    engine.write(move |n| n.edit(&chat, target, "edited")).expect("write").expect("edit")
                } else {
                    engine.write(move |n| n.delete(&chat, target)).expect("write").expect("delete")
                };
                println!("OWN {}", e.header().seq);
                "edit"
            }
            9 if !imported => {
                imported = true;
                let trips = if rng[4].is_multiple_of(2) { [1, 2] } else { [2, 1] };
                for trip in trips {
                    let file = dir.join(format!("cy{trip}.libra")).display().to_string();
                    let import = Request::Bundle(BundleCommand::Import { file });
                    let r = control::execute(&Cx::local(engine.clone()), &import).expect("import");
                    assert!(r.value["problems"].as_array().is_some_and(Vec::is_empty), "{}", r.value);
                    assert!(r.value["rejected"].as_array().is_some_and(Vec::is_empty), "{}", r.value);
                }
                for (a, seq) in engine.read(|n| n.store.heads().collect::<Vec<_>>()).expect("read") {
                    println!("HAVE {} {}", hex::encode(a), seq.seq);
                }
                "import"
            }
            10 => {
                // What a clean close does: seal the journal, flush every memtable, delete the
                // journals that are all in tables.
                engine.read(|n| n.store.flush()).expect("read").expect("flush");
                "flush"
            }
            11 => download(&engine.blobs(), &source, usize::from(rng[5] % 4) + 1),
            _ => continue,
        };
        println!("DID {did}");
    }
}

/// Fetches up to `pieces` pieces of the file's blob as the fetcher does (verified against the
/// root, written, synced, recorded), printing `PIECE start end` once each is recorded and `BLOB
/// DONE` once complete; a complete blob is removed (`BLOB REMOVING`, then `BLOB GONE`) so the
/// next download starts over.
fn download(blobs: &Blobs, (from, file): &(Blobs, FileRef), pieces: usize) -> &'static str {
    let (root, size) = (file.root.0, file.blob_size());
    if blobs.state(&root) == BlobState::Complete {
        println!("BLOB REMOVING");
        blobs.remove(&root).expect("remove");
        println!("BLOB GONE");
        return "remove";
    }
    let mut partial = blobs.begin(&root, size).expect("begin");
    for _ in 0..pieces {
        // Planned afresh each time: only the 64 chunks fetched below are taken.
        let Some((start, end)) = Pieces::new(size, &partial.have()).take() else { break };
        let piece = (start, end.min(start + PIECE_CHUNKS));
        let req = BlobRequest { root, ranges: vec![piece] };
        let (status, body) = from.serve(&req);
        assert_eq!(status, Status::Ok);
        let items = decode_response(&root, size, &req.ranges, &body).expect("verifies");
        partial.write(&items).expect("write");
        partial.persist_later().expect("persist later").run().expect("persist");
        println!("PIECE {} {}", piece.0, piece.1);
    }
    if partial.finish().expect("finish") {
        println!("BLOB DONE");
    }
    "download"
}

/// What the children said of the blob, in order.
#[derive(Debug, Default)]
struct BlobAcks {
    pieces: Vec<(u64, u64)>,
    done: bool,
    /// A removal was begun and not confirmed: the blob may be there, partly or not at all.
    removing: bool,
}

impl BlobAcks {
    fn take(&mut self, line: &str) {
        match line.split(' ').collect::<Vec<_>>()[..] {
            ["PIECE", s, e] => {
                // A download after a removal that a kill cut short: the blob is being fetched
                // again, and what is acknowledged from here on must be there.
                self.removing = false;
                self.pieces.extend(s.parse().ok().zip(e.parse().ok()));
            }
            ["BLOB", "DONE"] => self.done = true,
            ["BLOB", "REMOVING"] => *self = BlobAcks { removing: true, ..BlobAcks::default() },
            ["BLOB", "GONE"] => self.removing = false,
            _ => {}
        }
    }

    /// After a kill: every acknowledged piece is recorded, every recorded range verifies
    /// against the root, and a complete blob opens to the file's bytes.
    fn check(&self, data_dir: &Path, (_, file): &(Blobs, FileRef), plain: &[u8], round: u32, seed: u64) {
        let blobs = Blobs::new(data_dir);
        let (root, size) = (file.root.0, file.blob_size());
        let have = blobs.have(&root).map(|(_, h)| h).unwrap_or_default();
        let held = libra_engine::blob::chunk_ranges_of(&have);
        if !self.removing {
            for &(s, e) in &self.pieces {
                let piece = libra_engine::blob::chunk_ranges_of(&[(s, e)]);
                assert!(
                    piece.is_subset(&held),
                    "round {round} (seed {seed}): piece {s}..{e} acknowledged, record {have:?}"
                );
            }
            assert!(!self.done || blobs.state(&root) == BlobState::Complete, "round {round} (seed {seed}): {have:?}");
        }
        if !have.is_empty() {
            let req = BlobRequest { root, ranges: have.clone() };
            let (status, body) = blobs.serve(&req);
            assert_eq!(status, Status::Ok, "round {round} (seed {seed}): the recorded ranges {have:?} are not served");
            decode_response(&root, size, &have, &body)
                .unwrap_or_else(|e| panic!("round {round} (seed {seed}): the recorded ranges do not verify: {e}"));
        }
        if blobs.state(&root) == BlobState::Complete {
            let mut out = Vec::new();
            blobs.read_into(file, &mut out).expect("a complete blob opens");
            assert!(out == plain, "round {round} (seed {seed}): the downloaded file differs");
        }
    }
}

#[test]
fn a_node_survives_sigkill_on_every_write_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let exe = std::env::current_exe().expect("test binary");
    let own = *Node::open(&dir.path().join("ann")).expect("open").device_id().as_bytes();
    let kills: u32 = std::env::var("LIBRA_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let seed: u64 = std::env::var("LIBRA_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        let h = blake3::hash(format!("{:?}", Instant::now()).as_bytes());
        u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8]))
    });
    eprintln!("node crash test: {kills} kills, LIBRA_CRASH_SEED={seed}");
    let mut rng = seed.to_le_bytes().to_vec();
    // What the children acknowledged, per log.
    let mut acked: BTreeMap<[u8; 32], u64> = BTreeMap::new();
    let mut ann = None;
    let mut done: BTreeMap<String, u64> = BTreeMap::new();
    let (source, plain, mut blob) = (source(dir.path()), file_bytes(), BlobAcks::default());
    for round in 0..kills {
        drop(ann.take());
        rng = blake3::hash(&rng).as_bytes()[..8].to_vec();
        let child_seed = u64::from_le_bytes(rng[..8].try_into().expect("8"));
        let mut child = Command::new(&exe)
            .args(["crash_node::crash_node_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env(SEED_ENV, child_seed.to_string())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("child.err")).expect("stderr file"))
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let (did_tx, did_rx) = std::sync::mpsc::channel();
        let (blob_tx, blob_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The harness's "test crash_node::crash_node_child ... " has no newline of its
                // own: the child's first line follows it on the same line.
                let line = match line.split_once(" ... ") {
                    Some((head, rest)) if head.starts_with("test ") => rest.to_owned(),
                    _ => line,
                };
                if let Some(what) = line.strip_prefix("DID ") {
                    let _ = did_tx.send(what.to_owned());
                }
                if line.starts_with("PIECE ") || line.starts_with("BLOB ") {
                    let _ = blob_tx.send(line.clone());
                }
                let mut w = line.split(' ');
                let parsed = match (w.next(), w.next(), w.next()) {
                    (Some("OWN"), Some(s), None) => s.parse().ok().map(|s| (own, s)),
                    (Some("HAVE"), Some(a), Some(s)) => unhex(a).zip(s.parse().ok()),
                    _ => None,
                };
                if let Some(p) = parsed {
                    let _ = tx.send(p);
                }
            }
        });
        // Wait for the first acknowledgement, then kill after a random 0–150 ms.
        let child_err = || std::fs::read_to_string(dir.path().join("child.err")).unwrap_or_default();
        let Ok(first) = rx.recv_timeout(Duration::from_secs(60)) else {
            panic!("round {round} (seed {seed}): the child acknowledged nothing: {}", child_err());
        };
        let delay = u64::from(u16::from_le_bytes([rng[0], rng[1]])) % 150;
        std::thread::sleep(Duration::from_millis(delay));
        // The child never ends by itself: a call that failed after a kill is a finding.
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("round {round} (seed {seed}): the child ended by itself ({status}): {}", child_err());
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().expect("reader");
        for what in did_rx.try_iter() {
            *done.entry(what).or_default() += 1;
        }
        for (a, s) in std::iter::once(first).chain(rx.try_iter()) {
            let e = acked.entry(a).or_default();
            *e = (*e).max(s);
        }
        for line in blob_rx.try_iter() {
            blob.take(&line);
        }
        blob.check(&dir.path().join("ann"), &source, &plain, round, seed);

        let node = Node::open(&dir.path().join("ann")).expect("reopen after kill");
        for (a, s) in &acked {
            let head = node.store.head(a).map_or(0, |h| h.seq);
            assert!(head >= *s, "round {round} (seed {seed}): log {} acknowledged at {s}, head {head}", hex::encode(a));
        }
        let problems = node.store.verify().expect("verify");
        assert!(problems.is_empty(), "round {round} (seed {seed}): {problems:?}");
        every_message_acknowledged_or_behind_a_point(&node, round, seed);
        ann = Some(node);
    }
    eprintln!("node crash test: calls completed before the kills: {done:?}");
    for path in ["send", "ingest", "read", "edit", "import", "flush", "download", "remove"] {
        assert!(done.contains_key(path), "no {path} in {kills} rounds (seed {seed}): {done:?}");
    }
    // The run went through every path: Ben's and Cy's messages came in, Ann wrote, and the
    // chat shows what was said (the views equal their rebuild, checked above).
    let node = ann.expect("a round ran");
    let heads: BTreeMap<[u8; 32], u64> = node.store.heads().map(|(a, h)| (a, h.seq)).collect();
    assert!(heads.get(&own).is_some_and(|s| *s > 2), "Ann wrote nothing: {heads:?}");
    assert!(heads.len() >= 5, "logs of Ann, Ben and Cy: {heads:?}");
}

/// What a kill leaves of the acknowledgements: every message from others that Ann holds is
/// the target of one of her own Acks or at or after its log's acknowledgement point (where the
/// start's pass reads from), whatever the kill interrupted (spec/messaging.md, section 10.4).
/// Nothing is acknowledged here: the next child starts with what the kill left.
fn every_message_acknowledged_or_behind_a_point(node: &Node, round: u32, seed: u64) {
    use libra_engine::messaging::{Body, Sealed, aad};
    let own = node.device_id();
    let secrets = node.secrets.agreements();
    let mut acked = std::collections::BTreeSet::new();
    for e in node.store.read_log(own.as_bytes(), 1, usize::MAX).expect("read") {
        let Some(sealed) = e.payload.as_deref().and_then(|p| Sealed::decode(p).ok()) else { continue };
        let plain = secrets.iter().find_map(|s| sealed.open(s, &aad(own.as_bytes())).ok());
        if let Some(Ok(Body::Ack { targets, read: false, .. })) = plain.as_deref().map(Body::decode) {
            acked.extend(targets);
        }
    }
    let points = node.store.ack_points();
    for chat in node.store.chats().expect("chats") {
        for m in node.store.messages(&chat.chat, usize::MAX).expect("messages") {
            // Messages of unknown authors are never acknowledged (section 10.1).
            if m.mine || m.user.is_none() || acked.contains(&m.id) {
                continue;
            }
            let h = node.store.get(&m.id).expect("get").expect("held").header().clone();
            assert!(
                points.get(&h.author.0).is_some_and(|p| *p <= h.seq),
                "round {round} (seed {seed}): message {} (seq {}) neither acknowledged nor behind a point ({:?})",
                hex::encode(m.id.as_bytes()),
                h.seq,
                points.get(&h.author.0)
            );
        }
    }
}
