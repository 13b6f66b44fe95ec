//! Scale-out proven with real processes, all on loopback: a PostgreSQL primary and a
//! streaming replica (initdb / pg_basebackup into temporary directories), a Redis primary
//! and replica, NGINX with `deploy/nginx.conf` (TLS termination, WebSocket upgrade),
//! three API servers and two worker processes of the real binary.
//!
//! It submits a few thousand tasks through NGINX (each with an idempotency key, retried
//! on errors as a real client would), follows some of them over SSE on a different API
//! server than the one that accepted them, SIGKILLs one API server and one worker
//! mid-run, and asserts that every task finished exactly once and that every follower
//! saw its task's final event.
//!
//! Needs the PostgreSQL server binaries, `redis-server`, `nginx` and `openssl`. When one
//! is missing the test fails in CI (`CI=true`) and prints loudly that it was skipped
//! elsewhere.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

const ECHO_TASKS: usize = 3_000;
const FOLLOWED_TASKS: usize = 24;
const CLIENTS: usize = 24;
/// Submitted while Redis is down.
const DEGRADED_TASKS: usize = 200;
/// Valid tasks submitted beside a client that sends bad values.
const POISON_TASKS: usize = 400;
const DEGRADED_FOLLOWED: usize = 4;
/// Submitted while PostgreSQL restarts.
const RESTART_TASKS: usize = 600;
const PASSWORD: &str = "cluster-test-password";
const STARTUP: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------
// Tools and processes

struct Tools {
    pg_bin: PathBuf,
    redis_server: PathBuf,
    nginx: PathBuf,
    openssl: PathBuf,
    curl: Option<PathBuf>,
    redis_cli: Option<PathBuf>,
}

fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The tools, or `None` after saying loudly why the test does not run here.
fn tools() -> Option<Tools> {
    let found = (
        pg_bin(),
        in_path("redis-server"),
        in_path("nginx"),
        in_path("openssl"),
    );
    let missing: Vec<&str> = [
        (
            found.0.is_none(),
            "PostgreSQL server binaries (/usr/lib/postgresql/*/bin)",
        ),
        (found.1.is_none(), "redis-server"),
        (found.2.is_none(), "nginx"),
        (found.3.is_none(), "openssl"),
    ]
    .into_iter()
    .filter_map(|(m, what)| m.then_some(what))
    .collect();
    if !missing.is_empty() {
        let msg = format!(
            "the cluster test needs {} (install: postgresql nginx redis-server openssl)",
            missing.join(", ")
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg} — the scale-out cluster test did not run");
        return None;
    }
    let (Some(pg_bin), Some(redis_server), Some(nginx), Some(openssl)) = found else {
        unreachable!()
    };
    Some(Tools {
        pg_bin,
        redis_server,
        nginx,
        openssl,
        curl: in_path("curl"),
        redis_cli: in_path("redis-cli"),
    })
}

/// PostgreSQL refuses to run as root: as root, its processes run as the `postgres` user.
fn postgres_ids() -> Option<(u32, u32)> {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("running as root needs a `postgres` user for PostgreSQL");
    let fields: Vec<&str> = line.split(':').collect();
    Some((
        fields[2].parse().expect("uid"),
        fields[3].parse().expect("gid"),
    ))
}

fn pg_dir(path: &Path, ids: Option<(u32, u32)>) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    if let Some((uid, gid)) = ids {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

fn pg_command(tools: &Tools, program: &str, ids: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(tools.pg_bin.join(program));
    if let Some((uid, gid)) = ids {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(format!("{name}.log"))).unwrap()
}

/// A child process, killed (and reaped) when dropped, even on panic.
struct Proc {
    name: String,
    child: Child,
    /// Sent first on drop (e.g. SIGQUIT: PostgreSQL's immediate shutdown), then SIGKILL.
    gentle: Option<&'static str>,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, logs: &Path) -> Proc {
        let log = log_file(logs, name);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_owned(),
            child,
            gentle: None,
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// The gentle signal (if any), a bounded wait, then SIGKILL.
    fn stop(&mut self) {
        if let (Some(signal), Ok(None)) = (self.gentle, self.child.try_wait()) {
            let _ = Command::new("kill")
                .args([signal, &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("{} did not stop in time; killing it", self.name);
        }
        self.kill9();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spare_port(taken: &mut HashSet<u16>) -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if taken.insert(port) {
            return port;
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tcp_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200")
}

// ---------------------------------------------------------------------------------------
// The cluster

struct Cluster {
    dir: tempfile::TempDir,
    pg_ids: Option<(u32, u32)>,
    pg_primary: u16,
    pg_replica: u16,
    redis_primary: u16,
    redis_replica: u16,
    nginx_http: u16,
    nginx_tls: u16,
    api_ports: Vec<u16>,
    /// Dropped last-to-first: switchyard processes, then nginx, then the services.
    procs: Vec<Proc>,
}

impl Cluster {
    fn primary_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.pg_primary)
    }

    fn proc_mut(&mut self, name: &str) -> &mut Proc {
        self.procs
            .iter_mut()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    fn dump_logs(&self) {
        for p in &self.procs {
            let log = self.dir.path().join(format!("{}.log", p.name));
            if let Ok(text) = std::fs::read_to_string(&log) {
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                eprintln!("--- last lines of {} ---", p.name);
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        while let Some(p) = self.procs.pop() {
            drop(p);
        }
    }
}

fn switchyard(cluster: &Cluster, name: &str, role: &str, listen: Option<u16>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(["serve", "--role", role, "--data-dir"])
        .arg(cluster.dir.path().join(format!("data-{name}")));
    if let Some(port) = listen {
        cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
    }
    cmd.env("SWITCHYARD__DATABASE__URL", cluster.primary_url())
        .env(
            "SWITCHYARD__DATABASE__REPLICA_URL",
            format!(
                "postgres://postgres@127.0.0.1:{}/postgres",
                cluster.pg_replica
            ),
        )
        .env("SWITCHYARD__DATABASE__MAX_CONNECTIONS", "12")
        .env(
            "SWITCHYARD__REDIS__URL",
            format!("redis://127.0.0.1:{}", cluster.redis_primary),
        )
        .env("SWITCHYARD__QUEUE__LEASE_MS", "3000")
        .env("SWITCHYARD__QUEUE__HEARTBEAT_MS", "500")
        .env("SWITCHYARD__QUEUE__REAPER_INTERVAL_MS", "250")
        .env("SWITCHYARD__WORKER__NAME", name)
        .env("SWITCHYARD__TELEMETRY__LOG_FORMAT", "json")
        .env("SWITCHYARD__TELEMETRY__LOG_LEVEL", "info")
        .env_remove("SWITCHYARD_ADMIN_PASSWORD");
    cmd
}

const PRIMARY_SETTINGS: &[&str] = &["-c", "wal_level=replica", "-c", "max_wal_senders=5"];

fn postgres_cmd(
    tools: &Tools,
    ids: Option<(u32, u32)>,
    data: &Path,
    port: u16,
    sockets: &Path,
    extra: &[&str],
) -> Command {
    let mut cmd = pg_command(tools, "postgres", ids);
    cmd.arg("-D")
        .arg(data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(sockets)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=300",
            "-c",
            "fsync=off",
        ])
        .args(extra);
    cmd
}

fn pg_ready(tools: &Tools, port: u16) -> bool {
    let mut cmd = pg_command(tools, "pg_isready", None);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"]);
    cmd.status().is_ok_and(|s| s.success())
}

fn redis_cmd(tools: &Tools, dir: &Path, port: u16, replica_of: Option<u16>) -> Command {
    let mut cmd = Command::new(&tools.redis_server);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir);
    if let Some(primary) = replica_of {
        cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
    }
    cmd
}

fn start_cluster(tools: &Tools) -> Cluster {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut taken = HashSet::new();
    let mut cluster = Cluster {
        pg_primary: spare_port(&mut taken),
        pg_replica: spare_port(&mut taken),
        redis_primary: spare_port(&mut taken),
        redis_replica: spare_port(&mut taken),
        nginx_http: spare_port(&mut taken),
        nginx_tls: spare_port(&mut taken),
        api_ports: (0..3).map(|_| spare_port(&mut taken)).collect(),
        procs: Vec::new(),
        pg_ids: postgres_ids(),
        dir,
    };
    let redis_primary = cluster.redis_primary;
    let base = cluster.dir.path().to_path_buf();
    let ids = cluster.pg_ids;

    // PostgreSQL primary, then a streaming replica cloned from it.
    let (primary_dir, replica_dir, sockets) =
        (base.join("pg1"), base.join("pg2"), base.join("pgsock"));
    pg_dir(&primary_dir, ids);
    pg_dir(&replica_dir, ids);
    pg_dir(&sockets, ids);
    let mut initdb = pg_command(tools, "initdb", ids);
    initdb
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&primary_dir);
    run(initdb, "initdb");
    let postgres = |data: &Path, port: u16, extra: &[&str]| {
        postgres_cmd(tools, ids, data, port, &sockets, extra)
    };
    let pg_ready = |port: u16| pg_ready(tools, port);
    let mut primary = Proc::spawn(
        "postgres-primary",
        postgres(&primary_dir, cluster.pg_primary, PRIMARY_SETTINGS),
        &base,
    );
    primary.gentle = Some("-QUIT");
    cluster.procs.push(primary);
    wait_until("the PostgreSQL primary", STARTUP, || {
        pg_ready(cluster.pg_primary)
    });
    let mut basebackup = pg_command(tools, "pg_basebackup", ids);
    basebackup
        .args(["-h", "127.0.0.1", "-p", &cluster.pg_primary.to_string()])
        .args(["-U", "postgres", "-R", "-X", "stream", "--no-sync", "-D"])
        .arg(&replica_dir);
    run(basebackup, "pg_basebackup");
    let mut replica = Proc::spawn(
        "postgres-replica",
        postgres(&replica_dir, cluster.pg_replica, &["-c", "hot_standby=on"]),
        &base,
    );
    replica.gentle = Some("-QUIT");
    cluster.procs.push(replica);
    wait_until("the PostgreSQL replica", STARTUP, || {
        pg_ready(cluster.pg_replica)
    });

    // Redis primary and replica.
    let redis = |port: u16, replica_of: Option<u16>| redis_cmd(tools, &base, port, replica_of);
    cluster.procs.push(Proc::spawn(
        "redis-primary",
        redis(redis_primary, None),
        &base,
    ));
    cluster.procs.push(Proc::spawn(
        "redis-replica",
        redis(cluster.redis_replica, Some(redis_primary)),
        &base,
    ));
    wait_until("Redis", STARTUP, || {
        tcp_open(redis_primary) && tcp_open(cluster.redis_replica)
    });

    // The API servers (the first creates the admin user) and the workers.
    let mut first = switchyard(&cluster, "api1", "api", Some(cluster.api_ports[0]));
    first.env("SWITCHYARD_ADMIN_PASSWORD", PASSWORD);
    cluster.procs.push(Proc::spawn("api1", first, &base));
    let api1 = cluster.api_ports[0];
    wait_until("api1", STARTUP, || http_ok(api1, "/readyz"));
    for (i, port) in cluster.api_ports.clone().into_iter().enumerate().skip(1) {
        let name = format!("api{}", i + 1);
        let cmd = switchyard(&cluster, &name, "api", Some(port));
        cluster.procs.push(Proc::spawn(&name, cmd, &base));
    }
    for name in ["worker1", "worker2"] {
        let cmd = switchyard(&cluster, name, "worker", None);
        cluster.procs.push(Proc::spawn(name, cmd, &base));
    }
    for port in cluster.api_ports.clone() {
        wait_until("the API servers", STARTUP, || http_ok(port, "/readyz"));
    }
    for name in ["worker1", "worker2"] {
        let log = base.join(format!("{name}.log"));
        wait_until(name, STARTUP, || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("switchyard worker is up"))
        });
    }

    // NGINX with the shipped configuration, pointed at this cluster.
    let tls = base.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let mut cert = Command::new(&tools.openssl);
    cert.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
    ])
    .args(["-subj", "/CN=localhost", "-keyout"])
    .arg(tls.join("key.pem"))
    .arg("-out")
    .arg(tls.join("cert.pem"));
    run(cert, "openssl (self-signed certificate)");
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx.conf"),
    )
    .expect("deploy/nginx.conf");
    let mut conf = shipped.clone();
    for (i, port) in cluster.api_ports.iter().enumerate() {
        conf = conf.replace(&format!("api{}:8080", i + 1), &format!("127.0.0.1:{port}"));
    }
    conf = conf
        .replace(
            "listen 80;",
            &format!("listen 127.0.0.1:{};", cluster.nginx_http),
        )
        .replace(
            "listen 443 ssl",
            &format!("listen 127.0.0.1:{} ssl", cluster.nginx_tls),
        )
        .replace("/etc/nginx/tls/", &format!("{}/", tls.display()));
    for needle in ["api1:8080", "listen 80;", "listen 443", "/etc/nginx/tls/"] {
        assert!(
            !conf.contains(needle) && shipped.contains(needle),
            "deploy/nginx.conf keeps `{needle}` for the test to replace"
        );
    }
    let conf_path = base.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut nginx = Command::new(&tools.nginx);
    nginx
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(&base)
        .arg("-g")
        .arg(format!("pid {}/nginx.pid;", base.display()));
    let mut nginx = Proc::spawn("nginx", nginx, &base);
    // SIGTERM: the master stops its workers (SIGKILL would orphan them).
    nginx.gentle = Some("-TERM");
    cluster.procs.push(nginx);
    let http = cluster.nginx_http;
    wait_until("nginx", STARTUP, || http_ok(http, "/healthz"));
    cluster
}

// ---------------------------------------------------------------------------------------
// Clients

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(CLIENTS * 2)
        .build()
        .unwrap()
}

/// Submits with an idempotency key, retrying (same key) until the server answers: a
/// request cut off by a killed server may or may not have been committed.
async fn submit(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> (String, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let sent = http
            .post(format!("{base}/api/v1/tasks"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                let upstream = r
                    .headers()
                    .get("x-switchyard-upstream")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let task: Value = r.json().await.expect("task json");
                let id = task["id"].as_str().expect("task id").to_owned();
                return (id, upstream);
            }
            Ok(r) if r.status().is_server_error() => {}
            Ok(r) => panic!("submit answered {}: {:?}", r.status(), r.text().await),
            Err(_) => {}
        }
        assert!(Instant::now() < deadline, "could not submit {key}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Follows one task over SSE until its final event, reconnecting (with `Last-Event-ID`)
/// to another live API server if its server dies. Returns the final event.
async fn follow(
    api_ports: Vec<u16>,
    prefer: u16,
    dead: Arc<Mutex<HashSet<u16>>>,
    token: String,
    task_id: String,
) -> Value {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut last_seq: Option<u64> = None;
    let mut reconnects = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "follower of {task_id} never saw its final event"
        );
        let port = {
            let dead = dead.lock().unwrap();
            if dead.contains(&prefer) {
                *api_ports.iter().find(|p| !dead.contains(p)).unwrap()
            } else {
                prefer
            }
        };
        let mut req = http
            .get(format!(
                "http://127.0.0.1:{port}/api/v1/tasks/{task_id}/events"
            ))
            .bearer_auth(&token);
        if let Some(seq) = last_seq {
            req = req.header("last-event-id", seq.to_string());
        }
        let resp = match req.send().await {
            Ok(r) if r.status().is_success() => r,
            _ => {
                reconnects += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        loop {
            // A stream that goes quiet (its server froze or died) is replaced.
            let chunk = match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
                Ok(Some(Ok(c))) => c,
                _ => break,
            };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                let Some(data) = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("data:").map(str::trim))
                else {
                    continue;
                };
                let Ok(event) = serde_json::from_str::<Value>(data) else {
                    continue;
                };
                if let Some(seq) = event["seq"].as_u64() {
                    last_seq = Some(last_seq.map_or(seq, |l| l.max(seq)));
                }
                let terminal = matches!(
                    event["status"].as_str(),
                    Some("succeeded" | "failed" | "dead" | "cancelled")
                );
                if terminal {
                    let mut event = event;
                    event["reconnects"] = json!(reconnects);
                    return event;
                }
            }
        }
        reconnects += 1;
    }
}

/// Submits `n` echo tasks from `CLIENTS` concurrent clients, keys `{prefix}-{i}`.
async fn submit_many(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    prefix: &str,
    n: usize,
    done: Option<Arc<AtomicUsize>>,
) {
    let next = Arc::new(AtomicUsize::new(0));
    let done = done.unwrap_or_default();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, token, prefix) = (
            http.clone(),
            base.to_owned(),
            token.to_owned(),
            prefix.to_owned(),
        );
        let (next, done) = (next.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let body = json!({"agent": "echo", "input": {"i": i}});
                submit(&http, &base, &token, &format!("{prefix}-{i}"), &body).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for c in clients {
        c.await.expect("client");
    }
}

/// Waits until the server's `/readyz` reports `status`.
async fn wait_for_readiness(http: &reqwest::Client, port: u16, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && let Ok(body) = r.json::<Value>().await
        {
            if body["status"] == status {
                return;
            }
            last = body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("/readyz on :{port} never said {status:?}; last: {last}");
}

fn upstream_port(upstream: Option<&str>) -> Option<u16> {
    // `127.0.0.1:PORT`, or a list (`a, b`) when NGINX retried: the last one answered.
    upstream?
        .rsplit(", ")
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()
}

fn websocket_upgrade_status(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /api/v1/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

// ---------------------------------------------------------------------------------------
// The test

#[test]
fn scale_out_survives_sigkill_of_an_api_server_and_a_worker() {
    let Some(tools) = tools() else { return };
    let started = Instant::now();
    let mut cluster = start_cluster(&tools);
    eprintln!("cluster up in {:.1?}", started.elapsed());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{}", cluster.nginx_http);
    let http = client();

    // TLS termination and WebSocket upgrade through NGINX.
    if let Some(curl) = &tools.curl {
        let out = Command::new(curl)
            .args([
                "-sk",
                &format!("https://127.0.0.1:{}/readyz", cluster.nginx_tls),
            ])
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(body.contains("\"postgres\""), "HTTPS through NGINX: {body}");
    }
    let status = websocket_upgrade_status(cluster.nginx_http);
    assert!(
        status.contains(" 101 "),
        "WebSocket upgrade through NGINX: {status}"
    );

    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let (followers, submitted, token, dead) = runtime.block_on(async {
        // A session made through NGINX works on every server: sessions live in Redis.
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": "admin@localhost", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().expect("token").to_owned();
        for port in &cluster.api_ports {
            let me = http
                .get(format!("http://127.0.0.1:{port}/api/v1/auth/me"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert!(me.status().is_success(), "the session is valid on :{port}");
        }

        // Followed tasks: a few seconds long, followed on another server than the one
        // that accepted them.
        let dead: Arc<Mutex<HashSet<u16>>> = Arc::default();
        let mut followers = Vec::new();
        for i in 0..FOLLOWED_TASKS {
            let key = format!("{run_id}-follow-{i}");
            let body = json!({"agent": "sleep", "input": {"ms": 2_500 + 100 * i}});
            let (id, upstream) = submit(&http, &base, &token, &key, &body).await;
            let accepted = upstream_port(upstream.as_deref()).expect("X-Switchyard-Upstream");
            let ports = cluster.api_ports.clone();
            let accepted_at = ports
                .iter()
                .position(|p| *p == accepted)
                .expect("a known server");
            // One of the two other servers; some follow api2, which is killed mid-run.
            let other = ports[(accepted_at + 1 + i % 2) % 3];
            followers.push(tokio::spawn(follow(
                ports,
                other,
                dead.clone(),
                token.clone(),
                id,
            )));
        }

        // The load, through NGINX, with an API server and a worker killed a third in.
        let next = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (http, base, token, run_id) =
                (http.clone(), base.clone(), token.clone(), run_id.clone());
            let (next, done) = (next.clone(), done.clone());
            clients.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ECHO_TASKS {
                        return;
                    }
                    let key = format!("{run_id}-echo-{i}");
                    submit(
                        &http,
                        &base,
                        &token,
                        &key,
                        &json!({"agent": "echo", "input": {"i": i}}),
                    )
                    .await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        while done.load(Ordering::Relaxed) < ECHO_TASKS / 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        dead.lock().unwrap().insert(cluster.api_ports[1]);
        cluster.proc_mut("api2").kill9();
        cluster.proc_mut("worker1").kill9();
        eprintln!(
            "SIGKILLed api2 and worker1 after {} submissions ({:.1?} in)",
            done.load(Ordering::Relaxed),
            started.elapsed()
        );
        for c in clients {
            c.await.expect("client");
        }
        eprintln!(
            "all {ECHO_TASKS} submissions acknowledged ({:.1?} in)",
            started.elapsed()
        );
        let mut seen = Vec::new();
        for f in followers {
            seen.push(
                tokio::time::timeout(Duration::from_secs(180), f)
                    .await
                    .expect("follower finished")
                    .expect("follower"),
            );
        }
        (seen, done.load(Ordering::Relaxed), token, dead)
    });
    assert_eq!(submitted, ECHO_TASKS);
    // Exactly one worker held the cluster duties; if it was the one killed, the other
    // took them over.
    let leads = |name: &str| {
        std::fs::read_to_string(cluster.dir.path().join(format!("{name}.log")))
            .is_ok_and(|t| t.contains("now runs the cluster duties"))
    };
    if leads("worker1") {
        wait_until(
            "the surviving worker to take the duties over",
            STARTUP,
            || leads("worker2"),
        );
        eprintln!("worker1 held the cluster duties; worker2 took them over");
    } else {
        assert!(leads("worker2"), "one worker runs the cluster duties");
    }
    for api in ["api1", "api2", "api3"] {
        assert!(!leads(api), "API servers never run the cluster duties");
    }

    for event in &followers {
        assert_eq!(event["status"], "succeeded", "final event: {event}");
        assert_eq!(event["kind"], "result", "final event: {event}");
    }
    let resumed = followers
        .iter()
        .filter(|e| e["reconnects"].as_u64().unwrap_or(0) > 0)
        .count();
    eprintln!("every follower saw its final event ({resumed} resumed on another server)");

    // Poison input: valid work (with U+0000 in its content) from every client, beside one
    // client sending values no server may store. Every valid task is acknowledged (and
    // finishes once, checked with the rest below); every bad one is a 4xx.
    runtime.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (http, base, token, run_id, next) = (
                http.clone(),
                base.clone(),
                token.clone(),
                run_id.clone(),
                next.clone(),
            );
            clients.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= POISON_TASKS {
                        return;
                    }
                    // Sent once: no server is being killed now, so any 5xx is a fault.
                    let r = http
                        .post(format!("{base}/api/v1/tasks"))
                        .bearer_auth(&token)
                        .header("idempotency-key", format!("{run_id}-poison-{i}"))
                        .json(&json!({"agent": "echo", "input": {"i": i, "text": "a\u{0}b"}}))
                        .send()
                        .await
                        .expect("the server answers");
                    assert_eq!(
                        r.status(),
                        reqwest::StatusCode::CREATED,
                        "{:?}",
                        r.text().await
                    );
                }
            }));
        }
        let bad = [
            json!({"agent": "echo\u{0}"}),
            json!({"agent": "echo", "idempotency_key": "\u{0}"}),
            json!({"agent": "echo", "delay_ms": u64::MAX}),
            json!({"tasks": [{"agent": "echo"}, {"agent": "\u{0}"}]}),
        ];
        for i in 0..200 {
            let body = &bad[i % bad.len()];
            let path = if body.get("tasks").is_some() {
                "tasks/batch"
            } else {
                "tasks"
            };
            let r = http
                .post(format!("{base}/api/v1/{path}"))
                .bearer_auth(&token)
                .json(body)
                .send()
                .await
                .expect("the server answers");
            assert!(
                r.status().is_client_error(),
                "{body} answered {}",
                r.status()
            );
        }
        for c in clients {
            c.await.expect("client");
        }
    });
    eprintln!(
        "{POISON_TASKS} valid tasks acknowledged beside 200 bad ones ({:.1?} in)",
        started.elapsed()
    );

    // Redis goes away: the API keeps serving (sessions from the database, events over
    // PostgreSQL NOTIFY), says so in /readyz, and recovers when Redis returns (empty).
    let survivors = [cluster.api_ports[0], cluster.api_ports[2]];
    cluster.proc_mut("redis-primary").kill9();
    runtime.block_on(async {
        for port in survivors {
            wait_for_readiness(&http, port, "degraded").await;
        }
        let relogin = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": "admin@localhost", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(relogin.status().is_success(), "login works without Redis");
        let mut followers = Vec::new();
        for i in 0..DEGRADED_FOLLOWED {
            let key = format!("{run_id}-degraded-follow-{i}");
            let body = json!({"agent": "sleep", "input": {"ms": 1_500}});
            let (id, upstream) = submit(&http, &base, &token, &key, &body).await;
            let accepted = upstream_port(upstream.as_deref()).expect("X-Switchyard-Upstream");
            let other = *survivors.iter().find(|p| **p != accepted).unwrap();
            followers.push(tokio::spawn(follow(
                cluster.api_ports.clone(),
                other,
                dead.clone(),
                token.clone(),
                id,
            )));
        }
        submit_many(
            &http,
            &base,
            &token,
            &format!("{run_id}-degraded"),
            DEGRADED_TASKS,
            None,
        )
        .await;
        for f in followers {
            let event = tokio::time::timeout(Duration::from_secs(120), f)
                .await
                .expect("follower finished")
                .expect("follower");
            assert_eq!(
                event["status"], "succeeded",
                "final event without Redis: {event}"
            );
        }
    });
    eprintln!(
        "served {DEGRADED_TASKS} tasks and {DEGRADED_FOLLOWED} followers without Redis ({:.1?} in)",
        started.elapsed()
    );
    let redis_again = redis_cmd(&tools, cluster.dir.path(), cluster.redis_primary, None);
    let redis_again = Proc::spawn("redis-primary-restarted", redis_again, cluster.dir.path());
    cluster.procs.push(redis_again);
    runtime.block_on(async {
        for port in survivors {
            wait_for_readiness(&http, port, "ok").await;
            let me = http
                .get(format!("http://127.0.0.1:{port}/api/v1/auth/me"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert!(
                me.status().is_success(),
                "the session outlived the Redis restart"
            );
        }
        // Events cross servers again after the recovery.
        for i in 0..2 {
            let key = format!("{run_id}-recovered-follow-{i}");
            let body = json!({"agent": "sleep", "input": {"ms": 1_000}});
            let (id, upstream) = submit(&http, &base, &token, &key, &body).await;
            let accepted = upstream_port(upstream.as_deref()).expect("X-Switchyard-Upstream");
            let other = *survivors.iter().find(|p| **p != accepted).unwrap();
            let event = tokio::time::timeout(
                Duration::from_secs(120),
                follow(
                    cluster.api_ports.clone(),
                    other,
                    dead.clone(),
                    token.clone(),
                    id,
                ),
            )
            .await
            .expect("follower finished");
            assert_eq!(
                event["status"], "succeeded",
                "final event after recovery: {event}"
            );
        }
    });
    eprintln!(
        "Redis is back; degraded mode ended ({:.1?} in)",
        started.elapsed()
    );

    // PostgreSQL restarts under load: every process reconnects, every acknowledged task
    // is kept, and clients retrying with their idempotency keys get each task once.
    let done = Arc::new(AtomicUsize::new(0));
    let load = {
        let (http, base, token, done) = (http.clone(), base.clone(), token.clone(), done.clone());
        let prefix = format!("{run_id}-restart");
        runtime.spawn(async move {
            submit_many(&http, &base, &token, &prefix, RESTART_TASKS, Some(done)).await;
        })
    };
    wait_until("submissions before the restart", STARTUP, || {
        done.load(Ordering::Relaxed) >= RESTART_TASKS / 3
    });
    cluster.proc_mut("postgres-primary").stop();
    let sockets = cluster.dir.path().join("pgsock");
    let primary = postgres_cmd(
        &tools,
        cluster.pg_ids,
        &cluster.dir.path().join("pg1"),
        cluster.pg_primary,
        &sockets,
        PRIMARY_SETTINGS,
    );
    let mut primary = Proc::spawn("postgres-primary-restarted", primary, cluster.dir.path());
    primary.gentle = Some("-QUIT");
    cluster.procs.push(primary);
    eprintln!(
        "restarted PostgreSQL after {} submissions ({:.1?} in)",
        done.load(Ordering::Relaxed),
        started.elapsed()
    );
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(150), load)
            .await
            .expect("submissions finished after the restart")
            .expect("load");
    });

    // Every task finished exactly once, checked in the database.
    runtime.block_on(async {
        use sqlx::Connection;
        let mut db = sqlx::PgConnection::connect(&cluster.primary_url())
            .await
            .expect("connect to the primary");
        let pattern = format!("{run_id}-%");
        let expected =
            (ECHO_TASKS + FOLLOWED_TASKS + POISON_TASKS + DEGRADED_TASKS + DEGRADED_FOLLOWED + 2 + RESTART_TASKS)
                as i64;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let finished: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM tasks WHERE idempotency_key LIKE $1 \
                 AND status IN ('succeeded', 'failed', 'dead', 'cancelled')",
            )
            .bind(&pattern)
            .fetch_one(&mut db)
            .await
            .unwrap();
            if finished == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {finished} of {expected} tasks finished"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // A task's succeeded attempt is described by its row (`attempt`), never recorded in
        // `task_attempts`, which holds every earlier attempt once: a task that succeeded
        // twice, or an attempt recorded twice, breaks one of the two counts.
        let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT t.idempotency_key, t.status, t.attempt, \
                    (SELECT count(*) FROM task_attempts a WHERE a.task_id = t.id AND a.status = 'succeeded'), \
                    (SELECT count(*) FROM task_attempts a WHERE a.task_id = t.id) \
             FROM tasks t WHERE t.idempotency_key LIKE $1",
        )
        .bind(&pattern)
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert_eq!(rows.len() as i64, expected, "one task per idempotency key");
        let mut by_status: HashMap<String, usize> = HashMap::new();
        let mut retried = 0;
        for (key, status, attempt, recorded_succeeded, recorded) in &rows {
            *by_status.entry(status.clone()).or_default() += 1;
            assert_eq!(status, "succeeded", "{key}");
            assert_eq!(*recorded_succeeded, 0, "{key} succeeded exactly once");
            assert_eq!(
                *recorded,
                attempt - 1,
                "{key}: every attempt before the one that succeeded is recorded once"
            );
            retried += usize::from(*attempt > 1);
        }
        eprintln!(
            "{} tasks succeeded exactly once; {retried} needed a second attempt",
            rows.len()
        );

        // The replica streams from the primary.
        let replica_url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.pg_replica);
        let mut replica = sqlx::PgConnection::connect(&replica_url).await.expect("replica");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM tasks WHERE idempotency_key LIKE $1")
                    .bind(&pattern)
                    .fetch_one(&mut replica)
                    .await
                    .unwrap();
            if n == expected {
                break;
            }
            assert!(Instant::now() < deadline, "the replica has {n} of {expected} tasks");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&mut replica)
            .await
            .unwrap();
        assert!(in_recovery, "the replica is a streaming standby");
    });

    // The Redis replica follows its primary.
    if let Some(cli) = &tools.redis_cli {
        let out = Command::new(cli)
            .args([
                "-p",
                &cluster.redis_replica.to_string(),
                "info",
                "replication",
            ])
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&out.stdout);
        assert!(info.contains("master_link_status:up"), "{info}");
    }

    // The survivors are healthy.
    for port in [cluster.api_ports[0], cluster.api_ports[2]] {
        assert!(http_ok(port, "/readyz"), "api on :{port} is ready");
    }
    eprintln!("cluster test passed in {:.1?}", started.elapsed());
    drop(cluster);
}

/// `deploy/docker-compose.yml` cannot run here (no Docker): at least every setting it
/// passes must be one the binary knows, and it must use the nginx.conf tested above.
#[test]
fn deploy_files_agree_with_the_binary() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let compose = std::fs::read_to_string(deploy.join("docker-compose.yml")).unwrap();
    let generated = switchyard::config::commented_toml().unwrap();
    let mut known = HashSet::new();
    let mut section = String::new();
    for line in generated.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, _)) = line.trim_start_matches("# ").split_once(" = ") {
            known.insert(if section.is_empty() {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            });
        }
    }
    let mut checked = 0;
    for word in compose.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(var) = word.strip_prefix("SWITCHYARD__") {
            let key = var.to_lowercase().replace("__", ".");
            assert!(
                known.contains(&key),
                "docker-compose.yml sets unknown {word}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "the compose file configures the servers");
    for needle in [
        "./nginx.conf:",
        "\"--role\", \"api\"",
        "\"--role\", \"worker\"",
        "--replicaof",
    ] {
        assert!(compose.contains(needle), "docker-compose.yml has {needle}");
    }
    let dockerfile = std::fs::read_to_string(deploy.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("web/dist"),
        "the image embeds the web UI"
    );
}
