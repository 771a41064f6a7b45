//! CPU time from `/proc` (Linux), shared by the benches that print how busy the cores were.

/// CPU seconds (user + system) process `pid` has used, where the OS tells it.
pub fn cpu_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
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
