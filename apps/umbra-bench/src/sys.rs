//! What the benchmark reads from `/proc`: CPU time and memory of a process, and a description
//! of the machine. Linux only; a missing file gives `None`, never an error, so that the load
//! figures are still printed elsewhere.

use std::collections::BTreeMap;
use std::fs;

/// Clock ticks per second of the `utime`/`stime` fields in `/proc/<pid>/stat`. This is
/// `USER_HZ`, fixed at 100 in the Linux user-space ABI on every architecture we run on.
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds used so far by process `pid` (`"self"` for this one), all
/// threads included.
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after the
    // last ')'. Fields after it start at field 3 (state); utime and stime are fields 14, 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// CPU seconds used so far by the threads of process `pid`, summed by thread name (the
/// kernel's `comm`, at most 15 bytes, e.g. `tokio-runtime-w`, `umbra-store-wri`).
pub(crate) fn threads_cpu_seconds(pid: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.filter_map(Result::ok) {
        let tid = task.file_name().to_string_lossy().into_owned();
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
            continue;
        };
        let name = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map(|(name, _)| name.to_string())
            .unwrap_or_default();
        if let Some(cpu) = cpu_seconds(&format!("{pid}/task/{tid}")) {
            *out.entry(name).or_default() += cpu;
        }
    }
    out
}

/// User + system CPU seconds used so far by the calling thread.
pub(crate) fn thread_cpu_seconds() -> Option<f64> {
    cpu_seconds("thread-self")
}

/// Memory of process `pid` from `/proc/<pid>/status`, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    /// Resident set size now (`VmRSS`).
    pub(crate) rss: u64,
    /// Peak resident set size (`VmHWM`).
    pub(crate) hwm: u64,
}

/// Reads `VmRSS` and `VmHWM` of process `pid`.
pub(crate) fn memory(pid: &str) -> Option<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some(Memory {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
    })
}

/// The machine, for the report.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    /// CPUs this process may run on.
    pub(crate) cpus: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub(crate) cpu_model: String,
    /// The three load averages from `/proc/loadavg`.
    pub(crate) loadavg: String,
    /// `MemTotal` in bytes.
    pub(crate) mem_total: u64,
}

impl Machine {
    /// Reads the machine description now.
    pub(crate) fn read() -> Machine {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let cpu_model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let mem_total = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .map(|kib| kib * 1024)
            .unwrap_or(0);
        Machine {
            cpus,
            cpu_model,
            loadavg: loadavg(),
            mem_total,
        }
    }

    /// Prints the report's first lines: the mode (`"umbra-bench messenger"`, …), this
    /// machine, and a warning when `what` was built without optimisations.
    pub(crate) fn print_header(&self, mode: &str, what: &str) {
        println!("{mode} {}", env!("CARGO_PKG_VERSION"));
        println!(
            "machine: {} CPUs ({}), {:.1} GiB RAM, load average {} at start",
            self.cpus,
            self.cpu_model,
            self.mem_total as f64 / (1024.0 * 1024.0 * 1024.0),
            self.loadavg,
        );
        if cfg!(debug_assertions) {
            println!("WARNING: debug build of {what}; use --release for figures");
        }
    }
}

/// The 1, 5 and 15 minute load averages, e.g. `"4.46 4.28 4.00"`.
pub(crate) fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// Total size of the files under `dir` (recursive), in bytes.
pub(crate) fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        assert!(cpu_seconds("self").is_some());
        assert!(thread_cpu_seconds().is_some());
        assert!(!threads_cpu_seconds("self").is_empty());
        let m = memory("self").unwrap_or_default();
        assert!(m.rss > 0 && m.hwm >= m.rss);
    }
}
