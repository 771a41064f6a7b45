//! Crash safety: a child process appends in a loop and prints each acknowledged seq; we SIGKILL
//! it at random moments, reopen, and check that every acknowledged entry is there and every
//! chain verifies.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libra_engine::Store;

use crate::util::key;

const CHILD_ENV: &str = "LIBRA_CRASH_CHILD_DIR";

/// The child: appends batches of 1–8 entries forever, acknowledging each batch's last seq.
#[test]
#[ignore = "run as a child process by acknowledged_entries_survive_sigkill"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let mut store = Store::open(&dir).expect("child open");
    let k = key("crash");
    let mut i = 0u64;
    loop {
        let n = 1 + (i % 8) as usize;
        let items = (0..n).map(|j| (99u16, format!("payload {i} {j}").into_bytes())).collect();
        let out = store.append(&k, items, libra_engine::clock::wall_ms()).expect("append");
        let last = out.last().expect("appended").header().seq;
        println!("ACK {last}");
        i += 1;
    }
}

#[test]
fn acknowledged_entries_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let exe = std::env::current_exe().expect("test binary");
    let author = key("crash").verifying_key().to_bytes();
    let mut acked_max = 0u64;
    let mut rng = blake3::hash(format!("{:?}", Instant::now()).as_bytes()).as_bytes()[..8].to_vec();
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args(["crash::crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(seq) = line.strip_prefix("ACK ").and_then(|s| s.parse::<u64>().ok()) {
                    let _ = tx.send(seq);
                }
            }
        });
        // Wait for the first acknowledgement, then kill after a random 0–150 ms.
        let first = rx.recv_timeout(Duration::from_secs(30)).expect("child acknowledged nothing");
        acked_max = acked_max.max(first);
        rng = blake3::hash(&rng).as_bytes()[..8].to_vec();
        let delay = u64::from(u16::from_le_bytes([rng[0], rng[1]])) % 150;
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().expect("reader");
        for seq in rx.try_iter() {
            acked_max = acked_max.max(seq);
        }

        let store = Store::open(&path).expect("reopen after kill");
        let head = store.head(&author).map_or(0, |h| h.seq);
        assert!(head >= acked_max, "round {round}: acknowledged seq {acked_max} but head is {head}");
        let log = store.read_log(&author, 1, usize::MAX).expect("read");
        assert_eq!(log.len() as u64, head, "round {round}: gap in the log");
        let problems = store.verify().expect("verify");
        assert!(problems.is_empty(), "round {round}: {problems:?}");
    }
    assert!(acked_max >= 20, "too few appends to mean anything: {acked_max}");
}
