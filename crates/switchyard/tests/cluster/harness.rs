//! The cluster's processes: finding the tools (PostgreSQL, Redis, NGINX, OpenSSL),
//! starting each process on a spare loopback port with its log in the cluster's directory,
//! waiting for it, and stopping it (in reverse order, even on panic, with the logs' last
//! lines printed when the test failed).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The first API server creates the admin user with this password.
pub const PASSWORD: &str = "cluster-test-password";
/// How long any process may take to come up.
pub const STARTUP: Duration = Duration::from_secs(90);

// Tools and processes

pub struct Tools {
    pg_bin: PathBuf,
    redis_server: PathBuf,
    nginx: PathBuf,
    openssl: PathBuf,
    pub curl: Option<PathBuf>,
    pub redis_cli: Option<PathBuf>,
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
pub fn tools() -> Option<Tools> {
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
pub struct Proc {
    name: String,
    child: Child,
    /// Sent first on drop (e.g. SIGQUIT: PostgreSQL's immediate shutdown), then SIGKILL.
    pub gentle: Option<&'static str>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, logs: &Path) -> Proc {
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

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// The gentle signal (if any), a bounded wait, then SIGKILL.
    pub fn stop(&mut self) {
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

pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tcp_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

pub fn http_ok(port: u16, path: &str) -> bool {
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

// The cluster

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub pg_ids: Option<(u32, u32)>,
    pub pg_primary: u16,
    pub pg_replica: u16,
    pub redis_primary: u16,
    pub redis_replica: u16,
    pub nginx_http: u16,
    pub nginx_tls: u16,
    pub api_ports: Vec<u16>,
    /// Dropped last-to-first: switchyard processes, then nginx, then the services.
    pub procs: Vec<Proc>,
}

impl Cluster {
    pub fn primary_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.pg_primary)
    }

    pub fn proc_mut(&mut self, name: &str) -> &mut Proc {
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
    let mut cmd = cluster.command(&["serve", "--role", role]);
    cmd.arg("--data-dir")
        .arg(cluster.dir.path().join(format!("data-{name}")));
    if let Some(port) = listen {
        cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
    }
    cmd.env("SWITCHYARD__WORKER__NAME", name);
    cmd
}

impl Cluster {
    /// `switchyard ARGS` configured as the cluster's servers are (database, Redis, files).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(args);
        deployment_env(self, &mut cmd);
        cmd
    }
}

fn deployment_env(cluster: &Cluster, cmd: &mut Command) {
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
        .env("SWITCHYARD__TELEMETRY__LOG_FORMAT", "json")
        .env("SWITCHYARD__TELEMETRY__LOG_LEVEL", "info")
        .env_remove("SWITCHYARD_ADMIN_PASSWORD");
    // Files: S3-compatible storage when the test has it (CI starts one), else a directory
    // every process of this one-machine cluster shares.
    match switchyard::testing::s3_settings() {
        Some(s3) => {
            let prefix = cluster
                .dir
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            cmd.env(
                "SWITCHYARD__FILES__URL",
                format!("s3://{}/{prefix}", s3.bucket),
            )
            .env("SWITCHYARD__FILES__S3_ENDPOINT", s3.endpoint)
            .env("SWITCHYARD__FILES__S3_REGION", "us-east-1")
            .env("SWITCHYARD__FILES__S3_ACCESS_KEY_ID", "test")
            .env("SWITCHYARD__FILES__S3_SECRET_ACCESS_KEY", "test");
        }
        None => {
            cmd.env("SWITCHYARD__FILES__URL", cluster.dir.path().join("files"));
        }
    }
}

pub const PRIMARY_SETTINGS: &[&str] = &["-c", "wal_level=replica", "-c", "max_wal_senders=5"];

pub fn postgres_cmd(
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

pub fn redis_cmd(tools: &Tools, dir: &Path, port: u16, replica_of: Option<u16>) -> Command {
    let mut cmd = Command::new(&tools.redis_server);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir);
    if let Some(primary) = replica_of {
        cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
    }
    cmd
}

pub fn start_cluster(tools: &Tools) -> Cluster {
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
