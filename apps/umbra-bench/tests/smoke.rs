//! Runs `umbra-bench --smoke` (a few hundred requests against a real node process, about a
//! second) and checks that it measured real work: every store and retrieve answered 200, the
//! retrieves returned the expected messages, the stored messages are all there, and the
//! ceiling and the node's RSS were read.

use std::process::Command;

use serde_json::Value;

/// Runs `umbra-bench` with `args` (which ask for `--json`), which must succeed, and returns its
/// `RESULT` line parsed and as printed.
#[allow(clippy::expect_used)] // A test helper: a failure is the test's failure.
fn run_json(args: &[&str]) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_umbra-bench"))
        .args(args)
        .output()
        .expect("umbra-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "umbra-bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .expect("a RESULT line")
        .to_owned();
    let r: Value = serde_json::from_str(&line).expect("RESULT is JSON");
    (r, line)
}

#[test]
fn smoke_run_reports_real_results() {
    let (r, line) = run_json(&["--smoke", "--json"]);

    assert_eq!(r["store"]["ok"], 400, "{line}");
    assert_eq!(r["store"]["failed"], 0, "{line}");
    assert_eq!(r["retrieve"]["ok"], 400, "{line}");
    assert_eq!(r["retrieve"]["failed"], 0, "{line}");
    assert_eq!(
        r["retrieve"]["messages_returned"], r["retrieve"]["messages_expected"],
        "{line}"
    );
    assert!(
        r["retrieve"]["messages_returned"].as_u64() > Some(0),
        "{line}"
    );
    assert_eq!(r["check"]["missing"], 0, "{line}");
    assert!(r["check"]["found"].as_u64() > Some(0), "{line}");
    assert!(
        r["ceiling"]["verify_per_sec"].as_f64() > Some(100.0),
        "{line}"
    );
    assert!(r["store"]["p99_ms"].as_f64() > Some(0.0), "{line}");
    assert!(r["node_peak_rss_bytes"].as_u64() > Some(1 << 20), "{line}");
}

/// `--catch-up` in a swarm of 3: the last member is down while 400 messages are stored, comes
/// back on its data directory and must end with every one of them, by anti-entropy alone.
#[test]
fn catch_up_smoke_run_brings_the_member_every_message() {
    let (r, line) = run_json(&["--smoke", "--swarm", "3", "--catch-up", "400", "--json"]);
    let c = &r["catch_up"];

    assert_eq!(r["store"]["ok"], 400, "{line}");
    assert_eq!(r["store"]["failed"], 0, "{line}");
    // It had nothing (down before the first store) and ends with all 400, pulled by its
    // own rounds; the store's total equals what was stored, digests match the entry node's.
    assert_eq!(c["held_before"], 0, "{line}");
    assert_eq!(c["held"], 400, "{line}");
    assert_eq!(c["pulled"], 400, "{line}");
    assert_eq!(c["digests_equal"], true, "{line}");
    assert_eq!(c["check_round"]["messages_pulled"], 0, "{line}");
    assert_eq!(c["check_round"]["buckets_differing"], 0, "{line}");
    assert_eq!(r["check"]["missing"], 0, "{line}");
    assert!(r["check"]["found"].as_u64() > Some(0), "{line}");
    // Bytes were counted, and at least the message data came in.
    let payload = c["payload_bytes"].as_u64().expect("payload bytes");
    assert_eq!(payload, 400 * 500, "{line}");
    assert!(
        c["replica_received_bytes"].as_u64() > Some(payload),
        "{line}"
    );
    assert!(c["sent_bytes"].as_u64() > Some(0), "{line}");
    assert!(c["busy_s"].as_f64() > Some(0.0), "{line}");
}
