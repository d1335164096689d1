//! Resource usage of this process, for `GetSystemStats`, read from /proc.
//!
//! CPU is reported as a percentage of one core over the interval since the
//! previous call (the first call covers the time since start-up), which is
//! what a dashboard polling the worker wants.

use std::time::Instant;

/// CPU time consumed by this process (user + system), in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may contain spaces:
    // fields are counted from the last ')'. utime and stime are fields 14, 15.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_second())
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 {
        n as f64
    } else {
        100.0
    }
}

/// Resident set size in bytes (second field of /proc/self/statm, in pages).
pub fn rss_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = if page > 0 { page as u64 } else { 4096 };
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_ascii_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

/// Measures CPU usage between successive calls.
pub struct CpuMeter {
    last_cpu: f64,
    last_at: Instant,
}

impl CpuMeter {
    pub fn new() -> CpuMeter {
        CpuMeter {
            last_cpu: cpu_seconds().unwrap_or(0.0),
            last_at: Instant::now(),
        }
    }

    /// Percent of one core used since the previous call (can exceed 100 on
    /// several cores); 0 when /proc is unreadable.
    pub fn percent(&mut self) -> f64 {
        let Some(cpu) = cpu_seconds() else { return 0.0 };
        let now = Instant::now();
        let wall = now.duration_since(self.last_at).as_secs_f64();
        let used = cpu - self.last_cpu;
        self.last_cpu = cpu;
        self.last_at = now;
        if wall > 0.0 {
            (used / wall * 100.0).max(0.0)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(
            rss_bytes() > 1024 * 1024,
            "RSS of a test process is over 1 MiB"
        );
        let mut meter = CpuMeter::new();
        // Burn 50 ms of CPU (however long that takes on a busy machine).
        let start = cpu_seconds().unwrap();
        let t0 = Instant::now();
        let mut x = 0u64;
        while cpu_seconds().unwrap() - start < 0.05 && t0.elapsed().as_secs() < 10 {
            for _ in 0..10_000 {
                x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(7));
            }
        }
        std::hint::black_box(x);
        let p = meter.percent();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!(
            p > 0.0 && p <= cores * 100.0 + 20.0,
            "busy loop measured at {p}%"
        );
    }
}
