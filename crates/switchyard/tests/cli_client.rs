//! The client commands (`login`, `task …`, `agent …`) end to end: the real binary
//! against a real server, with a profile in a temporary `$XDG_CONFIG_HOME` (docs/cli.md).
//! One server serves the whole file.

#[path = "common/process.rs"]
mod process;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use process::*;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// What a command did.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    fn expect(self, code: i32) -> Ran {
        assert_eq!(self.code, code, "exit code: {self:#?}");
        self
    }
}

/// Runs the `switchyard` client with `config_home` as `$XDG_CONFIG_HOME`.
struct Cli {
    config_home: PathBuf,
}

impl Cli {
    async fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Ran {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(args)
            .env_remove("SWITCHYARD_URL")
            .env_remove("SWITCHYARD_API_KEY")
            .env_remove("SWITCHYARD_PROFILE")
            .env("XDG_CONFIG_HOME", &self.config_home)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the switchyard binary runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = tokio::time::timeout(WAIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("switchyard {args:?} did not finish"))
            .unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> Ran {
        self.run(args, &[], None).await.expect(0)
    }

    fn config_file(&self) -> PathBuf {
        self.config_home.join("switchyard").join("config.toml")
    }

    fn profile(&self, name: &str) -> toml::Table {
        let text = std::fs::read_to_string(self.config_file()).unwrap();
        let file: toml::Table = toml::from_str(&text).unwrap();
        file["profiles"][name].as_table().unwrap().clone()
    }
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let r = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// A `command` agent whose program streams its answer as `partial` events.
fn streaming_script(dir: &Path) -> PathBuf {
    let path = dir.join("stream.py");
    std::fs::write(
        &path,
        r#"import json, sys, time
for word in ["Hello", ", ", "streaming ", "world"]:
    sys.stderr.write("::partial " + json.dumps({"delta": word}) + "\n")
    sys.stderr.flush()
    time.sleep(0.1)
sys.stderr.write("::info said hello\n")
print(json.dumps({"text": "Hello, streaming world"}))
"#,
    )
    .unwrap();
    path
}

fn agents_toml(script: &Path, description: &str) -> String {
    format!(
        r#"# agents as code
[[agents]]
name = "greeter"
kind = "echo"
description = "{description}"

[[agents]]
name = "napper"
kind = "sleep"
timeout_ms = 30000
[agents.retry]
max_attempts = 2
base_ms = 100
cap_ms = 1000

[[agents]]
name = "streamer"
kind = "command"
description = "Streams a greeting."
[agents.config]
program = "/usr/bin/python3"
args = ["{script}"]
[agents.config.env]
GREETING_TOKEN = "s3cret"
"#,
        script = script.display()
    )
}

async fn updated_at(client: &reqwest::Client, base: &str, token: &str) -> Vec<(String, String)> {
    let agents = get_json(client, format!("{base}/api/v1/agents"), token).await;
    agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["updated_at"].to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_commands_drive_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        config_home: dir.path().join("config"),
    };

    // Bad usage, before any server is involved: exit 2.
    let bad = cli
        .run(&["task", "submit", "echo", "--input", "{oops"], &[], None)
        .await
        .expect(2);
    assert!(bad.stderr.contains("--input is not valid JSON"), "{bad:?}");
    cli.run(
        &["task", "submit", "echo", "--input", "@/no/such.json"],
        &[],
        None,
    )
    .await
    .expect(2);
    cli.run(&["task", "submit"], &[], None).await.expect(2);
    cli.run(&["task", "submit", "echo", "--wait", "soon"], &[], None)
        .await
        .expect(2);
    let none = cli.run(&["task", "list"], &[], None).await.expect(2);
    assert!(none.stderr.contains("switchyard login"), "{none:?}");

    // Nobody listens: exit 4.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("http://127.0.0.1:{port}");
    let unreachable = cli
        .run(
            &["task", "list"],
            &[("SWITCHYARD_URL", &nowhere), ("SWITCHYARD_API_KEY", "sy_x")],
            None,
        )
        .await
        .expect(4);
    assert!(
        unreachable.stderr.contains("cannot reach the server"),
        "{unreachable:?}"
    );
    cli.run(
        &["login", "--url", &nowhere, "--api-key", "sy_x"],
        &[],
        None,
    )
    .await
    .expect(4);

    let server = Server::start_with(
        &dir.path().join("data"),
        &[("SWITCHYARD__AGENTS__ALLOW_COMMAND", "true")],
    );
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let admin = login(&http, &base).await;
    let key = post(
        &http,
        format!("{base}/api/v1/api-keys"),
        &admin,
        json!({"name": "cli", "scopes": ["admin"]}),
    )
    .await;
    let key = key["secret"].as_str().unwrap().to_owned();
    let read_only = post(
        &http,
        format!("{base}/api/v1/api-keys"),
        &admin,
        json!({"name": "ro", "scopes": ["read"]}),
    )
    .await;
    let read_only = read_only["secret"].as_str().unwrap().to_owned();

    // Login with an API key: a wrong key is refused (3) and saves nothing.
    cli.run(
        &["login", "--url", &base, "--api-key", "sy_wrong"],
        &[],
        None,
    )
    .await
    .expect(3);
    assert!(!cli.config_file().exists());
    let logged = cli
        .ok(&[
            "login",
            "--url",
            &base,
            "--api-key",
            &key,
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(
        (logged["email"].as_str(), logged["credential"].as_str()),
        (Some("admin@localhost"), Some("api_key"))
    );
    let mode = std::fs::metadata(cli.config_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        cli.profile("default")["api_key"].as_str(),
        Some(key.as_str())
    );

    // Login with a password (read from stdin when it is not a terminal) into another
    // profile; an expired access token is refreshed and the rotated refresh token saved.
    let wrong = cli
        .run(
            &["login", "--url", &base, "--profile", "pw"],
            &[],
            Some("admin@localhost\nnot-the-password\n"),
        )
        .await;
    assert_eq!(wrong.code, 3, "{wrong:?}");
    cli.run(
        &["login", "--url", &base, "--profile", "pw"],
        &[],
        Some(&format!("admin@localhost\n{PASSWORD}\n")),
    )
    .await
    .expect(0);
    let session = cli.profile("pw");
    assert!(session.get("api_key").is_none());
    let first_refresh = session["refresh_token"].as_str().unwrap().to_owned();
    let mut file: toml::Table =
        toml::from_str(&std::fs::read_to_string(cli.config_file()).unwrap()).unwrap();
    file["profiles"]["pw"]
        .as_table_mut()
        .unwrap()
        .insert("expires_at".into(), toml::Value::Integer(0));
    std::fs::write(cli.config_file(), toml::to_string(&file).unwrap()).unwrap();
    let listed = cli
        .ok(&["agent", "list", "--profile", "pw", "--output", "json"])
        .await
        .json();
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "echo")
    );
    let refreshed = cli.profile("pw");
    assert_ne!(refreshed["refresh_token"].as_str().unwrap(), first_refresh);
    assert!(refreshed["expires_at"].as_integer().unwrap() > 0);
    assert_eq!(
        std::fs::metadata(cli.config_file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // The table output is for people: aligned columns.
    let table = cli.ok(&["agent", "list", "--profile", "pw"]).await;
    assert!(table.stdout.starts_with("NAME "), "{table:?}");

    // Agents as code: the first apply creates, the second changes nothing.
    let script = streaming_script(dir.path());
    let agents_file = dir.path().join("agents.toml");
    std::fs::write(&agents_file, agents_toml(&script, "Says it back.")).unwrap();
    let file_arg = agents_file.to_str().unwrap();
    let first = cli.ok(&["agent", "apply", "-f", file_arg]).await;
    for name in ["greeter", "napper", "streamer"] {
        assert!(
            first.stdout.contains(&format!("create     {name}")),
            "{first:?}"
        );
    }
    let before = updated_at(&http, &base, &admin).await;
    let second = cli
        .ok(&["agent", "apply", "-f", file_arg, "--output", "json"])
        .await
        .json();
    let actions: Vec<&str> = second["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unchanged"; 3], "{second}");
    assert_eq!(
        updated_at(&http, &base, &admin).await,
        before,
        "an unchanged apply wrote to the server"
    );
    // The same agents in YAML are the same agents.
    let yaml = dir.path().join("agents.yaml");
    std::fs::write(
        &yaml,
        format!(
            "agents:\n  - name: greeter\n    kind: echo\n    description: Says it back.\n  - name: napper\n    kind: sleep\n    timeout_ms: 30000\n    retry: {{max_attempts: 2, base_ms: 100, cap_ms: 1000}}\n  - name: streamer\n    kind: command\n    description: Streams a greeting.\n    config:\n      program: /usr/bin/python3\n      args: [\"{}\"]\n      env: {{GREETING_TOKEN: other-value}}\n",
            script.display()
        ),
    )
    .unwrap();
    let from_yaml = cli
        .ok(&["agent", "apply", "-f", yaml.to_str().unwrap()])
        .await;
    assert_eq!(
        from_yaml.stdout.matches("unchanged").count(),
        3,
        "{from_yaml:?}"
    );
    assert_eq!(updated_at(&http, &base, &admin).await, before);

    // A change, planned with --dry-run (nothing changes), then applied.
    std::fs::write(&agents_file, agents_toml(&script, "Says it back, louder.")).unwrap();
    let plan = cli
        .ok(&["agent", "apply", "-f", file_arg, "--dry-run"])
        .await;
    assert!(
        plan.stdout.contains("update     greeter (description)"),
        "{plan:?}"
    );
    assert!(plan.stderr.contains("nothing was changed"), "{plan:?}");
    assert_eq!(updated_at(&http, &base, &admin).await, before);
    let applied = cli.ok(&["agent", "apply", "-f", file_arg]).await;
    assert!(
        applied.stdout.contains("update     greeter (description)"),
        "{applied:?}"
    );
    let greeter = cli
        .ok(&["agent", "get", "greeter", "--output", "json"])
        .await
        .json();
    assert_eq!(greeter["description"], "Says it back, louder.");

    // --prune deletes what the file does not name, built-in agents aside.
    post(
        &http,
        format!("{base}/api/v1/agents"),
        &admin,
        json!({"name": "leftover", "kind": "echo"}),
    )
    .await;
    let pruned_plan = cli
        .ok(&["agent", "apply", "-f", file_arg, "--prune", "--dry-run"])
        .await;
    assert!(
        pruned_plan.stdout.contains("delete     leftover"),
        "{pruned_plan:?}"
    );
    cli.ok(&["agent", "get", "leftover"]).await;
    let pruned = cli.ok(&["agent", "apply", "-f", file_arg, "--prune"]).await;
    assert!(
        pruned.stdout.contains("delete     leftover") && !pruned.stdout.contains("delete     echo"),
        "{pruned:?}"
    );
    cli.run(&["agent", "get", "leftover"], &[], None)
        .await
        .expect(3);
    cli.ok(&["agent", "get", "echo"]).await;
    // One agent deleted by name; a built-in one cannot be, an unknown one is not found.
    post(
        &http,
        format!("{base}/api/v1/agents"),
        &admin,
        json!({"name": "short-lived", "kind": "echo"}),
    )
    .await;
    let deleted = cli
        .ok(&["agent", "delete", "short-lived", "--output", "json"])
        .await
        .json();
    assert_eq!(deleted, json!({"deleted": "short-lived"}));
    cli.run(&["agent", "get", "short-lived"], &[], None)
        .await
        .expect(3);
    cli.run(&["agent", "delete", "short-lived"], &[], None)
        .await
        .expect(3);
    let builtin = cli.run(&["agent", "delete", "echo"], &[], None).await;
    assert!(
        builtin.code != 0 && builtin.stderr.contains("built"),
        "{builtin:?}"
    );

    // An export applies unchanged.
    let exported = cli.ok(&["agent", "export"]).await;
    assert!(
        !exported.stdout.contains("s3cret"),
        "a secret was exported: {exported:?}"
    );
    let export_file = dir.path().join("exported.toml");
    std::fs::write(&export_file, &exported.stdout).unwrap();
    let reapplied = cli
        .ok(&[
            "agent",
            "apply",
            "-f",
            export_file.to_str().unwrap(),
            "--prune",
            "--output",
            "json",
        ])
        .await
        .json();
    assert!(
        reapplied["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["action"] == "unchanged"),
        "{reapplied}"
    );
    let as_json = cli
        .ok(&["agent", "export", "--output", "json"])
        .await
        .json();
    assert_eq!(as_json["agents"].as_array().unwrap().len(), 3);

    // Submit and wait: 0 when the task succeeds, 1 when it fails.
    let input_file = dir.path().join("input.json");
    std::fs::write(&input_file, r#"{"hello": "world"}"#).unwrap();
    let input_arg = format!("@{}", input_file.display());
    let done = cli
        .ok(&[
            "task", "submit", "greeter", "--input", &input_arg, "--wait", "30s", "--output", "json",
        ])
        .await
        .json();
    assert_eq!(
        (done["status"].as_str(), &done["output"]),
        (Some("succeeded"), &json!({"hello": "world"}))
    );
    let shown = cli
        .ok(&[
            "task",
            "submit",
            "echo",
            "--input",
            r#"{"n": 1}"#,
            "--wait",
            "30s",
        ])
        .await;
    assert!(shown.stdout.contains("succeeded"), "{shown:?}");
    let failed = cli
        .run(
            &[
                "task",
                "submit",
                "fail",
                "--input",
                r#"{"times": 100, "class": "permanent"}"#,
                "--wait",
                "30s",
            ],
            &[],
            None,
        )
        .await
        .expect(1);
    assert!(failed.stderr.contains("dead"), "{failed:?}");
    let dead_id = failed
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .unwrap()
        .trim()
        .to_owned();
    // A bad input is the caller's mistake (2), an unknown agent too.
    cli.run(
        &["task", "submit", "sleep", "--input", r#"{"ms": "long"}"#],
        &[],
        None,
    )
    .await
    .expect(2);
    cli.run(&["task", "submit", "no-such-agent"], &[], None)
        .await
        .expect(2);

    // Follow a streaming task: its partial output arrives as text.
    let streamed = cli.ok(&["task", "submit", "streamer", "--follow"]).await;
    assert!(
        streamed.stdout.contains("Hello, streaming world"),
        "{streamed:?}"
    );
    assert!(
        streamed.stderr.contains("[info] said hello"),
        "{streamed:?}"
    );
    let streamed_json = cli
        .ok(&["task", "submit", "streamer", "--follow", "--output", "json"])
        .await;
    let events: Vec<Value> = streamed_json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let deltas: String = events
        .iter()
        .filter(|e| e["kind"] == "partial")
        .map(|e| e["data"]["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "Hello, streaming world");
    assert_eq!(events.last().unwrap()["kind"], "result");
    let id = events[0]["task_id"].as_str().unwrap().to_owned();
    // Following it again replays the stream; the logs are there too.
    let replay = cli.ok(&["task", "follow", &id]).await;
    assert!(
        replay.stdout.contains("Hello, streaming world"),
        "{replay:?}"
    );
    let logs = cli
        .ok(&["task", "logs", &id, "--output", "json"])
        .await
        .json();
    assert!(
        logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == "said hello"),
        "{logs}"
    );
    // Following a task that fails ends with 1.
    cli.run(
        &[
            "task",
            "submit",
            "fail",
            "--input",
            r#"{"times": 100, "class": "permanent"}"#,
            "--follow",
        ],
        &[],
        None,
    )
    .await
    .expect(1);
    cli.run(&["task", "follow", &dead_id], &[], None)
        .await
        .expect(1);

    // Get, list, cancel, retry.
    let got = cli
        .ok(&["task", "get", &id, "--output", "json"])
        .await
        .json();
    assert_eq!(got["status"], "succeeded");
    let page = cli
        .ok(&[
            "task",
            "list",
            "--agent",
            "streamer",
            "--status",
            "succeeded",
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let listed = cli.ok(&["task", "list", "--limit", "1"]).await;
    assert!(
        listed.stdout.starts_with("ID ") && listed.stderr.contains("--cursor"),
        "{listed:?}"
    );
    let slow = cli
        .ok(&[
            "task",
            "submit",
            "napper",
            "--input",
            r#"{"ms": 60000}"#,
            "--output",
            "json",
        ])
        .await
        .json();
    let slow_id = slow["id"].as_str().unwrap();
    cli.ok(&["task", "cancel", slow_id]).await;
    let cancelled = wait_status(&http, &base, &admin, slow_id, "cancelled").await;
    assert_eq!(cancelled["status"], "cancelled");
    let retried = cli
        .ok(&["task", "retry", &dead_id, "--output", "json"])
        .await
        .json();
    assert_ne!(retried["status"], "dead");

    // Not found and not allowed: 3.
    let missing = cli
        .run(
            &["task", "get", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"],
            &[],
            None,
        )
        .await
        .expect(3);
    assert!(missing.stderr.contains("task_not_found"), "{missing:?}");
    let env = [
        ("SWITCHYARD_URL", base.as_str()),
        ("SWITCHYARD_API_KEY", read_only.as_str()),
    ];
    let denied = cli
        .run(&["task", "cancel", &id], &env, None)
        .await
        .expect(3);
    assert!(denied.stderr.contains("forbidden"), "{denied:?}");
    // (The YAML file's description differs from the server's now: an update to send.)
    let refused = cli
        .run(
            &["agent", "apply", "-f", yaml.to_str().unwrap()],
            &env,
            None,
        )
        .await
        .expect(3);
    assert!(
        refused.stderr.contains("agent \"greeter\": forbidden"),
        "{refused:?}"
    );
    // The same key reads, and the environment overrides the profile.
    cli.run(&["task", "get", &id], &env, None).await.expect(0);
    cli.run(&["task", "get", &id], &[("SWITCHYARD_URL", &nowhere)], None)
        .await
        .expect(3);

    // Logout ends the password profile's session on the server: its saved refresh token
    // stops working, the profile keeps only its URL, and a second logout is a no-op.
    let saved_refresh = cli.profile("pw")["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = cli
        .ok(&["logout", "--profile", "pw", "--output", "json"])
        .await
        .json();
    assert_eq!(
        (out["credential"].as_str(), out["session_ended"].as_bool()),
        (Some("session"), Some(true)),
        "{out}"
    );
    let refresh = http
        .post(format!("{base}/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": saved_refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 401, "the session outlived logout");
    let after = cli.profile("pw");
    assert_eq!(after["url"].as_str(), Some(base.as_str()));
    for key in ["refresh_token", "access_token", "api_key", "email"] {
        assert!(
            after.get(key).is_none(),
            "{key} kept after logout: {after:?}"
        );
    }
    let again = cli.ok(&["logout", "--profile", "pw"]).await;
    assert!(again.stderr.contains("not signed in"), "{again:?}");
    cli.run(&["agent", "list", "--profile", "pw"], &[], None)
        .await
        .expect(3);
    // An API key profile is forgotten; the key itself stays valid.
    let forgot = cli.ok(&["logout"]).await;
    assert!(forgot.stderr.contains("stays valid"), "{forgot:?}");
    assert!(cli.profile("default").get("api_key").is_none());
    let env = [
        ("SWITCHYARD_URL", base.as_str()),
        ("SWITCHYARD_API_KEY", key.as_str()),
    ];
    cli.run(&["task", "get", &id], &env, None).await.expect(0);
}
