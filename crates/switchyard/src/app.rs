//! Wiring: choose the backends from the configuration, start the engine, the built-in
//! worker runtime and the HTTP server for the process's role, and shut them down in
//! order (stop accepting, finish requests, drain running tasks, flush results).

use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use switchyard_api::AppState;
use switchyard_cache::{
    ClusterCache, FailoverBus, LocalBus, MemoryCache, MemoryLimiter, RedisBus, RedisCache,
    RedisSettings,
};
use switchyard_core::cache::{Cache, EventBus};
use switchyard_core::files::ObjectStore;
use switchyard_core::flow::RateLimiter;
use switchyard_core::store::{Leadership, SessionStore, SoleLeader, Store};
use switchyard_engine::backups::BackupTarget;
use switchyard_engine::{Backends, Duties, Engine, EngineConfig};
use switchyard_store::{PgBus, PgLeadership, PgSettings, PgStore, SqliteStore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// What a `serve` process does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The HTTP API only (stateless; scale out behind a load balancer).
    Api,
    /// Runs built-in agents and contends for the cluster duties; no HTTP API.
    Worker,
    /// Both.
    All,
}

impl Role {
    fn serves_http(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }

    fn runs_work(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

/// Holds the data directory for one process: two servers on one SQLite file would
/// corrupt each other's view of running work.
pub struct DataDirLock {
    _file: File,
}

fn lock_data_dir(config: &Config) -> anyhow::Result<DataDirLock> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let path = config.data_dir.join("switchyard.lock");
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another Switchyard process is using {}; stop it or choose another --data-dir",
            config.data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("cannot lock the data directory"),
    }
}

/// The database and caches, chosen from the configuration.
pub struct OpenBackends {
    pub backends: Backends,
    /// Embedded mode: this process owns all state, so nothing else can be running tasks.
    pub single_node: bool,
    _lock: Option<DataDirLock>,
}

/// The NOTIFY channel of the PostgreSQL event bus.
const PG_BUS_CHANNEL: &str = "switchyard_bus";

/// The database and what comes with it: the database-backed bus and leader election.
struct Database {
    store: Arc<dyn Store>,
    lock: Option<DataDirLock>,
    bus: Arc<dyn EventBus>,
    leader: Arc<dyn Leadership>,
}

async fn open_database(config: &Config, url: &str, shown: &str) -> anyhow::Result<Database> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let lock = lock_data_dir(config)?;
        let path = std::path::Path::new(path);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let store = SqliteStore::open(path, config.database.sqlite_durability)
            .await
            .with_context(|| format!("cannot open the database at {}", path.display()))?;
        store.migrate().await.context("database migration failed")?;
        Ok(Database {
            store: Arc::new(store),
            lock: Some(lock),
            bus: Arc::new(LocalBus::default()),
            leader: Arc::new(SoleLeader),
        })
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let settings = PgSettings {
            url: url.to_owned(),
            replica_url: config.database.replica_url.clone(),
            max_connections: config.database.max_connections,
            schema: None,
        };
        let store = connect_postgres(settings, shown).await?;
        store.migrate().await.context("database migration failed")?;
        let bus = PgBus::start(&store, PG_BUS_CHANNEL)?;
        let leader = Arc::new(PgLeadership::new(&store)?);
        Ok(Database {
            store: Arc::new(store),
            lock: None,
            bus,
            leader,
        })
    } else {
        bail!("unsupported database.url {shown:?}: use sqlite://PATH or postgres://…");
    }
}

pub async fn open_backends(config: &Config) -> anyhow::Result<OpenBackends> {
    let url = config.database_url();
    let shown = crate::config::redact_url(&url);
    let Database {
        store,
        lock,
        bus: db_bus,
        leader,
    } = open_database(config, &url, &shown).await?;
    let single_node = lock.is_some();
    let sessions: Arc<dyn SessionStore> = store.clone();
    let mut limiter: Option<Arc<dyn RateLimiter>> = None;
    let (cache, bus): (Arc<dyn Cache>, Arc<dyn EventBus>) = match &config.redis.url {
        Some(redis_url) => {
            let settings = RedisSettings {
                url: redis_url.clone(),
                prefix: config.redis.prefix.clone(),
            };
            let redis = Arc::new(RedisCache::new(&settings)?);
            limiter = Some(redis.clone());
            let cache = ClusterCache::new(Some(redis), sessions);
            let redis_bus = RedisBus::start(&settings).await?;
            let bus = FailoverBus::new(redis_bus, db_bus, cache.health());
            (Arc::new(cache), Arc::new(bus))
        }
        // One process owns everything: in-process sessions, caches and rate limits are exact.
        None if single_node => {
            limiter = Some(Arc::new(MemoryLimiter::default()));
            (Arc::new(MemoryCache::default()), db_bus)
        }
        // A cluster without Redis: sessions every server sees, from the database.
        None => (Arc::new(ClusterCache::new(None, sessions)), db_bus),
    };
    let objects = open_objects(config).await?;
    let backup_target = backup_target(config).await?;
    tracing::info!(
        database = %shown,
        replica = config.database.replica_url.is_some(),
        cache = cache.backend(),
        bus = bus.backend(),
        files = objects.backend(),
        "backends ready"
    );
    Ok(OpenBackends {
        backends: Backends {
            store,
            cache,
            bus,
            leader,
            limiter,
            objects,
            backup_target,
        },
        single_node,
        _lock: lock,
    })
}

/// The file storage of the configuration.
async fn open_objects(config: &Config) -> anyhow::Result<Arc<dyn ObjectStore>> {
    switchyard_files::open(
        config.files.url.as_deref(),
        &s3_options(config),
        &config.data_dir,
    )
    .await
    .map_err(anyhow::Error::new)
    .context("cannot open file storage")
}

/// Where `backup.target` says backups go: a directory, or S3-compatible storage (with
/// the `files.s3_*` settings) that archives reach through a spool in the data directory.
async fn backup_target(config: &Config) -> anyhow::Result<Option<Arc<BackupTarget>>> {
    let Some(target) = config.backup.target.as_deref() else {
        return Ok(None);
    };
    let target = if target.starts_with("s3://") {
        let objects = switchyard_files::open(Some(target), &s3_options(config), &config.data_dir)
            .await
            .map_err(anyhow::Error::new)
            .context("cannot open backup.target")?;
        BackupTarget::Objects {
            url: target.to_owned(),
            objects,
            spool: config.data_dir.join("backup-spool"),
        }
    } else {
        let dir = std::path::PathBuf::from(target.strip_prefix("file://").unwrap_or(target));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create backup.target {}", dir.display()))?;
        BackupTarget::Directory(dir)
    };
    Ok(Some(Arc::new(target)))
}

fn s3_options(config: &Config) -> switchyard_files::S3Options {
    switchyard_files::S3Options {
        endpoint: config.files.s3_endpoint.clone(),
        region: config.files.s3_region.clone(),
        access_key_id: config.files.s3_access_key_id.clone(),
        secret_access_key: config.files.s3_secret_access_key.clone(),
    }
}

/// The database and file storage for reading a backup beside running servers: no data
/// directory lock (SQLite takes readers beside its writer) and no migrations.
pub async fn open_for_backup(
    config: &Config,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn ObjectStore>)> {
    let url = config.database_url();
    let shown = crate::config::redact_url(&url);
    let store: Arc<dyn Store> = if let Some(path) = url.strip_prefix("sqlite://") {
        let path = std::path::Path::new(path);
        anyhow::ensure!(
            path.exists(),
            "there is no database at {} (set --data-dir or database.url)",
            path.display()
        );
        Arc::new(
            SqliteStore::open(path, config.database.sqlite_durability)
                .await
                .with_context(|| format!("cannot open the database at {}", path.display()))?,
        )
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The snapshot is read from the replica when there is one (see `begin_snapshot`).
        let settings = PgSettings {
            url: url.clone(),
            replica_url: config.database.replica_url.clone(),
            max_connections: 2,
            schema: None,
        };
        Arc::new(connect_postgres(settings, &shown).await?)
    } else {
        bail!("unsupported database.url {shown:?}: use sqlite://PATH or postgres://…");
    };
    Ok((store, open_objects(config).await?))
}

/// Connects, waiting (with backoff, up to a minute) for a server that is still starting:
/// processes of a cluster may start before their database.
async fn connect_postgres(settings: PgSettings, shown: &str) -> anyhow::Result<PgStore> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut delay = Duration::from_millis(200);
    loop {
        match PgStore::connect(settings.clone()).await {
            Ok(store) => return Ok(store),
            Err(e)
                if e.code == switchyard_core::ErrorCode::Unavailable
                    && tokio::time::Instant::now() + delay < deadline =>
            {
                tracing::warn!(database = %shown, error = %e, "PostgreSQL is not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("cannot connect to {shown}"));
            }
        }
    }
}

/// A running Switchyard process.
pub struct Running {
    pub engine: Arc<Engine>,
    /// Where the HTTP API listens, if this role serves it.
    pub addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<std::io::Result<()>>>,
    runtime: Option<JoinHandle<switchyard_core::Result<()>>>,
    backends: OpenBackends,
}

impl Running {
    /// The database the process runs on, for the binary's tools and for tests that read it
    /// directly (requests go through the engine).
    pub fn store(&self) -> &Arc<dyn switchyard_core::store::Store> {
        &self.backends.backends.store
    }
}

pub async fn start(config: &Config, role: Role) -> anyhow::Result<Running> {
    let connections = if role.serves_http() {
        Some(connection_settings(&config.server)?)
    } else {
        None
    };
    let opened = open_backends(config).await?;
    let engine_config = EngineConfig {
        queue: config.queue.clone(),
        auth: config.auth.clone(),
        monitoring: config.monitoring.clone(),
        files: config.files.clone(),
        backup: config.backup.clone(),
        agents: config.agents.clone(),
        audit: config.audit.clone(),
    };
    // Every role dispatches: worker roles to the built-in runtime, API roles to the remote
    // workers connected to them. Without consumers the dispatcher idles.
    let duties = Duties {
        dispatch: true,
        maintenance: role.runs_work(),
    };
    let engine = Engine::start(opened.backends.clone(), engine_config, duties)
        .await
        .context("engine start failed")?;
    record_sso_settings(&engine, &config.auth).await;
    if opened.single_node && role.runs_work() {
        let n = engine.recover_orphans().await?;
        if n > 0 {
            tracing::info!(
                tasks = n,
                "re-queued tasks that were running when the server last stopped"
            );
        }
        // Uploads in progress when the server last stopped will never finish.
        engine
            .files()
            .collect(switchyard_core::Timestamp::now())
            .await?;
    }
    let shutdown = CancellationToken::new();
    if role.runs_work() {
        engine
            .monitoring()
            .builtin_workers
            .store(1, std::sync::atomic::Ordering::Relaxed);
    }
    let runtime = role.runs_work().then(|| {
        let runtime_config = switchyard_worker::RuntimeConfig {
            name: config.worker.name.clone(),
            slots: config.worker.slots.max(1),
            drain_timeout: Duration::from_secs(config.worker.drain_timeout_s),
            environment: switchyard_worker::kinds::HostEnvironment::new(
                crate::config::host_environment(),
            ),
        };
        tokio::spawn(switchyard_worker::run(
            engine.clone(),
            runtime_config,
            shutdown.clone(),
        ))
    });
    let (server, addr) = if let Some(connections) = connections {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let addr = listener.local_addr()?;
        let state = AppState::new(engine.clone(), config.server.clone(), shutdown.clone());
        let app = switchyard_api::app(state, Some(crate::ui::router()));
        let stop = shutdown.clone();
        let server = tokio::spawn(switchyard_api::serve(
            listener,
            app,
            connections,
            engine.monitoring().metrics.clone(),
            async move { stop.cancelled().await },
        ));
        (Some(server), Some(addr))
    } else {
        (None, None)
    };
    Ok(Running {
        engine,
        addr,
        shutdown,
        server,
        runtime,
        backends: opened,
    })
}

/// The HTTP server's connection bound and timeouts. Raises the open-file limit first: the
/// bound, configured or derived, must fit in it.
fn connection_settings(
    server: &switchyard_api::ServerConfig,
) -> anyhow::Result<switchyard_api::ConnectionSettings> {
    for (key, ms) in [
        (
            "server.header_read_timeout_ms",
            server.header_read_timeout_ms,
        ),
        ("server.idle_timeout_ms", server.idle_timeout_ms),
        ("server.body_read_timeout_ms", server.body_read_timeout_ms),
    ] {
        anyhow::ensure!(ms > 0, "{key} must be at least 1");
    }
    let open_files = crate::open_files::raise_limit();
    let fitting = crate::open_files::max_connections_for(open_files);
    let max_connections = match server.max_connections {
        Some(0) => bail!("server.max_connections must be at least 1"),
        Some(n) => {
            if n > fitting {
                tracing::warn!(
                    max_connections = n,
                    open_file_limit = open_files,
                    fitting,
                    "server.max_connections is more than the open-file limit leaves room for: \
                     with that many connections the process can run out of file descriptors"
                );
            }
            n
        }
        None => fitting,
    };
    tracing::debug!(
        max_connections,
        open_file_limit = open_files,
        "HTTP connection bound"
    );
    Ok(switchyard_api::ConnectionSettings {
        max_connections,
        header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(server.idle_timeout_ms),
    })
}

impl Running {
    /// Graceful shutdown: stop accepting, finish requests, drain running tasks, flush results.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(server) = self.server {
            match tokio::time::timeout(Duration::from_secs(30), server).await {
                Ok(result) => result
                    .context("server task failed")?
                    .context("server failed")?,
                Err(_) => tracing::warn!("open HTTP connections did not close within 30 s"),
            }
        }
        if let Some(runtime) = self.runtime {
            runtime.await.context("worker runtime task failed")??;
        }
        self.engine.completer().flush().await;
        self.engine.stop().await;
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
/// Records `sso.configure` in the audit log when the sign-in settings (single sign-on,
/// password login, the break-glass account) differ from the last ones recorded. They live
/// in the configuration, so a change shows when a server starts with it; a deployment that
/// never configured single sign-on records nothing.
async fn record_sso_settings(engine: &Engine, auth: &switchyard_auth::AuthConfig) {
    use switchyard_core::audit::{
        ActionFilter, Actor, AuditAction, AuditEntry, AuditQuery, TargetKind,
    };
    // The client secret is never serialized (it is read from the environment).
    let settings = serde_json::json!({
        "oidc": auth.oidc,
        "password_login": auth.password_login,
        "break_glass_email": auth.break_glass_email,
    });
    let last = engine
        .audit()
        .list(&AuditQuery {
            action: Some(ActionFilter::Exact(AuditAction::SsoConfigure)),
            limit: 1,
            ..AuditQuery::default()
        })
        .await;
    let last = match last {
        Ok(entries) => entries.into_iter().next().and_then(|e| e.detail),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the audit log's last sign-in settings");
            return;
        }
    };
    let never_configured = auth.oidc.is_none() && auth.password_login;
    if last.as_ref() == Some(&settings) || (last.is_none() && never_configured) {
        return;
    }
    let target = auth.oidc.as_ref().map_or("off", |o| o.issuer.as_str());
    engine
        .audit()
        .record(
            AuditEntry::new(Actor::system(), AuditAction::SsoConfigure)
                .target(TargetKind::Sso, target)
                .detail(settings),
        )
        .await;
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, the same in
/// mimalloc 2 and 3; the -sys crate names only some options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// The purge delay to go back to; unset (-1 is a valid delay: never purge) until saved.
static SAVED_PURGE_DELAY: std::sync::atomic::AtomicI64 =
    std::sync::atomic::AtomicI64::new(i64::MIN);

/// While on, memory freed is handed back to the OS at once instead of after mimalloc's
/// delay (1 s in mimalloc 3), which also only runs when the freeing thread allocates
/// again. Start-up turns it on: it briefly needs far more than an idle server
/// (migrations fill SQLite's page cache, hashing the admin password takes 19 MiB) on
/// threads that then sit idle. It costs throughput under load (a madvise per emptied
/// page), so it is turned off once start-up is done.
// `c_long` is 64 bits here but 32 on some targets: the conversions are not useless there.
#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
pub fn purge_freed_memory_at_once(on: bool) {
    use std::sync::atomic::Ordering;
    // SAFETY (both calls): reads or sets an allocator option; mimalloc reads options
    // atomically.
    if on {
        let current = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        let _ = SAVED_PURGE_DELAY.compare_exchange(
            i64::MIN,
            i64::from(current),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    } else {
        let saved = SAVED_PURGE_DELAY.swap(i64::MIN, Ordering::Relaxed);
        if saved != i64::MIN
            && let Ok(delay) = std::ffi::c_long::try_from(saved)
        {
            unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay) }
        }
    }
}

/// Hands memory the allocator keeps cached back to the OS, once start-up is done, and
/// goes back to delayed purging (see [`purge_freed_memory_at_once`]).
pub fn return_free_memory() {
    // SAFETY: mi_collect only walks the allocator's own free lists.
    unsafe { libmimalloc_sys::mi_collect(true) }
    purge_freed_memory_at_once(false);
}

/// How often freed memory whose purge delay has passed is handed back to the OS.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// mimalloc purges freed memory only when some thread allocates again after the delay;
/// memory freed by a thread that then sits idle (a blocking-pool thread that hashed a
/// password at login: 19 MiB) would stay resident. Every few seconds this asks for the
/// purges that are due, program-wide; it never purges early, so it costs nothing under
/// load.
pub fn spawn_memory_return() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        let mut every = tokio::time::interval(PURGE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            // SAFETY: mi_collect only walks the allocator's own free lists.
            unsafe { libmimalloc_sys::mi_collect(false) }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option index is mimalloc's purge delay: its documented default (1 s in
    /// mimalloc 3, 10 ms in 2) reads back, and the start-up switch turns it to 0 and back.
    #[test]
    fn the_purge_delay_option_is_the_one_switched() {
        // SAFETY: reads an allocator option.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        let default = get();
        assert!(matches!(default, 1_000 | 10), "{default}");
        purge_freed_memory_at_once(true);
        assert_eq!(get(), 0);
        return_free_memory();
        assert_eq!(get(), default);
        return_free_memory();
        assert_eq!(get(), default, "restoring twice changes nothing");
    }
}
