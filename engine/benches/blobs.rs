//! Files over QUIC on loopback, between two processes: a file encrypted into its blob at the
//! sender, then fetched by the receiver over `libra/blob/1` (every piece verified against the
//! root, written, the record synced every second or 64 MiB).
//! Printed next to the limit it is measured against, in the same run between the same two
//! processes: raw quinn throughput on one stream with the same TLS and transport settings
//! (target ≥ 0.7×), and the peak RSS of both processes (target < 100 MB each).
//!
//!     cargo bench -p libra-engine --bench blobs -- [--mib N]     (default 1024)

#[path = "common/alloc.rs"]
mod alloc;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libra_engine::engine::Engine;
use libra_engine::net::{Host, HostConfig, ProtocolHandler, Router};
use libra_engine::node::Node;
use libra_engine::store::blobs::BlobState;

#[path = "common/proc_stat.rs"]
mod proc_stat;
use proc_stat::cpu_of;

const RAW_ALPN: &[u8] = b"bench/raw-sink";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Peak resident set of this process, in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// Cores each process kept busy between two readings of both, as "receiver r, sender s".
fn busy(before: (Option<f64>, Option<f64>), after: (Option<f64>, Option<f64>), took: Duration) -> String {
    let one = |a: Option<f64>, b: Option<f64>| {
        a.zip(b).map_or("?".to_owned(), |(a, b)| format!("{:.2}", (a - b) / took.as_secs_f64()))
    };
    format!("cores busy: receiver {}, sender {}", one(after.0, before.0), one(after.1, before.1))
}

/// UDP datagrams this machine dropped because a socket's receive buffer was full (Linux):
/// each is a packet QUIC sends again.
fn udp_drops() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let at = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// Reads each stream to its end and answers with one byte: the raw throughput baseline.
struct Sink;

impl ProtocolHandler for Sink {
    fn accept(&self, conn: quinn::Connection) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                let mut buf = vec![0u8; 1 << 20];
                while let Ok(Some(_)) = recv.read(&mut buf).await {}
                let _ = send.write_all(&[1]).await;
                let _ = send.finish();
            }
        })
    }
}

/// The sending process: serves the node in `dir` (blobs and the raw sink) until its standard
/// input closes, then prints its peak RSS.
fn serve(dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let engine = Engine::open(dir).expect("open");
        let cfg = HostConfig::new("127.0.0.1:0".parse().expect("addr"));
        let host = Arc::new(
            Host::with_protocols(engine, cfg, |r: Router| r.register(RAW_ALPN, Arc::new(Sink))).expect("host"),
        );
        let server = host.clone();
        tokio::spawn(async move { server.serve().await });
        println!("{} {}", host.local_addr().expect("addr"), hex::encode(host.device()));
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().lock().lines().count()).await;
        println!("rss {:.1}", peak_rss_mb());
        host.shutdown().await;
    });
}

fn main() {
    if let Ok(dir) = std::env::var("LIBRA_BENCH_SERVE") {
        return serve(Path::new(&dir));
    }
    let mib = arg("--mib", 1024);
    let dir = tempfile::tempdir().expect("tempdir");
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let a = Engine::start(Node::init(&a_dir, "a").expect("init"));
    let b = Engine::start(Node::init(&b_dir, "b").expect("init"));
    let ia = a.write_here(|n| n.invite(None, 1).expect("invite")).expect("write");
    let ib = b.write_here(|n| n.invite(None, 1).expect("invite")).expect("write");
    a.write_here(|n| n.add_contact(&ib, None).expect("add")).expect("write");
    b.write_here(|n| n.add_contact(&ia, None).expect("add")).expect("write");
    b.read(|n| n.store.set_auto_download(u64::MAX)).expect("read").expect("setting");

    // The file, written in 1 MiB pieces (never whole in memory).
    let src = dir.path().join("video.bin");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&src).expect("create"));
    let mut block = vec![0u8; 1 << 20];
    for i in 0..mib {
        for (j, x) in block.iter_mut().enumerate() {
            *x = (j as u32).wrapping_mul(2_654_435_761).wrapping_add(i as u32).to_le_bytes()[1];
        }
        f.write_all(&block).expect("write");
    }
    f.flush().expect("flush");
    drop(f);
    let bytes = (mib as u64) << 20;
    let ub = b.read(|n| n.user_id().expect("user")).expect("read");
    let chat = a.read(|n| n.chat(&ub.to_string()).expect("chat")).expect("read");
    let t = Instant::now();
    let (_, file) = a.send_file(&chat, &src, "", None).expect("send file");
    let encrypt = t.elapsed();
    drop(a);
    std::fs::remove_file(&src).expect("remove");

    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .env("LIBRA_BENCH_SERVE", &a_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the sender");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("banner").expect("read");
    let (addr, device) = first.split_once(' ').expect("banner");
    let addr: std::net::SocketAddr = addr.parse().expect("addr");
    let device: [u8; 32] = hex::decode(device).expect("hex").try_into().expect("32 bytes");

    let (me, sender) = (std::process::id(), child.id());
    let cpus = || (cpu_of(me), cpu_of(sender));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let (raw, fetch, raw_cpu, fetch_cpu) = rt.block_on(async {
        let host = Arc::new(Host::new(b.clone(), HostConfig::new("127.0.0.1:0".parse().expect("addr"))).expect("host"));
        let server = host.clone();
        tokio::spawn(async move { server.serve().await });
        // Raw quinn: the same number of bytes on one stream, to a sink in the other process.
        let conn = host.dial(addr, Some(device), RAW_ALPN).await.expect("dial");
        let (mut send, mut recv) = conn.open_bi().await.expect("stream");
        let block = vec![7u8; 1 << 20];
        let (cpu_before, raw_drops) = (cpus(), udp_drops());
        let t = Instant::now();
        for _ in 0..mib {
            send.write_all(&block).await.expect("write");
        }
        send.finish().expect("finish");
        let mut ack = [0u8; 1];
        recv.read_exact(&mut ack).await.expect("ack");
        let raw = t.elapsed();
        let drops_before = udp_drops();
        let dropped =
            |d: Option<u64>| d.map(|d| format!("; {d} datagrams dropped by full buffers")).unwrap_or_default();
        let raw_cpu = busy(cpu_before, cpus(), raw) + &dropped(drops_before.zip(raw_drops).map(|(a, b)| a - b));
        conn.close(0u32.into(), b"done");
        // The file: B connects and its fetcher downloads the blob.
        host.run_fetcher();
        let t = Instant::now();
        let h = host.clone();
        tokio::spawn(async move {
            let _ = h.connect(addr, Some(device), true).await;
        });
        let blobs = b.blobs();
        let (mut began, mut cpu_began) = (None, cpus());
        loop {
            match blobs.state(&file.root.0) {
                BlobState::Complete => break,
                BlobState::Partial(_) if began.is_none() => {
                    began = Some(Instant::now());
                    cpu_began = cpus();
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let fetch = (t.elapsed(), began.map_or(Duration::ZERO, |b| b.elapsed()));
        let fetch_cpu = busy(cpu_began, cpus(), fetch.1);
        let fetch_cpu = fetch_cpu + &dropped(udp_drops().zip(drops_before).map(|(a, b)| a - b));
        host.shutdown().await;
        (raw, fetch, raw_cpu, fetch_cpu)
    });
    drop(child.stdin.take());
    let child_rss = lines.find_map(|l| l.ok()?.strip_prefix("rss ").map(str::to_owned)).unwrap_or_default();
    let _ = child.wait();
    let blob = file.blob_size() as f64;
    let mbps = |b: f64, d: Duration| b / d.as_secs_f64() / 1e6;
    println!("blobs: {mib} MiB file, blob {:.1} MB, loopback, sender and receiver in two processes", blob / 1e6);
    println!("  encrypt + outboard at the sender: {:>7.0} MB/s", mbps(bytes as f64, encrypt));
    println!("  raw quinn, one stream:            {:>7.0} MB/s  ({raw_cpu})", mbps(bytes as f64, raw));
    let (total, transfer) = fetch;
    println!(
        "  file fetched (verified, stored):  {:>7.0} MB/s  = {:.2}× raw quinn (target ≥ 0.7×), download start to complete ({fetch_cpu})",
        mbps(blob, transfer),
        mbps(blob, transfer) / mbps(bytes as f64, raw),
    );
    println!(
        "  with connecting and the sync that brings the message: {:.2} s ({:.0} MB/s)",
        total.as_secs_f64(),
        mbps(blob, total)
    );
    println!(
        "  peak RSS: receiver {:.0} MB (it also encrypted the file), sender {child_rss} MB (target < 100 MB each)",
        peak_rss_mb()
    );
}
