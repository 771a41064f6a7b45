//! Bundle export and import next to the engine's own ingest rate, measured in the same run:
//! N entries of one contact's device log (120-byte incompressible payloads, as sealed messages
//! carry) exported to a file, imported into a node that never saw them (file read, sections
//! checked, entries validated, stored, projected), and ingested straight from memory into a
//! third node in batches of the same size (the limit: target import ≥ 0.8 × ingest). Also
//! bundle bytes ÷ raw entry bytes.
//!
//!     cargo bench -p libra-engine --bench bundle -- [--entries N]

#[path = "common/alloc.rs"]
mod alloc;

use std::time::Instant;

use libra_engine::control::{self, BundleCommand, Cx, Request};
use libra_engine::engine::Engine;
use libra_engine::node::Node;

fn main() {
    let mut entries = 200_000usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--entries" {
            entries = it.next().and_then(|v| v.parse().ok()).unwrap_or(entries);
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = Node::init(&dir.path().join("a"), "Ann").expect("init");
    let invite = a.invite(None, 10).expect("invite");
    let key = a.secrets.device.signing.clone();
    let mut raw_bytes = 0u64;
    let mut left = entries;
    while left > 0 {
        let n = left.min(10_000);
        let items: Vec<(u16, Vec<u8>)> = (0..n)
            .map(|i| {
                let mut p = vec![0u8; 120];
                blake3::Hasher::new().update(&(left + i).to_le_bytes()).finalize_xof().fill(&mut p);
                (999u16, p)
            })
            .collect();
        for e in a.store.append(&key, items, libra_engine::clock::wall_ms()).expect("append") {
            raw_bytes += e.encode().len() as u64;
        }
        left -= n;
    }
    let file = dir.path().join("a.libra");
    let (ae, be, ce) = (Engine::start(a), open(&dir.path().join("b"), &invite), open(&dir.path().join("c"), &invite));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("rt");

    let t = Instant::now();
    let export = Request::Bundle(BundleCommand::Export {
        file: file.display().to_string(),
        for_contacts: Vec::new(),
        all: true,
        full: false,
        with_files: false,
    });
    control::execute(&Cx::local(ae.clone()), &export).expect("export");
    let export_s = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&file).expect("file").len();

    let t = Instant::now();
    let import = Request::Bundle(BundleCommand::Import { file: file.display().to_string() });
    let r = control::execute(&Cx::local(be.clone()), &import).expect("import");
    let import_s = t.elapsed().as_secs_f64();
    assert!(r.value["accepted"].as_u64().is_some_and(|x| x as usize >= entries), "{}", r.value);

    // The limit: the same entries straight into the engine, batches of a section's size.
    let author = *ae.read(|n| n.device_id()).expect("read").as_bytes();
    let mut batches = Vec::new();
    let mut seq = 1;
    loop {
        let page = ae.read(|n| n.store.read_log(&author, seq, 5_000)).expect("read").expect("log");
        let Some(last) = page.last() else { break };
        seq = last.header().seq + 1;
        batches.push(page);
    }
    let t = Instant::now();
    rt.block_on(async {
        for b in batches {
            ce.ingest(b).await.expect("ingest");
        }
    });
    let ingest_s = t.elapsed().as_secs_f64();
    let rate = |s: f64| entries as f64 / s;
    println!(
        "bundle of {entries} entries: export {:.0} entries/s, import {:.0} entries/s = {:.2} × engine ingest {:.0} entries/s (target ≥ 0.80) {}; bundle bytes ÷ raw entry bytes {:.3}",
        rate(export_s),
        rate(import_s),
        ingest_s / import_s,
        rate(ingest_s),
        if ingest_s / import_s >= 0.8 { "PASS" } else { "FAIL" },
        bytes as f64 / raw_bytes as f64
    );
    for e in [ae, be, ce] {
        e.shutdown();
    }
}

/// A fresh node that has Ann as a contact (so it wants her logs).
fn open(dir: &std::path::Path, invite: &libra_engine::messenger::Invite) -> Engine {
    let mut n = Node::init(dir, "Reader").expect("init");
    n.add_contact(invite, None).expect("add");
    Engine::start(n)
}
