//! Commands whose standard output is their result (`migrate`, `apikey create`, `bench
//! --json`) write their logs to stderr, so that scripts can read stdout as it is.

use std::process::Command;

#[test]
fn a_command_s_logs_stay_out_of_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("migrate")
        .env("SWITCHYARD__DATA_DIR", dir.path())
        .env("SWITCHYARD__TELEMETRY__LOG_LEVEL", "info")
        .env("SWITCHYARD__TELEMETRY__LOG_FORMAT", "json")
        .output()
        .expect("the switchyard binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout, "database is up to date\n", "stderr: {stderr}");
    assert!(
        stderr.contains("\"backends ready\""),
        "the logs went missing: {stderr}"
    );
}

/// `bench --stream` on an embedded server: every token streamed reaches its follower, and
/// the report says how busy the load generator was.
#[test]
fn a_stream_bench_reports_every_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["bench", "--stream", "3", "--tokens-per-s", "40"])
        .args(["--stream-seconds", "1", "--json"])
        .env("SWITCHYARD__TELEMETRY__LOG_LEVEL", "warn")
        .output()
        .expect("the switchyard binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(report["tokens_sent"], 120, "{report}");
    assert_eq!(report["tokens_received"], 120, "{report}");
    assert!(
        report["delay_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    let share = report["load_cpu_share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 1.5, "{report}");
}
