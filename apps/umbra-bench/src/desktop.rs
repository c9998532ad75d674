//! `umbra-bench desktop`: the desktop app's figures (issue 13) on a running devnet, with the
//! real `umbra-desktop` binary in a real window (under Xvfb on a machine without a screen).
//!
//! ```text
//!  fill        bob writes alice (she accepts), then sends N messages (several in flight);
//!              alice's messenger receives them all into her profile, then closes it
//!  cold start  umbra-desktop on alice's profile: process start → its `ready` event (the main
//!              screen with the conversation list drawn)
//!  latency     bob sends K messages one after another; latency = the app's `message` event
//!              line read − bob's send_text called
//!  quit        SIGTERM → the process has exited
//!  scroll      umbra-desktop --bench-scroll: the conversation repainted without moving (the
//!              renderer's floor), then scrolled by the mouse wheel to its first message and
//!              back; frame intervals and egui's layout time, RSS
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use umbra_clock::{Clock as _, SystemClock};
use umbra_crypto::SessionId;
use umbra_messenger::{MessageStatus, Messenger, Profile};

use crate::dist::{dist_json, dist_line};
use crate::messenger::{client, connect, ready, wait_for};
use crate::network::Network;
use crate::sys::{self, Machine};

/// What the desktop benchmark measures, against which network.
#[derive(Debug, Clone, Args)]
pub(crate) struct DesktopArgs {
    /// The network file of a running devnet.
    #[arg(long, env = "UMBRA_NETWORK")]
    network: PathBuf,
    /// Messages in the conversation the app scrolls.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Messages whose delivery into the app is timed.
    #[arg(long, default_value_t = 20)]
    latency: usize,
    /// Sends in flight while filling.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// The app's binary [default: `umbra-desktop` beside this one].
    #[arg(long)]
    app: Option<PathBuf>,
    /// Longest wait for any one step, seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Keep the profiles in DIR, and reuse them when they are there (no fill: the app's
    /// figures can be measured again on the same conversation).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print a final `RESULT {json}` line.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Runs the desktop benchmark; prints the report and returns its JSON summary.
pub(crate) async fn run(args: &DesktopArgs) -> anyhow::Result<Value> {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        bail!("no display: run it under X, e.g. `Xvfb :99 & DISPLAY=:99 umbra-bench desktop …`");
    }
    let app = match &args.app {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("finding this binary")?
            .with_file_name("umbra-desktop"),
    };
    if !app.is_file() {
        bail!(
            "{} does not exist: build it (`cargo build --release -p umbra-desktop`) or pass --app PATH",
            app.display()
        );
    }
    let net = Network::load(&args.network)?;
    let machine = Machine::read();
    machine.print_header("umbra-bench desktop", "umbra-desktop");
    let timeout = Duration::from_secs(args.timeout);
    let tmp = tempfile::Builder::new()
        .prefix("umbra-bench-desktop-")
        .tempdir()
        .context("creating the temporary profiles")?;
    let base = args.dir.as_deref().unwrap_or(tmp.path());
    let mut summary = serde_json::Map::new();
    summary.insert(
        "machine".into(),
        json!({"cpus": machine.cpus, "cpu_model": machine.cpu_model, "loadavg_start": machine.loadavg}),
    );

    let reuse = Profile::exists(&base.join("alice")) && Profile::exists(&base.join("bob"));
    let (alice, bob) = if reuse {
        let open = |name: &str| {
            Profile::open(&base.join(name), None)
                .with_context(|| format!("opening the kept profile of {name}"))
                .and_then(|p| connect(p, &net))
        };
        (open("alice")?, open("bob")?)
    } else {
        (client(base, "alice", &net)?.0, client(base, "bob", &net)?.0)
    };
    ready(&alice, &net).await?;
    ready(&bob, &net).await?;
    let (a, b) = (alice.messenger.session_id(), bob.messenger.session_id());
    if reuse {
        let n = alice.messenger.history(&b)?.len();
        println!("fill: kept profiles in {}, {n} messages", base.display());
        summary.insert("fill".into(), json!({"messages": n, "kept": true}));
    } else {
        let hello = bob.messenger.send_text(&a, "hello alice").await?;
        wait_for(&alice.messenger, &b, hello.sent_ms, timeout).await?;
        alice.messenger.accept_request(&b).await?;
        summary.insert(
            "fill".into(),
            fill(args, &bob.messenger, &alice.messenger, a, b, timeout).await?,
        );
    }
    drop(alice);

    let profile = base.join("alice");
    let mut run = App::start(&app, &profile, &net.path, &["--status-json"])?;
    let t0 = SystemClock.instant();
    run.until("a `ready` event", timeout, |v| v["event"] == "ready")
        .await?;
    let cold = SystemClock.since(t0);
    println!(
        "cold start: {:.0} ms from process start to the main screen with the conversation list",
        cold.as_secs_f64() * 1e3
    );
    summary.insert("cold_start_ms".into(), json!(cold.as_secs_f64() * 1e3));

    let mut lat = Vec::with_capacity(args.latency);
    for i in 0..args.latency {
        let t = SystemClock.instant();
        let sent = bob
            .messenger
            .send_text(&a, &format!("latency {}", i + 1))
            .await?;
        if sent.status != MessageStatus::Sent {
            bail!("latency message {} was not delivered at once", i + 1);
        }
        run.until("the message in the app", timeout, |v| {
            v["event"] == "message" && v["sent_ms"] == sent.sent_ms
        })
        .await?;
        lat.push(SystemClock.since(t));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    lat.sort();
    if !lat.is_empty() {
        println!(
            "delivery into the app ({} messages, bob's send_text called → the app shows it): {}",
            lat.len(),
            dist_line(&lat)
        );
        summary.insert("latency".into(), dist_json(&lat));
    }
    let quit = run.terminate(timeout).await?;
    println!(
        "quit: SIGTERM → exited in {:.0} ms",
        quit.as_secs_f64() * 1e3
    );
    summary.insert("quit_ms".into(), json!(quit.as_secs_f64() * 1e3));

    let mut scroll = App::start(&app, &profile, &net.path, &["--bench-scroll"])?;
    let result = scroll
        .until("the scroll benchmark's line", timeout, |v| {
            v["event"] == "bench_scroll"
        })
        .await?;
    let _ = scroll.terminate(Duration::from_secs(10)).await;
    println!(
        "scroll: {} messages, {} frames (complete: {}); frame interval {} (not scrolling: {}); egui layout {}; RSS {} KiB (peak {} KiB)",
        result["messages"],
        result["frames"],
        result["complete"],
        result["frame_ms"],
        result["still_frame_ms"],
        result["layout_ms"],
        result["rss_kib"],
        result["hwm_kib"],
    );
    summary.insert("scroll".into(), result);
    let load = sys::loadavg();
    println!("load average at the end: {load}");
    summary.insert("loadavg_end".into(), json!(load));
    Ok(Value::Object(summary))
}

/// Bob sends `args.messages` to alice, `in_flight` at a time; alice receives them all.
async fn fill(
    args: &DesktopArgs,
    bob: &std::sync::Arc<Messenger>,
    alice: &Messenger,
    a: SessionId,
    b: SessionId,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let n = args.messages;
    let k = args.in_flight.clamp(1, n.max(1));
    let t0 = SystemClock.instant();
    let mut tasks = Vec::with_capacity(k);
    for i in 0..k {
        let share = n / k + usize::from(i < n % k);
        let m = bob.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..share {
                // Lines of different lengths, as a conversation has.
                let text = format!("message {j} of sender {i}: {}", "words ".repeat(j % 40));
                m.send_text(&a, text.trim_end()).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| anyhow!("a sending task failed: {e}"))??;
    }
    let deadline = SystemClock.instant() + timeout;
    while !bob.outbox()?.is_empty() && SystemClock.instant() < deadline {
        bob.flush_outbox().await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent = SystemClock.since(t0);
    let t1 = SystemClock.instant();
    let want = n + 1;
    let mut have = alice.history(&b)?.len();
    while have < want {
        if SystemClock.instant() > deadline {
            bail!("alice received {have} of {want} messages in time (raise --timeout)");
        }
        alice.receive().await?;
        have = alice.history(&b)?.len();
    }
    let received = SystemClock.since(t1);
    println!(
        "fill: bob sent {n} messages in {:.1} s ({k} in flight); alice received them in {:.1} s",
        sent.as_secs_f64(),
        received.as_secs_f64()
    );
    Ok(json!({"messages": n, "send_s": sent.as_secs_f64(), "receive_s": received.as_secs_f64()}))
}

/// A running `umbra-desktop` and its stdout's event lines.
struct App {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl App {
    fn start(app: &Path, profile: &Path, network: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(app)
            .arg("--profile")
            .arg(profile)
            .arg("--network")
            .arg(network)
            .args(extra)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", app.display()))?;
        let stdout = child.stdout.take().context("the app's stdout")?;
        Ok(Self {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// Reads event lines until one satisfies `found`.
    async fn until(
        &mut self,
        what: &str,
        timeout: Duration,
        found: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let read = async {
            while let Some(line) = self.lines.next_line().await? {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && found(&v)
                {
                    return Ok(v);
                }
            }
            bail!("the app exited before {what}")
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| anyhow!("no {what} within {} s", timeout.as_secs()))?
    }

    /// SIGTERM, then how long the app took to exit.
    async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let t = SystemClock.instant();
        if let Some(pid) = self.child.id() {
            let pid = i32::try_from(pid).context("the app's pid")?;
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .map_err(|_| {
                anyhow!(
                    "the app did not exit within {} s of SIGTERM",
                    timeout.as_secs()
                )
            })?
            .context("waiting for the app")?;
        Ok(SystemClock.since(t))
    }
}
