//! Wiring: choose the backends from the configuration, start the engine, the built-in
//! worker runtime and the HTTP server for the process's role, and shut them down in
//! order (stop accepting, finish requests, drain running tasks, flush results).

use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use switchyard_api::AppState;
use switchyard_cache::{LocalBus, MemoryCache};
use switchyard_core::store::Store;
use switchyard_engine::{Backends, Duties, Engine, EngineConfig};
use switchyard_store::SqliteStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// What a `serve` process does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The HTTP API only (stateless; scale out behind a load balancer).
    Api,
    /// Runs built-in agents and cluster duties; no HTTP API.
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

pub async fn open_backends(config: &Config) -> anyhow::Result<OpenBackends> {
    let url = config.database_url();
    let (store, lock): (Arc<dyn Store>, _) = if let Some(path) = url.strip_prefix("sqlite://") {
        let lock = lock_data_dir(config)?;
        let path = std::path::Path::new(path);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let store = SqliteStore::open(path, config.database.sqlite_durability)
            .await
            .with_context(|| format!("cannot open the database at {}", path.display()))?;
        (Arc::new(store), Some(lock))
    } else {
        bail!("unsupported database.url {url:?}: use sqlite://PATH");
    };
    store.migrate().await.context("database migration failed")?;
    let single_node = lock.is_some();
    Ok(OpenBackends {
        backends: Backends {
            store,
            cache: Arc::new(MemoryCache::default()),
            bus: Arc::new(LocalBus::default()),
        },
        single_node,
        _lock: lock,
    })
}

/// A running Switchyard process.
pub struct Running {
    pub engine: Arc<Engine>,
    /// Where the HTTP API listens, if this role serves it.
    pub addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<std::io::Result<()>>>,
    runtime: Option<JoinHandle<switchyard_core::Result<()>>>,
    _backends: OpenBackends,
}

pub async fn start(config: &Config, role: Role) -> anyhow::Result<Running> {
    let opened = open_backends(config).await?;
    let engine_config = EngineConfig {
        queue: config.queue.clone(),
        auth: config.auth.clone(),
    };
    let duties = Duties {
        dispatch: role.runs_work(),
        maintenance: role.runs_work(),
    };
    let engine = Engine::start(opened.backends.clone(), engine_config, duties)
        .await
        .context("engine start failed")?;
    if opened.single_node && role.runs_work() {
        let n = switchyard_engine::maintenance::recover_orphans(&engine.store, &engine.reporter)
            .await?;
        if n > 0 {
            tracing::info!(
                tasks = n,
                "re-queued tasks that were running when the server last stopped"
            );
        }
    }
    let shutdown = CancellationToken::new();
    let runtime = role.runs_work().then(|| {
        let runtime_config = switchyard_worker::RuntimeConfig {
            name: config.worker.name.clone(),
            slots: config.worker.slots.max(1),
            drain_timeout: Duration::from_secs(config.worker.drain_timeout_s),
        };
        tokio::spawn(switchyard_worker::run(
            engine.clone(),
            runtime_config,
            shutdown.clone(),
        ))
    });
    let (server, addr) = if role.serves_http() {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let addr = listener.local_addr()?;
        let state = AppState {
            engine: engine.clone(),
            config: Arc::new(config.server.clone()),
            shutdown: shutdown.clone(),
        };
        let app = switchyard_api::app(state, Some(crate::ui::router()));
        let stop = shutdown.clone();
        let server = tokio::spawn(switchyard_api::serve(listener, app, async move {
            stop.cancelled().await
        }));
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
        _backends: opened,
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
        self.engine.reporter.flush().await;
        self.engine.stop().await;
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
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
