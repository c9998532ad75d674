//! Helpers shared by the devnet end-to-end tests: the `umbra` binary under test, a child
//! process under a hang guard, building the daemons next to it, and a devnet that is torn
//! down however its test ends.
// Every test file uses a different part of these.
#![allow(dead_code)]

pub(crate) mod storage;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use serde_json::Value;

/// Hang guard of one client command.
pub(crate) const GUARD: Duration = Duration::from_secs(240);

/// Hang guard of building the daemons.
const BUILD_GUARD: Duration = Duration::from_secs(1800);

/// The `umbra` binary under test.
pub(crate) fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_umbra"))
}

/// Waits for `child`, killing it and failing the test if it runs longer than `guard`.
pub(crate) fn finish(mut child: Child, guard: Duration, what: &str) -> Output {
    let start = SystemClock.instant();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if SystemClock.since(start) > guard {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} hung for {guard:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Builds umbra-node, umbra-registry and umbra-attachments next to the `umbra` binary under
/// test.
pub(crate) fn build_daemons() {
    build_next_to_umbra(&["umbra-node", "umbra-registry", "umbra-attachments"]);
}

/// Set by `cargo xtask test` (and CI): the workspace build nextest just made holds every
/// binary, built with the workspace's features.
const PREBUILT_ENV: &str = "UMBRA_WORKSPACE_BINS_BUILT";

/// Builds other packages' binaries next to the `umbra` binary under test, in its profile
/// (a no-op when they are up to date).
///
/// Under `cargo xtask test` the binaries are already there and the build is skipped: a
/// `cargo build -p …` resolves features differently from nextest's `--workspace` build, so on
/// a clean target directory it would rebuild dependencies for minutes.
pub(crate) fn build_next_to_umbra(packages: &[&str]) {
    let bin_dir = exe().parent().unwrap().to_path_buf();
    if std::env::var_os(PREBUILT_ENV).is_some()
        && packages.iter().all(|p| {
            bin_dir
                .join(format!("{p}{}", std::env::consts::EXE_SUFFIX))
                .is_file()
        })
    {
        return;
    }
    let profile = bin_dir.file_name().unwrap().to_str().unwrap().to_owned();
    let target = bin_dir.parent().unwrap().to_path_buf();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).arg("build");
    for p in packages {
        cmd.args(["-p", p]);
    }
    cmd.arg("--target-dir").arg(&target);
    if profile == "release" {
        cmd.arg("--release");
    } else if profile != "debug" {
        cmd.args(["--profile", &profile]);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let what = format!("building {}", packages.join(", "));
    let out = finish(child, BUILD_GUARD, &what);
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `umbra ARGS` with `stdin`, the environment cleared of every `UMBRA_*` variable the CLI
/// reads but for `env`, under the [`GUARD`].
pub(crate) fn umbra(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = Command::new(exe());
    cmd.args(args)
        .env_remove("UMBRA_PROFILE")
        .env_remove("UMBRA_NETWORK")
        .env_remove("UMBRA_PASSPHRASE")
        .env_remove("UMBRA_DEVNET_DIR")
        .env_remove("UMBRA_TEST_CRASH")
        .env_remove("UMBRA_DEVNET_INACTIVE_AFTER_MS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    finish(child, GUARD, &format!("umbra {}", args.join(" ")))
}

/// The standard output of a command that must have succeeded.
pub(crate) fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The standard output of a command that must have succeeded, as JSON.
pub(crate) fn json(out: &Output, what: &str) -> Value {
    let s = ok(out, what);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {s}"))
}

/// One user of the client commands: a profile directory and the network file.
pub(crate) struct User {
    pub(crate) profile: PathBuf,
    pub(crate) network: PathBuf,
}

impl User {
    /// `umbra ARGS` as this user, with more environment variables.
    pub(crate) fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
        let mut all = vec![
            ("UMBRA_PROFILE", self.profile.to_str().unwrap()),
            ("UMBRA_NETWORK", self.network.to_str().unwrap()),
        ];
        all.extend_from_slice(env);
        umbra(args, &all, stdin)
    }

    /// `umbra ARGS` as this user.
    pub(crate) fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(args, &[], stdin)
    }

    /// `umbra ARGS --json` as this user, which must succeed.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        json(&self.run(&all, ""), &args.join(" "))
    }
}

/// Two new identities, alice and bob, with profiles under `homes`.
pub(crate) struct Pair {
    pub(crate) alice: User,
    pub(crate) bob: User,
    pub(crate) a_id: String,
    pub(crate) b_id: String,
    /// alice's recovery phrase.
    pub(crate) phrase: String,
}

/// A user whose profile is `homes/name`.
pub(crate) fn user(homes: &Path, network: &Path, name: &str) -> User {
    User {
        profile: homes.join(name),
        network: network.to_path_buf(),
    }
}

/// Creates alice and bob (`umbra id new --name …`).
pub(crate) fn alice_and_bob(homes: &Path, network: &Path) -> Pair {
    let (alice, bob) = (user(homes, network, "alice"), user(homes, network, "bob"));
    let a = alice.json(&["id", "new", "--name", "alice"]);
    let phrase = a["recovery_phrase"].as_str().unwrap().to_owned();
    let a_id = a["session_id"].as_str().unwrap().to_owned();
    let b_id = bob.json(&["id", "new", "--name", "bob"])["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    Pair {
        alice,
        bob,
        a_id,
        b_id,
        phrase,
    }
}

/// Runs `umbra devnet ARGS`, the nodes logging their onion requests at debug level (the
/// scenarios that observe the network from outside read those logs).
pub(crate) fn logged_devnet(args: &[&str]) -> Output {
    let child = Command::new(exe())
        .arg("devnet")
        .args(args)
        .env_remove("UMBRA_DEVNET_DIR")
        .env("UMBRA_DEVNET_NODE_LOG", "info,umbra_node=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, GUARD, &format!("umbra devnet {}", args.join(" ")))
}

/// Builds the daemons and starts a detached devnet of `nodes` nodes; returns it (torn down
/// when dropped) and its network file.
pub(crate) fn devnet_up(nodes: &str) -> (Devnet, PathBuf) {
    build_daemons();
    let devnet = Devnet::new();
    start_detached(&devnet, nodes, &[]);
    let network = devnet.path().join("network.json");
    (devnet, network)
}

/// `umbra devnet up --detach --nodes NODES EXTRA… --dir DIR` for `devnet`, which must succeed
/// (the daemons must be built).
pub(crate) fn start_detached(devnet: &Devnet, nodes: &str, extra: &[&str]) {
    let mut args = vec!["devnet", "up", "--detach", "--nodes", nodes];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--dir", devnet.arg()]);
    ok(&umbra(&args, &[], ""), "devnet up");
}

/// Set by `cargo xtask integration`: keep the devnet directories (it removes them itself).
pub(crate) const KEEP_ENV: &str = "UMBRA_KEEP_DEVNET_DIRS";

/// A devnet directory whose processes are stopped when the test ends, however it ends: by
/// returning, by a panic, or killed (SIGKILL from nextest's `terminate-after`, Ctrl-C), when
/// no drop guard of the test process runs. See [`TeardownGuard`].
pub(crate) struct Devnet {
    dir: PathBuf,
    guard: TeardownGuard,
    // Declared last: removed after the guard has stopped everything.
    root: tempfile::TempDir,
}

impl Devnet {
    /// A new, empty devnet directory (in the temporary directory: `TMPDIR`, which
    /// `cargo xtask integration` points at the scenario's own directory) and its guard. With
    /// [`KEEP_ENV`] set the directory is kept, for the harness to check the devnet's ports
    /// and to show its logs.
    pub(crate) fn new() -> Devnet {
        let root = tempfile::Builder::new()
            .prefix("umbra-devnet-")
            .disable_cleanup(std::env::var_os(KEEP_ENV).is_some())
            .tempdir()
            .unwrap();
        let dir = root.path().join("net");
        let guard = TeardownGuard::start(&dir, &root.path().join("teardown.log"));
        Devnet { dir, guard, root }
    }

    /// The devnet directory.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// The devnet directory as a command-line argument.
    pub(crate) fn arg(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// The directory that holds the devnet directory and the guard's log.
    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    /// `umbra devnet status --json` of this devnet (it asks the registry: not while the
    /// registry is away).
    pub(crate) fn status(&self) -> Value {
        json(
            &umbra(
                &["devnet", "status", "--json", "--dir", self.arg()],
                &[],
                "",
            ),
            "devnet status",
        )
    }

    /// The process id of the guard.
    pub(crate) fn guard_pid(&self) -> u32 {
        self.guard.child.id()
    }
}

/// `umbra devnet down --after-stdin-closes --dir DIR`, started in its own process group with a
/// pipe from this process as its standard input. The pipe's only writing end is in this process
/// (Rust opens pipes close-on-exec, so no other child inherits it), so the pipe closes when this
/// process ends, whatever ends it, or when the guard is dropped; the guard then stops every
/// process of the devnet. Its own process group keeps it out of the signals a test runner or a
/// terminal sends to the test's group.
pub(crate) struct TeardownGuard {
    child: Child,
    log: PathBuf,
}

impl TeardownGuard {
    /// Starts the guard of the devnet in `dir` (which need not exist yet), logging to `log`.
    pub(crate) fn start(dir: &Path, log: &Path) -> TeardownGuard {
        use std::os::unix::process::CommandExt as _;

        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(exe())
            .args([
                "devnet",
                "down",
                "--after-stdin-closes",
                "--grace",
                "5",
                "--dir",
            ])
            .arg(dir)
            .env_remove("UMBRA_DEVNET_DIR")
            .stdin(Stdio::piped())
            // A file, not this process's output: the test runner waits for its pipes to close.
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap();
        TeardownGuard {
            child,
            log: log.to_path_buf(),
        }
    }
}

impl Drop for TeardownGuard {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let start = SystemClock.instant();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if SystemClock.since(start) < GUARD => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        // No panic here: this may run while a failed test unwinds.
        if !status.is_some_and(|s| s.success()) {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("the devnet teardown failed ({status:?}): {log}");
        }
    }
}
