//! A command forwarded to a running node through the control socket: round trip against the
//! 5 ms target, in-process (socket + command) and as a whole `libra` process, next to the cost
//! of starting that process at all (`libra --version`), measured in the same run.
//!
//!     cargo bench -p libra-tools --bench control -- [--n N]

use std::process::Command;
use std::time::{Duration, Instant};

use libra_engine::engine::Engine;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pcts(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
}

fn main() {
    let n = arg("--n", 300);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let engine = Engine::init(&data, "Bench").expect("init");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let d = data.clone();
    let e = engine.clone();
    rt.spawn(async move { libra_engine::control::serve(e, std::sync::Arc::default(), d).await });
    std::thread::sleep(Duration::from_millis(200));
    let argv = |cmd: &[&str]| -> Vec<String> {
        ["libra", "--data", data.to_str().expect("utf-8 path")].iter().chain(cmd).map(|s| (*s).to_owned()).collect()
    };
    use libra_engine::control::{self, Request};
    for (label, req) in [("id", Request::Id), ("chats", Request::Chats)] {
        let mut t = Vec::with_capacity(n);
        for _ in 0..n {
            let s = Instant::now();
            let stream = control::connect(&data).expect("a running node");
            let reply = control::call(stream, &req).expect("forward");
            assert_eq!(reply.code, 0);
            t.push(s.elapsed());
        }
        let (p50, p99) = pcts(t);
        println!(
            "forwarded `libra {label}` (socket + command, in process): p50 {p50:.3} ms, p99 {p99:.3} ms (target ≤ 5 ms) {}",
            if p50 <= 5.0 { "PASS" } else { "FAIL" }
        );
    }
    let exe = env!("CARGO_BIN_EXE_libra");
    let runs = n.min(100);
    let time = |args: &[String]| {
        let mut t = Vec::with_capacity(runs);
        for _ in 0..runs {
            let s = Instant::now();
            let out = Command::new(exe).args(args).output().expect("run libra");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            t.push(s.elapsed());
        }
        pcts(t)
    };
    let (bare50, _) = time(&["--version".to_owned()]);
    let (p50, p99) = time(&argv(&["id"])[1..]);
    println!(
        "`libra id` as a process beside the running node: p50 {p50:.3} ms, p99 {p99:.3} ms; starting the process alone (`libra --version`): p50 {bare50:.3} ms; forwarding adds {:.3} ms (target ≤ 5 ms) {}",
        p50 - bare50,
        if p50 - bare50 <= 5.0 { "PASS" } else { "FAIL" }
    );
    drop(engine);
}
