//! Runs `umbra-bench --smoke` (a few hundred requests against a real node process, about a
//! second) and checks that it measured real work: every store and retrieve answered 200, the
//! retrieves returned the expected messages, the stored messages are all there, and the
//! ceiling and the node's RSS were read.

use std::process::Command;

use serde_json::Value;

#[test]
fn smoke_run_reports_real_results() {
    let out = Command::new(env!("CARGO_BIN_EXE_umbra-bench"))
        .args(["--smoke", "--json"])
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
        .expect("a RESULT line");
    let r: Value = serde_json::from_str(line).expect("RESULT is JSON");

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
