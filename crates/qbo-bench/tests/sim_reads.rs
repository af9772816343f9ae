//! Smoke test of `qbo-bench sim-reads`: a one-second run completes, reads without errors and
//! prints its JSON summary (the figure itself is measured in release builds, not here).

use std::process::Command;

#[test]
fn a_short_run_prints_a_summary_without_errors() {
    let output = Command::new(env!("CARGO_BIN_EXE_qbo-bench"))
        .args(["sim-reads", "--seconds", "1", "--concurrency", "2"])
        .output()
        .expect("qbo-bench runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a JSON line")).expect("JSON summary");
    assert_eq!(summary["benchmark"], "sim-reads");
    assert!(summary["requests"].as_u64().unwrap_or(0) > 0, "{summary}");
    assert_eq!(summary["errors"], 0);
    assert!(
        summary["p99_ms"]
            .as_f64()
            .is_some_and(|p| p >= summary["p50_ms"].as_f64().unwrap_or(0.0))
    );
}

#[test]
fn refuses_unbounded_runs() {
    let output = Command::new(env!("CARGO_BIN_EXE_qbo-bench"))
        .args(["sim-reads", "--seconds", "100000"])
        .output()
        .expect("qbo-bench runs");
    assert!(!output.status.success());
}
