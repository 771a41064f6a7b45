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

/// CPU seconds each live thread of this process has used, summed by thread name (`comm`, as the
/// OS truncates it). Threads that ended are not listed; their time is only in [`process_cpu`].
#[allow(dead_code)]
pub fn threads_cpu() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return out };
    for task in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close), Some(cpu)) = (stat.find('('), stat.rfind(')'), cpu_in(&stat)) else { continue };
        *out.entry(stat[open + 1..close].to_string()).or_insert(0.0) += cpu;
    }
    out
}

/// CPU seconds the calling thread has used.
#[allow(dead_code)]
pub fn this_thread_cpu() -> Option<f64> {
    cpu_in(&std::fs::read_to_string("/proc/thread-self/stat").ok()?)
}
