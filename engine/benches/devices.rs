//! Linking a device to a user who has received N messages (default 100,000): the link itself
//! (grant and the N content keys handed over), then the first sync until the new device shows
//! the whole chat, each as a rate next to the ingest rate of the same entries on the linking
//! device in this run (the bound a cold sync is held to).
//!
//!     cargo bench -p libra-engine --bench devices -- [--messages N]

#[path = "common/alloc.rs"]
mod alloc;

use std::sync::Arc;
use std::time::Instant;

use libra_engine::engine::Engine;
use libra_engine::net::{Host, HostConfig, link_protocol};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let n = arg("--messages", 100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut a, b) =
        libra_engine::testkit::ben_wrote_to_ann(dir.path(), n, |i| format!("message {i}: the quick brown fox"))
            .expect("seed");
    let ib_user = b.user_id().expect("Ben's user");
    let all = libra_engine::testkit::entries_of(&b).expect("read");
    let t = Instant::now();
    for chunk in all.chunks(10_000) {
        a.store.ingest(chunk.to_vec(), libra_engine::clock::wall_ms()).expect("ingest");
    }
    let ingest = all.len() as f64 / t.elapsed().as_secs_f64();
    let kept = a.store.kept_keys().expect("kept").len();
    println!("limit: ingest at the linking device (verify, open, fold, keep the content key): {ingest:.0} entries/s");
    drop(b);

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("rt");
    rt.block_on(async move {
        let host = Arc::new(Host::new(Engine::start(a), HostConfig::new("127.0.0.1:0".parse().expect("addr"))).expect("host"));
        let server = host.clone();
        tokio::spawn(async move { server.serve().await });
        let addr = host.local_addr().expect("addr");
        let code = host.engine().open_link(vec![addr.to_string()]).expect("code");
        let t = Instant::now();
        let linked = link_protocol::request(&code, "phone", &[]).await.expect("link");
        let (node, keys) = link_protocol::create(&dir.path().join("phone"), linked).await.expect("create");
        let linking = t.elapsed();
        println!(
            "link: grant and {keys} of {kept} kept content keys in {linking:.2?} = {:.0} keys/s ({:.1} MB/s)",
            keys as f64 / linking.as_secs_f64(),
            keys as f64 * 64.0 / 1e6 / linking.as_secs_f64()
        );
        let phone = Arc::new(Host::new(Engine::start(node), HostConfig::new("127.0.0.1:0".parse().expect("addr"))).expect("host"));
        phone.engine().allow(host.device(), Some(addr.to_string())).expect("allow");
        let t = Instant::now();
        // As `init --link` does: again until a round brings nothing (each can make more logs
        // wanted: the contacts learned from the notes it opened).
        let mut entries_in = 0;
        for _ in 0..8 {
            let o = phone.connect(addr, Some(host.device()), false).await.expect("sync");
            if o.entries_in == 0 {
                break;
            }
            entries_in += o.entries_in;
        }
        let to_ben = ib_user;
        let shown = phone.engine().read(|n| {
            let c = n.chat(&to_ben.to_string()).expect("chat");
            n.store.messages(&c.chat, usize::MAX).expect("messages").iter().filter(|m| m.text.is_some()).count()
        });
        let sync = t.elapsed();
        println!(
            "first sync (rounds until nothing new): {} entries in {sync:.2?} = {:.0} entries/s ({:.2}× the ingest limit); the chat shows {} of {n} messages",
            entries_in,
            entries_in as f64 / sync.as_secs_f64(),
            entries_in as f64 / sync.as_secs_f64() / ingest,
            shown.expect("read")
        );
        host.shutdown().await;
        phone.shutdown().await;
    });
}
