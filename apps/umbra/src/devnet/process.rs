//! Daemon processes: starting them detached from the terminal, telling whether one still runs,
//! and stopping them (SIGTERM, a grace period, then SIGKILL).
//!
//! A process is remembered as a [`ProcRef`]: its pid and, on Linux, its start time from
//! `/proc/PID/stat`, so that a pid reused by an unrelated program after a reboot or a crash is
//! never taken for ours (and never signalled).

use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// Environment variables of the daemons that this CLI sets by flag or file; removed from the
/// children's environment so that a user's own settings cannot pull a devnet node elsewhere.
const SCRUBBED_ENV: &[&str] = &[
    "UMBRA_NODE_CONFIG",
    "UMBRA_REGISTRY_LISTEN",
    "UMBRA_REGISTRY_DIR",
    "RUST_LOG",
];

/// A process this CLI started (or is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcRef {
    /// Process id.
    pub(crate) pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22), where known.
    pub(crate) started: Option<u64>,
}

impl ProcRef {
    /// The process with this pid as it is now.
    pub(crate) fn of(pid: u32) -> ProcRef {
        ProcRef {
            pid,
            started: read_stat(pid).map(|s| s.started),
        }
    }

    /// This very process.
    pub(crate) fn me() -> ProcRef {
        ProcRef::of(std::process::id())
    }

    /// Whether the process still runs (a zombie does not; a different process that got the
    /// same pid does not either).
    pub(crate) fn is_running(&self) -> bool {
        let Ok(raw) = i32::try_from(self.pid) else {
            return false;
        };
        if has_proc() {
            return match read_stat(self.pid) {
                None => false,
                Some(s) => {
                    !matches!(s.state, 'Z' | 'X' | 'x')
                        && (self.started.is_none() || self.started == Some(s.started))
                }
            };
        }
        kill(Pid::from_raw(raw), None).is_ok()
    }

    /// Sends `sig` if the process still runs. Returns whether it was sent.
    pub(crate) fn signal(&self, sig: Signal) -> bool {
        if !self.is_running() {
            return false;
        }
        let Ok(raw) = i32::try_from(self.pid) else {
            return false;
        };
        kill(Pid::from_raw(raw), sig).is_ok()
    }
}

/// What `/proc/PID/stat` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: char,
    started: u64,
}

fn has_proc() -> bool {
    Path::new("/proc/self/stat").exists()
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses `pid (comm) state … starttime …`; `comm` may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' come fields 3 (state) onwards; field 22 (starttime) is at index 19.
    let state = fields.first()?.chars().next()?;
    let started = fields.get(19)?.parse().ok()?;
    Some(Stat { state, started })
}

/// Running processes named one of `names` (the file name of their program) whose command line
/// names a path inside `dir`: found through `/proc`, so that a daemon whose start was never
/// recorded in `devnet.json` (its `umbra devnet` killed right after spawning it) can still be
/// stopped. Empty where there is no `/proc`.
pub(crate) fn running_under(dir: &Path, names: &[&str]) -> Vec<ProcRef> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|raw| command_matches(&raw, dir, names))
        })
        .map(ProcRef::of)
        .filter(ProcRef::is_running)
        .collect()
}

/// Whether a NUL-separated command line runs one of `names` on a path inside `dir`.
fn command_matches(raw: &[u8], dir: &Path, names: &[&str]) -> bool {
    use std::os::unix::ffi::OsStrExt as _;

    let mut args = raw
        .split(|b| *b == 0)
        .map(|a| Path::new(std::ffi::OsStr::from_bytes(a)));
    let program = args.next().and_then(Path::file_name);
    program.is_some_and(|p| names.iter().any(|n| p == *n)) && args.any(|a| a.starts_with(dir))
}

/// Starts `bin args…` in its own process group with stdin closed and stdout/stderr appended to
/// `log`. The child outlives this CLI and does not receive the terminal's Ctrl-C.
pub(crate) fn spawn_daemon(bin: &Path, args: &[OsString], log: &Path) -> anyhow::Result<Child> {
    use std::io::Write as _;
    use std::os::unix::process::CommandExt as _;

    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening the log {}", log.display()))?;
    let when = SystemClock.now_ms() / 1000;
    writeln!(
        out,
        "--- umbra devnet: starting {} (unix time {when})",
        bin.display()
    )
    .with_context(|| format!("writing the log {}", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("opening the log {}", log.display()))?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        // Plain logs: no colour codes in files.
        .env("NO_COLOR", "1");
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// Stops every running process of `procs`: SIGTERM to all, up to `grace` for them to exit,
/// then SIGKILL to the rest and a short wait. Returns those still running after all that
/// (normally none).
pub(crate) async fn stop_all(procs: &[ProcRef], grace: Duration) -> Vec<ProcRef> {
    let running: Vec<ProcRef> = procs.iter().copied().filter(ProcRef::is_running).collect();
    for p in &running {
        p.signal(Signal::SIGTERM);
    }
    if wait_gone(&running, grace).await {
        return Vec::new();
    }
    for p in &running {
        p.signal(Signal::SIGKILL);
    }
    wait_gone(&running, Duration::from_secs(5)).await;
    running.into_iter().filter(ProcRef::is_running).collect()
}

/// Waits until none of `procs` runs, or `limit` passes. Returns whether all are gone.
pub(crate) async fn wait_gone(procs: &[ProcRef], limit: Duration) -> bool {
    let deadline = SystemClock.instant() + limit;
    loop {
        if !procs.iter().any(ProcRef::is_running) {
            return true;
        }
        if SystemClock.instant() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_parsed_past_odd_command_names() {
        let line = "4242 (umbra (x) y) S 1 4242 4242 0 -1 4194560 123 0 0 0 1 2 0 0 20 0 3 0 987654 1000 200";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.started, 987_654);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn this_process_runs_and_a_reused_pid_does_not_count() {
        let me = ProcRef::me();
        assert!(me.is_running());
        if me.started.is_some() {
            let impostor = ProcRef {
                pid: me.pid,
                started: me.started.map(|t| t + 1),
            };
            assert!(!impostor.is_running());
        }
    }

    #[test]
    fn a_daemon_is_matched_by_its_name_and_a_path_inside_the_directory() {
        let dir = Path::new("/tmp/net");
        let names = ["umbra-node", "umbra-registry"];
        let cmd = |s: &str| s.replace(' ', "\0").into_bytes();
        let node = cmd("/x/umbra-node --config /tmp/net/nodes/node-01/node.toml");
        assert!(command_matches(&node, dir, &names));
        assert!(!command_matches(&node, Path::new("/tmp/ne"), &names));
        assert!(!command_matches(
            &cmd("/x/umbra devnet down --dir /tmp/net"),
            dir,
            &names
        ));
        assert!(!command_matches(
            &cmd("/x/umbra-node --config /tmp/other"),
            dir,
            &names
        ));
        assert!(!command_matches(b"", dir, &names));
    }

    #[tokio::test]
    async fn a_running_daemon_is_found_under_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("nodes").join("node-01");
        let args = ["-c".into(), "sleep 30; :".into(), marker.into()];
        let mut child =
            spawn_daemon(Path::new("/bin/sh"), &args, &dir.path().join("sh.log")).unwrap();
        let p = ProcRef::of(child.id());
        // Until the child has exec'd, /proc shows the test binary's command line: wait for the
        // exec (up to 10 s on a loaded machine) rather than assume it is done.
        let mut found = running_under(dir.path(), &["sh"]);
        for _ in 0..500 {
            if found.contains(&p) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            found = running_under(dir.path(), &["sh"]);
        }
        assert!(found.contains(&p), "{found:?}");
        assert!(running_under(dir.path(), &["umbra-node"]).is_empty());
        assert!(stop_all(&[p], Duration::from_secs(5)).await.is_empty());
        child.wait().unwrap();
        assert!(!running_under(dir.path(), &["sh"]).contains(&p));
    }

    #[tokio::test]
    async fn stop_all_ends_a_child_and_sees_it_gone() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let mut child = spawn_daemon(Path::new("/bin/sleep"), &["30".into()], &log).unwrap();
        let p = ProcRef::of(child.id());
        assert!(p.is_running());
        // The child is ours, so it turns into a zombie until waited for: is_running must not
        // count a zombie.
        let left = stop_all(&[p], Duration::from_secs(5)).await;
        assert!(left.is_empty());
        assert!(!p.is_running());
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(
            std::fs::read_to_string(&log)
                .unwrap()
                .contains("umbra devnet: starting")
        );
    }
}
