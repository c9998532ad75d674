#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The desktop app from outside: the real `umbra-desktop` binary in a window on an X server
//! (Xvfb, Mesa's software renderer), on a real devnet, receives a message sent by the CLI.
//!
//! The app reports what it shows with `--status-json` (one JSON line per event) and writes
//! its window as a PNG with `--screenshot PATH`; after it is stopped with SIGTERM, the CLI
//! finds the message in the same profile, so it was stored, not only drawn.
//!
//! Xvfb must be installed (`cargo xtask test` installs it on Debian when run as root;
//! otherwise `apt-get install xvfb`). Its frame buffer lives in the scenario's directory
//! (`-fbdir`), so `cargo xtask integration` finds and stops it even if this test is killed.

mod common;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Devnet, alice_and_bob, build_daemons, build_next_to_umbra, exe, ok, umbra};
use serde_json::Value;

/// What the app may take to open its window and profile, and to show a message.
const WAIT: Duration = Duration::from_secs(180);

/// A child process killed when the test ends, however it ends short of SIGKILL.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines a child prints on stdout, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// An X server on a display it chooses itself (`-displayfd`), so that parallel runs and a
/// desktop session on :0 never collide.
fn start_xvfb(fbdir: &Path) -> (Killed, String) {
    let spawned = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .arg("-fbdir")
        .arg(fbdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot start Xvfb ({e}): install it with `apt-get install xvfb` \
             (`cargo xtask test` does so on Debian when run as root)"
        ),
    };
    let lines = lines_of(&mut child);
    let display = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("Xvfb never said which display it chose");
    let n: u32 = display.trim().parse().expect("Xvfb's display number");
    (Killed(child), format!(":{n}"))
}

/// The next event line of the app that `wanted` accepts, within [`WAIT`].
fn wait_event(
    lines: &mpsc::Receiver<String>,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let start = umbra_clock::Clock::instant(&umbra_clock::SystemClock);
    loop {
        let left = WAIT
            .checked_sub(umbra_clock::Clock::since(&umbra_clock::SystemClock, start))
            .unwrap_or_else(|| panic!("the app never reported {what}"));
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("the app never reported {what} ({e})"));
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON event line ({e}): {line}"));
        if wanted(&v) {
            return v;
        }
    }
}

/// Width and height from a PNG's IHDR chunk, checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() > 33,
        "{} is too short for a PNG",
        path.display()
    );
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Where the screenshot is kept for a reader of the test run (`target/tmp`).
fn screenshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("desktop-xvfb.png")
}

#[test]
fn the_desktop_app_shows_a_message_sent_from_the_cli() {
    build_daemons();
    build_next_to_umbra(&["umbra-desktop"]);
    let desktop = exe().parent().unwrap().join("umbra-desktop");
    let devnet = Devnet::new();
    ok(
        &umbra(
            &[
                "devnet",
                "up",
                "--detach",
                "--nodes",
                "5",
                "--dir",
                devnet.arg(),
            ],
            &[],
            "",
        ),
        "devnet up",
    );
    let network = devnet.path().join("network.json");
    let homes = devnet.root().join("homes");
    let pair = alice_and_bob(&homes, &network);
    let (_xvfb, display) = start_xvfb(devnet.root());

    let shot = screenshot_path();
    let _ = std::fs::remove_file(&shot);
    let mut app = Command::new(&desktop)
        .arg("--profile")
        .arg(&pair.bob.profile)
        .arg("--network")
        .arg(&network)
        .arg("--status-json")
        .arg("--screenshot")
        .arg(&shot)
        .env("DISPLAY", &display)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("UMBRA_PROFILE")
        .env_remove("UMBRA_NETWORK")
        .env_remove("UMBRA_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut app);
    let mut app = Killed(app);

    let ready = wait_event(&lines, "that the profile is open", |v| {
        v["event"] == "ready"
    });
    assert_eq!(ready["session_id"], pair.b_id.as_str());

    let text = "hello from the command line";
    let sent = pair.alice.json(&["send", &pair.b_id, text]);
    assert_eq!(sent["status"], "sent");
    let got = wait_event(&lines, "the message", |v| {
        v["event"] == "message" && v["text"] == text
    });
    assert_eq!(got["from"], pair.a_id.as_str());
    assert_eq!(got["request"], true, "a first message is a request");
    assert_eq!(got["sent_ms"], sent["timestamp"]);

    let taken = wait_event(&lines, "a screenshot", |v| {
        v["event"] == "screenshot" || v["event"] == "screenshot_failed"
    });
    assert_eq!(taken["event"], "screenshot", "{taken}");
    let (w, h) = png_size(&shot);
    assert_eq!(
        (Value::from(w), Value::from(h)),
        (taken["width"].clone(), taken["height"].clone())
    );
    assert!(
        w >= 640 && h >= 420,
        "the window is at least its minimum size: {w}x{h}"
    );
    eprintln!("screenshot of the app: {}", shot.display());

    // SIGTERM quits within seconds; what it showed is in the profile.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(app.0.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM).unwrap();
    let start = umbra_clock::Clock::instant(&umbra_clock::SystemClock);
    while app.0.try_wait().unwrap().is_none() {
        assert!(
            umbra_clock::Clock::since(&umbra_clock::SystemClock, start) < Duration::from_secs(15),
            "SIGTERM did not stop the app"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let requests = pair.bob.json(&["requests"]);
    let stored = requests.as_array().unwrap();
    assert!(
        stored
            .iter()
            .any(|m| m["text"] == text && m["from"] == pair.a_id.as_str()),
        "the app did not store the message: {requests}"
    );
}
