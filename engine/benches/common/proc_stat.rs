//! CPU time from `/proc` (Linux), shared by the benches that print how busy the cores were.

/// CPU seconds (user + system) process `pid` has used, where the OS tells it.
pub fn cpu_of(pid: u32) -> Option<f64> {
    cpu_in(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime of a `stat` file's text, in seconds.
fn cpu_in(stat: &str) -> Option<f64> {
    // Fields after the parenthesised name; utime and stime are the 14th and 15th, in ticks.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / 100.0)
}

/// CPU seconds this process has used.
#[allow(dead_code)] // each bench uses what it needs
pub fn process_cpu() -> Option<f64> {
    cpu_of(std::process::id())
}

/// CPU seconds each live thread of this process has used, by thread id, with its name (`comm`,
/// as the OS truncates it). Threads that ended are not listed; their time is only in
/// [`process_cpu`].
#[allow(dead_code)]
pub fn threads_cpu() -> std::collections::BTreeMap<u32, (String, f64)> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return out };
    for task in dir.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close), Some(cpu)) = (stat.find('('), stat.rfind(')'), cpu_in(&stat)) else { continue };
        out.insert(tid, (stat[open + 1..close].to_string(), cpu));
    }
    out
}

/// CPU seconds the calling thread has used.
#[allow(dead_code)]
pub fn this_thread_cpu() -> Option<f64> {
    cpu_in(&std::fs::read_to_string("/proc/thread-self/stat").ok()?)
}

/// Minor page faults of this process so far: each is a page of memory touched for the first
/// time (on a VM, one the hypervisor may first have to back).
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // minflt is the 10th field, the 8th after the parenthesised name.
    stat[stat.rfind(')')? + 2..].split(' ').nth(7)?.parse().ok()
}

/// Bytes this process has caused to be written to files (page cache included), where the OS
/// tells it: new file data takes fresh pages of the page cache, as the heap's growth does.
fn file_bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok())
}

/// Where the fresh memory counters stood: minor faults, bytes written to files.
pub type FreshMark = (Option<u64>, Option<u64>);

/// The counters now, to measure a span by [`fresh_since`].
#[allow(dead_code)]
pub fn fresh_mark() -> FreshMark {
    (minor_faults(), file_bytes_written())
}

/// Per item since `mark`: fresh heap pages (first touches, minor faults) and bytes of new file
/// data (journal, tables), which takes fresh page-cache pages the same way.
#[allow(dead_code)]
pub fn fresh_since(mark: FreshMark, items: u64) -> Option<(f64, f64)> {
    let faults = minor_faults()?.checked_sub(mark.0?)?;
    let written = file_bytes_written()?.checked_sub(mark.1?)?;
    let per = |x: u64| x as f64 / items.max(1) as f64;
    Some((per(faults), per(written)))
}

/// What touching a fresh 4 KiB page costs on this machine now, in µs: 1024 pages of a new
/// anonymous mapping, one write each. A bare machine zeroes a page in well under a microsecond;
/// a VM whose host backs guest memory lazily (and takes freed pages back) charges far more, and
/// the charge changes from minute to minute.
#[allow(dead_code)]
pub fn fresh_page_cost() -> f64 {
    // Above glibc's largest mmap threshold (32 MiB), so always a new mapping: no page reused.
    const BYTES: usize = 64 << 20;
    const PAGES: usize = 1024;
    let mut block = vec![0u8; BYTES];
    let t = std::time::Instant::now();
    for i in 0..PAGES {
        block[i * 4096] = 1;
    }
    let took = t.elapsed();
    std::hint::black_box(&block);
    took.as_secs_f64() * 1e6 / PAGES as f64
}
