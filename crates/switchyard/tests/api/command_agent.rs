//! The `command` kind with real processes: stdin/stdout/stderr protocol, exit statuses,
//! argument templates, and that nothing it started outlives its attempt.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_core::auth::Role;

use crate::common::*;

const PYTHON: &str = "/usr/bin/python3";
const SH: &str = "/bin/sh";
/// How long processes that should be gone may take to go (the test grace is 1 s).
const GONE_WITHIN: Duration = Duration::from_secs(15);

fn script(app: &TestApp, name: &str, text: &str) -> String {
    let path = app.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn scratch(app: &TestApp, name: &str) -> String {
    app.dir.path().join(name).to_str().unwrap().to_owned()
}

/// The task's stored log lines, once there are at least `n`.
async fn logs(app: &TestApp, id: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let (status, body) = app.get(&format!("/api/v1/tasks/{id}/logs")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["items"].as_array().unwrap().clone();
        if items.len() >= n || start.elapsed() > WAIT {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether the process runs (a zombie has ended: it only waits to be reaped).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        }
    }
}

/// The pids a script wrote to `file`, once there are `n`.
async fn pids(file: &str, n: usize) -> Vec<u32> {
    let start = Instant::now();
    loop {
        let pids: Vec<u32> = std::fs::read_to_string(file)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.len() >= n {
            return pids;
        }
        assert!(start.elapsed() < WAIT, "the script never wrote {n} pids");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_all_gone(pids: &[u32], after: &str) {
    let start = Instant::now();
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            start.elapsed() < GONE_WITHIN,
            "after {after}, these processes still run: {:?}",
            pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const REPORT_PY: &str = r#"
import json, os, sys
data = json.load(sys.stdin)
print("starting", file=sys.stderr, flush=True)
print("::progress 0.5 halfway", file=sys.stderr, flush=True)
print('::partial {"delta": "he"}', file=sys.stderr, flush=True)
print("::warn careful", file=sys.stderr, flush=True)
print("not the output")
print(json.dumps({
    "got": data,
    "argv": sys.argv[1:],
    "token": os.environ.get("TOKEN"),
    "task_id": os.environ.get("SWITCHYARD_TASK_ID"),
    "attempt": os.environ.get("SWITCHYARD_ATTEMPT"),
    "env": sorted(k for k in os.environ if k != "LC_CTYPE"),
    "cwd": os.getcwd(),
}))
print("bye")
"#;

#[tokio::test]
async fn a_program_gets_the_input_and_its_stdout_is_the_output() {
    let app = TestApp::spawn().await;
    let report = script(&app, "report.py", REPORT_PY);
    let cwd = app.dir.path().to_str().unwrap().to_owned();
    let registered = app
        .register(json!({
            "name": "report", "kind": "command",
            "config": {
                "program": PYTHON,
                "args": [report, "{{ input.name }}", "--n={{ input.n + 1 }}", "{{ input.obj }}"],
                "cwd": cwd,
                "env": {"TOKEN": "s3cret"},
                "pass_env": ["PATH"]
            }
        }))
        .await;
    assert_eq!(registered["config"]["env"], json!({"TOKEN": "***"}));
    assert_eq!(registered["secrets"], json!(["/config/env/TOKEN"]));

    let input = json!({"name": "Ada", "n": 2, "obj": {"k": [1, 2]}});
    let t = app.submit("report", input.clone()).await;
    let id = t["id"].as_str().unwrap();
    let events = app.events_since(id, 0).await;
    let done = app.task(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let out = &done["output"];
    assert_eq!(out["got"], input, "the input arrives on stdin");
    assert_eq!(out["argv"], json!(["Ada", "--n=3", "{\"k\":[1,2]}"]));
    assert_eq!(out["token"], "s3cret", "the program gets the stored secret");
    assert_eq!(
        (out["task_id"].as_str(), out["attempt"].as_str()),
        (Some(id), Some("1"))
    );
    let mut env = vec!["SWITCHYARD_ATTEMPT", "SWITCHYARD_TASK_ID", "TOKEN"];
    if std::env::var_os("PATH").is_some() {
        env.insert(0, "PATH");
    }
    assert_eq!(
        out["env"],
        json!(env),
        "nothing else of the server's environment"
    );
    assert_eq!(
        PathBuf::from(out["cwd"].as_str().unwrap()),
        std::fs::canonicalize(app.dir.path()).unwrap()
    );

    // Each stderr line is a log line; directives are events.
    let lines = logs(&app, id, 2).await;
    let lines: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["level"].as_str().unwrap(), l["message"].as_str().unwrap()))
        .collect();
    assert_eq!(lines, [("info", "starting"), ("warn", "careful")]);
    let progress: Vec<&Value> = events.iter().filter(|e| e["kind"] == "progress").collect();
    assert_eq!(progress.len(), 1, "{events:?}");
    assert_eq!(
        (
            progress[0]["progress"].as_f64(),
            progress[0]["message"].as_str()
        ),
        (Some(0.5), Some("halfway"))
    );
    let partials: Vec<&Value> = events.iter().filter(|e| e["kind"] == "partial").collect();
    assert_eq!(partials.len(), 1, "{events:?}");
    assert_eq!(partials[0]["data"], json!({"delta": "he"}));
    assert_eq!(events.last().unwrap()["kind"], "result");

    // Text that is not JSON is kept as text.
    app.register(json!({
        "name": "greet", "kind": "command",
        "config": {"program": SH, "args": ["-c", "echo hello; echo world"]}
    }))
    .await;
    let done = app.run("greet", json!({})).await;
    assert_eq!(
        done["output"],
        json!({"stdout": "hello\nworld\n"}),
        "{done}"
    );
    app.stop().await;
}

const FLAKY_PY: &str = r#"
import json, os, sys
counter = sys.argv[1]
n = int(open(counter).read()) if os.path.exists(counter) else 0
n += 1
open(counter, "w").write(str(n))
if n < 3:
    print(f"try {n}: the database is busy", file=sys.stderr)
    sys.exit(75)
print(json.dumps({"tries": n, "attempt": os.environ["SWITCHYARD_ATTEMPT"]}))
"#;

#[tokio::test]
async fn exit_statuses_decide_what_happens_next() {
    let app = TestApp::spawn().await;
    let retry = json!({"max_attempts": 4, "base_ms": 10, "cap_ms": 50});
    let flaky = script(&app, "flaky.py", FLAKY_PY);
    app.register(json!({
        "name": "flaky", "kind": "command", "retry": retry,
        "config": {"program": PYTHON, "args": [flaky, "{{ input.counter }}"]}
    }))
    .await;
    let done = app
        .run("flaky", json!({"counter": scratch(&app, "count")}))
        .await;
    assert_eq!(done["status"], "succeeded", "exit 75 is retried: {done}");
    assert_eq!(done["output"], json!({"tries": 3, "attempt": "3"}));
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0]["error"]["code"], "exit_75");
    assert_eq!(attempts[0]["error"]["class"], "retryable");
    assert!(
        attempts[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("try 1: the database is busy"),
        "the stderr tail explains the failure: {}",
        attempts[0]["error"]
    );

    let fails = "echo 'no such customer' >&2; exit 3";
    app.register(json!({
        "name": "refuses", "kind": "command", "retry": retry,
        "config": {"program": SH, "args": ["-c", fails]}
    }))
    .await;
    let dead = app.run("refuses", json!({})).await;
    assert_eq!(dead["status"], "dead");
    assert_eq!(
        dead["attempts"].as_array().unwrap().len(),
        1,
        "exit 3 is permanent"
    );
    assert_eq!(
        (
            dead["error"]["code"].as_str(),
            dead["error"]["class"].as_str()
        ),
        (Some("exit_3"), Some("permanent"))
    );
    assert!(
        dead["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such customer"),
        "{dead}"
    );

    // Mapped in the config: 3 is worth retrying for this one.
    app.register(json!({
        "name": "mapped", "kind": "command",
        "retry": {"max_attempts": 2, "base_ms": 10, "cap_ms": 20},
        "config": {"program": SH, "args": ["-c", fails], "exit_codes": {"3": "retryable"}}
    }))
    .await;
    let dead = app.run("mapped", json!({})).await;
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 2, "{dead}");
    assert_eq!(dead["attempts"][0]["error"]["class"], "retryable");

    app.register(json!({
        "name": "chatty", "kind": "command", "retry": retry,
        "config": {"program": SH, "max_output_bytes": 100,
            "args": ["-c", "i=0; while [ $i -lt 50 ]; do echo 0123456789; i=$((i+1)); done"]}
    }))
    .await;
    let dead = app.run("chatty", json!({})).await;
    assert_eq!(
        (dead["status"].as_str(), dead["error"]["code"].as_str()),
        (Some("dead"), Some("output_too_large")),
        "{dead}"
    );

    app.register(json!({
        "name": "missing", "kind": "command", "retry": retry,
        "config": {"program": "/nonexistent/program"}
    }))
    .await;
    let dead = app.run("missing", json!({})).await;
    assert_eq!(
        (
            dead["error"]["code"].as_str(),
            dead["error"]["class"].as_str()
        ),
        (Some("spawn_failed"), Some("permanent")),
        "{dead}"
    );
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn arguments_are_templates_of_the_input() {
    let app = TestApp::spawn().await;
    let argv = "import json, sys; print(json.dumps(sys.argv[1:]))";
    app.register(json!({
        "name": "argv", "kind": "command",
        "config": {"program": PYTHON, "args": ["-c", argv, "{{ input.x }}", "{{ input.list }}", "{% if input.v %}-v{% endif %}"]}
    }))
    .await;
    let done = app
        .run("argv", json!({"x": "a b", "list": [1, "z"], "v": true}))
        .await;
    assert_eq!(done["output"], json!(["a b", "[1,\"z\"]", "-v"]), "{done}");

    // A value the input does not have: no run, a permanent failure saying what is missing.
    let dead = app.run("argv", json!({"list": []})).await;
    assert_eq!(dead["status"], "dead", "{dead}");
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(dead["error"]["code"], "template_error");
    let message = dead["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("config.args[2]") && message.contains("not defined"),
        "{message}"
    );

    // A template that does not parse is refused at registration.
    let (status, body) = app
        .post(
            "/api/v1/agents",
            json!({"name": "broken", "kind": "command",
            "config": {"program": PYTHON, "args": ["{{ input.x "]}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("config.args[0]"),
        "{body}"
    );
    let (status, body) = app
        .post(
            "/api/v1/agents",
            json!({"name": "relative", "kind": "command", "config": {"program": "python3"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    app.stop().await;
}

/// Writes its pid and a background child's, then waits: `$1` is the pid file.
const TWO_SLEEPERS: &str = r#"echo $$ > "$1"; sleep 300 & echo $! >> "$1"; sleep 300"#;

fn sleepers(name: &str, timeout_ms: u64, body: &str) -> Value {
    json!({
        "name": name, "kind": "command", "timeout_ms": timeout_ms,
        "retry": {"max_attempts": 1, "base_ms": 10, "cap_ms": 10},
        "config": {"program": SH, "args": ["-c", body, "sh", "{{ input.pids }}"], "pass_env": ["PATH"]}
    })
}

#[tokio::test]
async fn a_timeout_ends_the_program_and_everything_it_started() {
    let app = TestApp::spawn().await;
    app.register(sleepers("sleepers", 1_000, TWO_SLEEPERS))
        .await;
    let file = scratch(&app, "pids");
    let t = app.submit("sleepers", json!({"pids": file})).await;
    let pids = pids(&file, 2).await;
    let dead = app
        .wait_status(t["id"].as_str().unwrap(), &["dead", "succeeded"])
        .await;
    assert_eq!(dead["error"]["code"], "timeout", "{dead}");
    assert_all_gone(&pids, "the timeout").await;
    app.stop().await;
}

#[tokio::test]
async fn cancelling_ends_the_group_even_when_it_ignores_sigterm() {
    let app = TestApp::spawn().await;
    let stubborn = format!("trap '' TERM; {TWO_SLEEPERS}");
    app.register(sleepers("stubborn", 60_000, &stubborn)).await;
    let file = scratch(&app, "pids");
    let t = app.submit("stubborn", json!({"pids": file})).await;
    let id = t["id"].as_str().unwrap();
    let pids = pids(&file, 2).await;
    app.wait_status(id, &["running"]).await;
    let (status, body) = app
        .post(&format!("/api/v1/tasks/{id}/cancel"), json!({}))
        .await;
    assert!(status.is_success(), "{status} {body}");
    app.wait_status(id, &["cancelled"]).await;
    // They ignore SIGTERM: only the SIGKILL after the grace period ends them.
    assert_all_gone(&pids, "the cancel and its grace period").await;
    app.stop().await;
}

#[tokio::test]
async fn what_a_program_leaves_behind_ends_with_it() {
    let app = TestApp::spawn().await;
    // The background sleep keeps stdout open: the attempt must not wait for it either.
    app.register(sleepers(
        "leaves",
        30_000,
        r#"sleep 300 & echo $! > "$1"; echo '{"done": true}'"#,
    ))
    .await;
    let file = scratch(&app, "pids");
    let done = app.run("leaves", json!({"pids": file})).await;
    assert_eq!(done["output"], json!({"done": true}), "{done}");
    assert_all_gone(&pids(&file, 1).await, "the program exited").await;
    app.stop().await;
}

#[tokio::test]
async fn only_admins_manage_command_agents() {
    let app = TestApp::spawn().await;
    let (_, operator) = app.user(Role::Operator).await;
    let spec = json!({"name": "shell", "kind": "command", "config": {"program": SH, "args": ["-c", "echo hi"]}});
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/agents",
            Some(&operator),
            Some(spec.clone()),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{body}"
    );
    app.register(spec.clone()).await;
    let (status, _) = app
        .call("PUT", "/api/v1/agents/shell", Some(&operator), Some(spec))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call("DELETE", "/api/v1/agents/shell", Some(&operator), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let done = app.run("shell", json!({})).await;
    assert_eq!(done["output"], json!({"stdout": "hi\n"}));
    app.stop().await;
}

#[tokio::test]
async fn servers_that_do_not_allow_command_agents_refuse_and_do_not_run_them() {
    let app = TestApp::spawn_with(|c| c.agents.allow_command = Some(false)).await;
    let spec = json!({"name": "shell", "kind": "command", "config": {"program": SH, "args": ["-c", "echo hi"]}});
    let (status, body) = app.post("/api/v1/agents", spec.clone()).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{body}"
    );
    assert_eq!(
        body["error"]["details"]["setting"], "agents.allow_command",
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("agents.allow_command")
    );
    // Nor can another agent become one.
    app.register(json!({"name": "plain", "kind": "echo"})).await;
    let (status, _) = app
        .call(
            "PUT",
            "/api/v1/agents/plain",
            Some(&app.admin),
            Some(json!({"kind": "command", "config": {"program": SH}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // One registered before the setting was turned off is not run.
    let spec: switchyard_core::agent::AgentSpec = serde_json::from_value(spec).unwrap();
    app.engine().agents().install(spec).await.unwrap();
    let dead = app.run("shell", json!({})).await;
    assert_eq!(
        (dead["status"].as_str(), dead["error"]["code"].as_str()),
        (Some("dead"), Some("kind_disabled")),
        "{dead}"
    );
    // It can still be deleted.
    let (status, _) = app
        .call("DELETE", "/api/v1/agents/shell", Some(&app.admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.stop().await;
}
