//! Real `switchyard` processes for the tests that run the binary: a server on a random
//! port with its own data directory (and whatever environment the test gives it), and
//! the HTTP calls those tests share.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const PASSWORD: &str = "recovery-test-password";
pub const WAIT: Duration = Duration::from_secs(90);

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .envs(env.iter().copied())
            .env("SWITCHYARD_ADMIN_PASSWORD", PASSWORD)
            .env("SWITCHYARD__TELEMETRY__LOG_FORMAT", "json")
            .env("SWITCHYARD__QUEUE__LEASE_MS", "3000")
            .env("SWITCHYARD__QUEUE__HEARTBEAT_MS", "500")
            .env("SWITCHYARD__QUEUE__REAPER_INTERVAL_MS", "200")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the switchyard binary starts");
        let addr = switchyard::testing::announced_addr(child.stdout.take().unwrap(), WAIT);
        Server {
            child,
            base: format!("http://{addr}"),
        }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin's access token.
pub async fn login(client: &reqwest::Client, base: &str) -> String {
    login_as(client, base, "admin@localhost", PASSWORD).await
}

/// A user's access token.
pub async fn login_as(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let r: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{email} logs in: {r}"))
        .to_owned()
}

pub async fn get_json(client: &reqwest::Client, url: String, token: &str) -> Value {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn task(client: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    get_json(client, format!("{base}/api/v1/tasks/{id}"), token).await
}

pub async fn wait_status(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    status: &str,
) -> Value {
    let start = Instant::now();
    loop {
        let t = task(client, base, token, id).await;
        if t["status"] == status {
            return t;
        }
        assert!(
            start.elapsed() < WAIT,
            "task {id} never became {status}: {t}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Server {
    /// Stops the server as an operator would (SIGTERM) and waits for it to exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
