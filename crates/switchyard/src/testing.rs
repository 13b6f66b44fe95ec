//! A test harness for this workspace's integration tests: the real server (engine,
//! worker runtime, HTTP) on a random port and a fresh data directory, plus HTTP helpers.
//! Not part of the product: behind the `testing` feature, which this crate's tests and the
//! SDK's tests enable.

mod contract;

use std::time::{Duration, Instant};

pub use contract::{CheckedClient, CheckedRequest, Contract, Operation, contract};

use crate::app::{self, Role, Running};
use crate::config::Config;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_core::auth::Role as UserRole;

pub const ADMIN_EMAIL: &str = "admin@localhost";
pub const ADMIN_PASSWORD: &str = "test-admin-password-1";
/// Generous: these tests must pass on a slow, busy machine.
pub const WAIT: Duration = Duration::from_secs(60);

pub struct TestApp {
    pub base: String,
    /// Every response it receives is checked against the OpenAPI document.
    pub client: CheckedClient,
    pub admin: String,
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
}

/// Short leases and fast sweeps so recovery paths run in test time.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    c.server.listen = "127.0.0.1:0".parse().unwrap();
    c.database.sqlite_durability = switchyard_store::Durability::Normal;
    c.queue.lease_ms = 3_000;
    c.queue.heartbeat_ms = 500;
    c.queue.reaper_interval_ms = 200;
    c.queue.cancel_grace_ms = 1_000;
    c.queue.poll_interval_ms = 500;
    c.worker.drain_timeout_s = 2;
    c.telemetry.log_level = "warn".into();
    // As under `switchyard dev`.
    c.agents.allow_command = Some(true);
    c
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let running = app::start(&config, Role::All).await.expect("server starts");
        running
            .engine
            .auth()
            .ensure_admin(ADMIN_EMAIL, Some(ADMIN_PASSWORD.into()))
            .await
            .unwrap();
        let base = format!("http://{}", running.addr.unwrap());
        let client = CheckedClient::new(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap(),
        );
        let mut app = TestApp {
            base,
            client,
            admin: String::new(),
            running: Some(running),
            dir,
        };
        app.admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        app
    }

    /// The database, for tests that read it directly.
    pub fn store(&self) -> &std::sync::Arc<dyn switchyard_core::store::Store> {
        self.running.as_ref().unwrap().store()
    }

    pub fn engine(&self) -> &std::sync::Arc<switchyard_engine::Engine> {
        &self.running.as_ref().unwrap().engine
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login failed: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a user directly and returns a token for it.
    pub async fn user(&self, role: UserRole) -> (String, String) {
        let email = format!(
            "{}-{}@example.com",
            role.as_str(),
            uuid::Uuid::new_v4().simple()
        );
        let password = "a-long-enough-password";
        let user = self
            .engine()
            .auth()
            .create_user_unchecked(&email, password, role)
            .await
            .unwrap();
        (user.id.to_string(), self.login(&email, password).await)
    }

    /// An API key of the admin user with these scopes.
    pub async fn api_key(&self, scopes: &[switchyard_core::auth::Scope]) -> String {
        let user = self
            .engine()
            .auth()
            .user_by_email(ADMIN_EMAIL)
            .await
            .unwrap();
        let auth = &self.engine().auth();
        let (_, secret) = auth
            .issue_api_key(user.id, user.role, "test", scopes.to_vec(), None)
            .await
            .unwrap();
        secret
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method.parse().unwrap(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, Some(&self.admin.clone()), None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(&self.admin.clone()), Some(body))
            .await
    }

    /// Submits as admin and returns the created task.
    pub async fn submit(&self, agent: &str, input: Value) -> Value {
        let (status, body) = self
            .post("/api/v1/tasks", json!({"agent": agent, "input": input}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "submit failed: {body}");
        body
    }

    pub async fn task(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/tasks/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Submits as admin and waits until the task has finished (succeeded, dead or
    /// cancelled): the finished task.
    pub async fn run(&self, agent: &str, input: Value) -> Value {
        let t = self.submit(agent, input).await;
        self.wait_status(
            t["id"].as_str().unwrap(),
            &["succeeded", "dead", "cancelled"],
        )
        .await
    }

    /// Polls until the task's status is one of `statuses`.
    pub async fn wait_status(&self, id: &str, statuses: &[&str]) -> Value {
        let start = Instant::now();
        loop {
            let t = self.task(id).await;
            if statuses.contains(&t["status"].as_str().unwrap_or_default()) {
                return t;
            }
            assert!(
                start.elapsed() < WAIT,
                "task {id} never reached {statuses:?}; last: {t}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A task's events after `since` (`0`: from its start) until its final one, read as
    /// Server-Sent Events from `GET /api/v1/tasks/{id}/events?since=…` (the stream ends
    /// after the final event).
    pub async fn events_since(&self, id: &str, since: u64) -> Vec<Value> {
        let resp = self
            .client
            .inner
            .get(self.url(&format!("/api/v1/tasks/{id}/events?since={since}")))
            .bearer_auth(&self.admin)
            .timeout(WAIT)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp.text().await.unwrap();
        text.split("\n\n")
            .filter_map(|frame| {
                let data: String = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
                    .collect();
                (!data.is_empty()).then(|| serde_json::from_str(&data).unwrap())
            })
            .collect()
    }

    pub async fn register(&self, agent: Value) -> Value {
        let (status, body) = self.post("/api/v1/agents", agent).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "agent registration failed: {body}"
        );
        body
    }
}

/// S3-compatible storage for tests: `TEST_S3_ENDPOINT` (e.g. moto's server, started by
/// `.ci/run`) with the bucket `TEST_S3_BUCKET` (default `switchyard-test`), any
/// credentials. Without it the caller's test says loudly that it was skipped.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub endpoint: String,
    pub bucket: String,
}

pub fn s3_settings() -> Option<S3Settings> {
    match std::env::var("TEST_S3_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(S3Settings {
            endpoint,
            bucket: std::env::var("TEST_S3_BUCKET").unwrap_or_else(|_| "switchyard-test".into()),
        }),
        _ => {
            eprintln!("SKIPPED: TEST_S3_ENDPOINT not set — the S3 file storage test did not run");
            None
        }
    }
}

impl S3Settings {
    /// Points `config` at a fresh prefix of the bucket.
    pub fn apply(&self, config: &mut Config) {
        self.apply_prefix(config, &uuid::Uuid::new_v4().simple().to_string());
    }

    /// Points `config` at `prefix` in the bucket (servers of one cluster share it).
    pub fn apply_prefix(&self, config: &mut Config, prefix: &str) {
        config.files.url = Some(format!("s3://{}/{prefix}", self.bucket));
        config.files.s3_endpoint = Some(self.endpoint.clone());
        config.files.s3_region = Some("us-east-1".into());
        config.files.s3_access_key_id = Some("test".into());
        config.files.s3_secret_access_key = Some("test".into());
    }
}

/// A schema of its own on `TEST_DATABASE_URL` for one test (servers of one cluster
/// share it). Without the variable the caller's test says loudly that it was skipped.
pub struct PgSchema {
    /// The database URL with the schema first on its `search_path`.
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgSchema {
    pub async fn create(what: &str) -> Option<PgSchema> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!("SKIPPED: TEST_DATABASE_URL not set — the PostgreSQL {what} did not run");
            return None;
        };
        let name = format!("sy_test_{}", uuid::Uuid::new_v4().simple());
        let schema = PgSchema {
            url: {
                let sep = if admin_url.contains('?') { '&' } else { '?' };
                format!("{admin_url}{sep}options=-c%20search_path%3D{name}")
            },
            admin_url,
            name,
        };
        schema.run(&format!("CREATE SCHEMA {}", schema.name)).await;
        Some(schema)
    }

    /// Runs one statement as the administrator (names are unqualified: qualify them with
    /// [`PgSchema::name`]).
    pub async fn run(&self, sql: &str) {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .unwrap();
    }

    /// One number from a query run as the administrator.
    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut c)
            .await
            .unwrap()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn remove(self) {
        self.run(&format!("DROP SCHEMA {} CASCADE", self.name))
            .await;
    }
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// For tests that run the real binary with JSON logs: reads its stdout (on a thread, to
/// the end, so the process never blocks on a full pipe) and returns the address from its
/// "switchyard is up" line.
pub fn announced_addr(stdout: std::process::ChildStdout, timeout: Duration) -> String {
    use std::io::{BufRead, BufReader};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent
                && let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "switchyard is up"
            {
                let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                sent = true;
            }
        }
    });
    rx.recv_timeout(timeout)
        .expect("the server reports its address")
}
