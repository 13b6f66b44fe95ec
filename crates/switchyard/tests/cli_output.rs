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
