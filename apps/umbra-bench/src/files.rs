//! `umbra-bench files`: one large file from one user to another through 3-hop onion paths on a
//! running network (issue 14), driven through the `umbra` CLI exactly as a person runs it, so
//! the memory measured is the real client's.
//!
//! ```text
//!  ceiling   encrypt(…) of an in-memory file on one thread (key pass + AEAD pass), MB/s
//!  upload    alice: `umbra send BOB --file F --json`, killed (SIGKILL) at --interrupt-at % of
//!            the upload, then the same command again; per run: time per phase from its
//!            progress events, peak RSS (VmHWM polled every 50 ms), and the time from the
//!            second start to its first upload event (resume)
//!  download  bob: `umbra receive` until the file's message is there, `umbra download ID`,
//!            interrupted and resumed the same way; the saved file's SHA-256 must equal the
//!            original's
//!  server    the attachment server's VmHWM before and after (its pid from `devnet status`)
//! ```
//!
//! The file is pseudo-random (no two chunks equal) and written to `--work-dir` first; the
//! downloaded copy goes there too (twice the size in free space is needed).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};
use sha2::Digest as _;
use umbra_attachment_crypto::{Domain, SizeLimit};

use crate::sys::{self, Machine};

const MB: f64 = 1_000_000.0;
const MIB: f64 = 1024.0 * 1024.0;

/// What the file benchmark moves, on which network.
#[derive(Debug, Clone, Args)]
pub(crate) struct FilesArgs {
    /// The network file of a running network with an attachment server (`umbra devnet up
    /// --dir DIR` writes `DIR/network.json`; the server's memory is read through `umbra devnet
    /// status --dir DIR`).
    #[arg(long, env = "UMBRA_NETWORK")]
    pub(crate) network: PathBuf,
    /// File size in MiB.
    #[arg(long, default_value_t = 1024)]
    pub(crate) mib: u64,
    /// Kill each transfer when it reaches this percentage, then run the same command again
    /// (0: no interruption).
    #[arg(long, default_value_t = 50)]
    pub(crate) interrupt_at: u64,
    /// MiB encrypted in memory for the one-core ceiling.
    #[arg(long, default_value_t = 256)]
    pub(crate) ceiling_mib: u64,
    /// The `umbra` binary (default: the one next to this benchmark).
    #[arg(long)]
    pub(crate) umbra: Option<PathBuf>,
    /// Where the file, its downloaded copy and the two profiles go (default: the temporary
    /// directory); removed at the end.
    #[arg(long)]
    pub(crate) work_dir: Option<PathBuf>,
    /// Hang guard of each command, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub(crate) timeout: u64,
    /// Print the summary as one JSON line starting with `RESULT ` as well.
    #[arg(long)]
    pub(crate) json: bool,
}

/// One user of the CLI.
struct User {
    umbra: PathBuf,
    profile: PathBuf,
    network: PathBuf,
}

/// What one run of a transfer command showed.
#[derive(Debug, Default)]
struct Run {
    /// Wall time of the whole command.
    wall: Duration,
    /// Per phase: (first event after start, last event after start, first done, last done).
    phases: Vec<(String, Duration, Duration, u64, u64)>,
    /// Peak RSS of the process.
    hwm: u64,
    /// Whether it was killed at the interruption point.
    killed: bool,
    /// Its standard output (the command's JSON answer when it finished).
    stdout: String,
}

impl Run {
    fn phase(&self, name: &str) -> Option<&(String, Duration, Duration, u64, u64)> {
        self.phases.iter().find(|p| p.0 == name)
    }

    /// MB/s of a phase by its own events (bytes between its first and last event).
    fn rate(&self, name: &str) -> Option<f64> {
        let (_, t0, t1, d0, d1) = self.phase(name)?;
        let secs = t1.saturating_sub(*t0).as_secs_f64();
        (secs > 0.0 && d1 > d0).then(|| (d1 - d0) as f64 / MB / secs)
    }

    fn json(&self) -> Value {
        let phases: Vec<Value> = self
            .phases
            .iter()
            .map(|(n, t0, t1, d0, d1)| {
                json!({"phase": n, "from_s": t0.as_secs_f64(), "to_s": t1.as_secs_f64(),
                       "from_bytes": d0, "to_bytes": d1, "mb_per_s": self.rate(n)})
            })
            .collect();
        json!({"wall_s": self.wall.as_secs_f64(), "peak_rss_mib": self.hwm as f64 / MIB,
               "killed": self.killed, "phases": phases})
    }
}

impl User {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.umbra);
        cmd.args(args)
            .env("UMBRA_PROFILE", &self.profile)
            .env("UMBRA_NETWORK", &self.network)
            .env_remove("UMBRA_PASSPHRASE")
            .stdin(Stdio::null());
        cmd
    }

    /// `umbra ARGS --json`, which must succeed; its answer.
    fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let out = self
            .command(args)
            .arg("--json")
            .output()
            .with_context(|| format!("running umbra {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "umbra {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("umbra {}: not JSON", args.join(" ")))
    }

    /// Runs a transfer command with `--json` progress; kills it once `phase` reaches `kill_at`
    /// percent (if given). Polls its peak RSS meanwhile.
    fn transfer(
        &self,
        args: &[&str],
        phase: &str,
        kill_at: Option<u64>,
        timeout: Duration,
    ) -> anyhow::Result<Run> {
        let start = SystemClock.instant();
        let mut child = self
            .command(args)
            .arg("--json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting umbra {}", args.join(" ")))?;
        let pid = child.id().to_string();
        let hwm = Arc::new(AtomicU64::new(0));
        let running = Arc::new(AtomicBool::new(true));
        let poller = {
            let (hwm, running) = (hwm.clone(), running.clone());
            std::thread::spawn(move || {
                while running.load(Ordering::Relaxed) {
                    if let Some(m) = sys::memory(&pid) {
                        hwm.fetch_max(m.hwm, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let mut stdout = child.stdout.take().context("no stdout")?;
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let stderr = child.stderr.take().context("no stderr")?;
        let mut run = Run::default();
        let mut errors = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                errors.push_str(&line);
                errors.push('\n');
                continue;
            };
            let (Some(p), Some(done), Some(total)) =
                (v["phase"].as_str(), v["done"].as_u64(), v["total"].as_u64())
            else {
                // With --json the CLI reports its error as a JSON object too.
                if let Some(e) = v["error"].as_str() {
                    errors.push_str(e);
                }
                continue;
            };
            let t = SystemClock.since(start);
            match run.phases.iter_mut().find(|x| x.0 == p) {
                Some(x) => (x.2, x.4) = (t, done),
                None => run.phases.push((p.to_owned(), t, t, done, done)),
            }
            if let Some(at) = kill_at
                && p == phase
                && done * 100 >= total * at
                && done < total
            {
                child.kill().context("killing the transfer")?;
                run.killed = true;
                break;
            }
            if SystemClock.since(start) > timeout {
                let _ = child.kill();
                bail!("umbra {} took longer than {timeout:?}", args.join(" "));
            }
        }
        let status = child.wait().context("waiting for umbra")?;
        run.wall = SystemClock.since(start);
        running.store(false, Ordering::Relaxed);
        let _ = poller.join();
        run.hwm = hwm.load(Ordering::Relaxed);
        run.stdout = reader.join().unwrap_or_default();
        if !run.killed && !status.success() {
            bail!("umbra {} failed: {}", args.join(" "), errors.trim());
        }
        Ok(run)
    }
}

/// Writes `mib` MiB of pseudo-random bytes to `path`; returns their SHA-256.
fn write_file(path: &Path, mib: u64) -> anyhow::Result<[u8; 32]> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let mut hash = sha2::Sha256::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        hash.update(&block);
        f.write_all(&block)?;
    }
    f.flush()?;
    Ok(hash.finalize().into())
}

fn sha256_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hash.finalize().into());
        }
        hash.update(&buf[..n]);
    }
}

/// One core encrypting `mib` MiB in memory (the client's whole per-byte crypto: the key pass
/// and the AEAD pass), MB/s.
fn ceiling(mib: u64) -> anyhow::Result<f64> {
    let data = vec![0x5au8; usize::try_from(mib)? << 20];
    let start = SystemClock.instant();
    umbra_attachment_crypto::encrypt(
        &[7; 32],
        Domain::Attachment,
        SizeLimit::Large,
        &mut std::io::Cursor::new(&data),
        &mut std::io::sink(),
    )?;
    Ok(data.len() as f64 / MB / SystemClock.since(start).as_secs_f64())
}

/// The attachment server's pid, from `umbra devnet status` of the network file's directory.
fn server_pid(umbra: &Path, network: &Path) -> anyhow::Result<String> {
    let dir = network
        .parent()
        .context("the network file has no directory")?;
    let out = Command::new(umbra)
        .args(["devnet", "status", "--json", "--dir"])
        .arg(dir)
        .output()
        .context("running umbra devnet status")?;
    let v: Value = serde_json::from_slice(&out.stdout)
        .context("umbra devnet status: not JSON (is the network a devnet?)")?;
    v["attachment_server"]["pid"]
        .as_u64()
        .map(|p| p.to_string())
        .context("the devnet's attachment server is not running")
}

/// Runs the file benchmark; the summary as JSON.
pub(crate) fn run(args: &FilesArgs) -> anyhow::Result<Value> {
    let umbra = match &args.umbra {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("umbra"),
    };
    let network = std::path::absolute(&args.network)?;
    let work = match &args.work_dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let timeout = Duration::from_secs(args.timeout);
    let kill_at = (args.interrupt_at > 0 && args.interrupt_at < 100).then_some(args.interrupt_at);
    let machine = Machine::read();
    let server = server_pid(&umbra, &network)?;
    let server_before = sys::memory(&server).unwrap_or_default();

    let user = |name: &str| User {
        umbra: umbra.clone(),
        profile: work.path().join(name),
        network: network.clone(),
    };
    let (alice, bob) = (user("alice"), user("bob"));
    let a_id = alice.json(&["id", "new", "--name", "alice"])?["session_id"]
        .as_str()
        .context("no session_id")?
        .to_owned();
    let b_id = bob.json(&["id", "new", "--name", "bob"])?["session_id"]
        .as_str()
        .context("no session_id")?
        .to_owned();

    let file = work.path().join("big.bin");
    eprintln!("writing a {} MiB file", args.mib);
    let sent_hash = write_file(&file, args.mib)?;
    let ceiling_mb_s = ceiling(args.ceiling_mib)?;
    eprintln!("ceiling: one core encrypts {ceiling_mb_s:.1} MB/s");

    let file_arg = file.to_str().context("work dir is not UTF-8")?;
    let send = ["send", b_id.as_str(), "--file", file_arg];
    eprintln!("uploading");
    let up1 = alice.transfer(&send, "uploading", kill_at, timeout)?;
    let up2 = if up1.killed {
        eprintln!("upload killed at {} %; resuming", args.interrupt_at);
        Some(alice.transfer(&send, "uploading", None, timeout)?)
    } else {
        None
    };

    eprintln!("waiting for the message");
    let begin = SystemClock.instant();
    let listed = loop {
        bob.json(&["receive", "--wait", "30"])?;
        let list = bob.json(&["attachments", &a_id])?;
        if let Some(f) = list.as_array().and_then(|l| l.first()) {
            break f.clone();
        }
        if SystemClock.since(begin) > timeout {
            bail!("the file's message never arrived");
        }
    };
    let id = listed["message_id"]
        .as_i64()
        .context("no message_id")?
        .to_string();
    let saved = work.path().join("saved.bin");
    let saved_arg = saved.to_str().context("work dir is not UTF-8")?;
    let download = ["download", id.as_str(), "--out", saved_arg];
    eprintln!("downloading");
    let down1 = bob.transfer(&download, "downloading", kill_at, timeout)?;
    let down2 = if down1.killed {
        eprintln!("download killed at {} %; resuming", args.interrupt_at);
        Some(bob.transfer(&download, "downloading", None, timeout)?)
    } else {
        None
    };
    let got_hash = sha256_file(&saved)?;
    if got_hash != sent_hash {
        bail!("the downloaded file differs from the one sent");
    }
    let server_after = sys::memory(&server).unwrap_or_default();

    let resume = |r: &Option<Run>, phase: &str| {
        r.as_ref()
            .and_then(|r| r.phase(phase))
            .map(|p| (p.1.as_secs_f64(), p.3))
    };
    let runs = |a: &Run, b: &Option<Run>| {
        let mut v = vec![a.json()];
        v.extend(b.iter().map(Run::json));
        v
    };
    let peak = |a: &Run, b: &Option<Run>| a.hwm.max(b.as_ref().map_or(0, |r| r.hwm));
    let summary = json!({
        "machine": {"cpus": machine.cpus, "cpu": machine.cpu_model, "loadavg_end": sys::loadavg()},
        "file_mib": args.mib,
        "ceiling_encrypt_mb_per_s": ceiling_mb_s,
        "upload": runs(&up1, &up2),
        "download": runs(&down1, &down2),
        "upload_resume": resume(&up2, "uploading").map(|(s, from)| json!({"first_event_s": s, "from_bytes": from})),
        "download_resume": resume(&down2, "downloading").map(|(s, from)| json!({"first_event_s": s, "from_bytes": from})),
        "client_peak_rss_mib": {"upload": peak(&up1, &up2) as f64 / MIB, "download": peak(&down1, &down2) as f64 / MIB},
        "server_peak_rss_mib": {"before": server_before.hwm as f64 / MIB, "after": server_after.hwm as f64 / MIB},
        "sha256_equal": true,
    });
    print_summary(&summary);
    Ok(summary)
}

fn print_summary(s: &Value) {
    println!("file: {} MiB, SHA-256 equal after download", s["file_mib"]);
    println!(
        "ceiling: one core encrypts {:.1} MB/s",
        s["ceiling_encrypt_mb_per_s"].as_f64().unwrap_or(0.0)
    );
    for what in ["upload", "download"] {
        for (i, r) in s[what].as_array().into_iter().flatten().enumerate() {
            let phases: Vec<String> = r["phases"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{} {:.1}–{:.1} s {:.1} MB/s",
                        p["phase"].as_str().unwrap_or("?"),
                        p["from_s"].as_f64().unwrap_or(0.0),
                        p["to_s"].as_f64().unwrap_or(0.0),
                        p["mb_per_s"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect();
            println!(
                "{what} run {}: {:.1} s{}, peak RSS {:.1} MiB; {}",
                i + 1,
                r["wall_s"].as_f64().unwrap_or(0.0),
                if r["killed"] == true { " (killed)" } else { "" },
                r["peak_rss_mib"].as_f64().unwrap_or(0.0),
                phases.join(", ")
            );
        }
    }
    println!("upload resume: {}", s["upload_resume"]);
    println!("download resume: {}", s["download_resume"]);
    println!(
        "attachment server VmHWM: {:.1} MiB before, {:.1} MiB after",
        s["server_peak_rss_mib"]["before"].as_f64().unwrap_or(0.0),
        s["server_peak_rss_mib"]["after"].as_f64().unwrap_or(0.0)
    );
}
