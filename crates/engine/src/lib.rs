//! Switchyard's services layer.
//!
//! [`Engine`] wires the services over the chosen backends: the agent registry, the
//! task service (validate → transform → cache → queue with group commit), the
//! dispatcher (claims batches for consumers), the completer (the completion and Error
//! Recovery path), maintenance (lease reaper, forced cancels, housekeeping), the event
//! hub (live events to local subscribers) and authentication. It knows the backends
//! only through the `Store`, `Cache` and `EventBus` traits.

pub mod agents;
pub mod announcer;
pub mod backups;
pub mod completer;
pub mod config;
pub mod dispatch;
pub mod events;
pub mod files;
pub mod limiter;
pub mod maintenance;
pub mod schedules;
pub mod submitter;
pub mod tasks;
pub mod waker;
pub mod worker_session;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use switchyard_core::Result;
use switchyard_core::audit::Audit;
use switchyard_core::cache::{Cache, EventBus};
use switchyard_core::event::BusMessage;
use switchyard_core::files::{ObjectStore, UrlSigner};
use switchyard_core::flow::RateLimiter;
use switchyard_core::store::{Leadership, Store};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{
    AgentsConfig, AuthConfig, BackupConfig, EngineConfig, FilesConfig, MonitoringConfig,
    QueueConfig,
};

use crate::agents::AgentRegistry;
use crate::backups::BackupService;
use crate::completer::{Completer, CompleterDeps};
use crate::dispatch::Dispatcher;
use crate::events::EventHub;
use crate::files::FileService;
use crate::maintenance::Maintenance;
use crate::schedules::ScheduleService;
use crate::submitter::Submitter;
use crate::tasks::TaskService;
use crate::waker::Waker;
use switchyard_auth::AuthService;
use switchyard_monitoring::{Monitoring, Watched};

/// The backends chosen at start-up.
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub cache: Arc<dyn Cache>,
    pub bus: Arc<dyn EventBus>,
    /// Decides which process runs the cluster duties (`SoleLeader` on embedded storage).
    pub leader: Arc<dyn Leadership>,
    /// Where rate limits are kept: Redis in a cluster that has it, memory on embedded
    /// storage (one process); `None`: the database.
    pub limiter: Option<Arc<dyn RateLimiter>>,
    /// Where file bytes are kept: a directory, or S3-compatible object storage.
    pub objects: Arc<dyn ObjectStore>,
    /// Where backups go (`backup.target`), if anywhere.
    pub backup_target: Option<Arc<backups::BackupTarget>>,
}

/// A backend's answer to a readiness probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub backend: &'static str,
    /// Why it did not answer; `None` when it did.
    pub error: Option<String>,
    /// What runs on a fallback, and why.
    pub degraded: Option<String>,
}

/// Every backend's answer to a readiness probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probes {
    pub database: Probe,
    pub cache: Probe,
    /// File storage: tasks go on without it, so it only degrades readiness.
    pub files: Probe,
}

/// Which background duties this process takes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duties {
    /// Hand out work to local consumers (built-in runtime, connected remote workers).
    pub dispatch: bool,
    /// Contend for the cluster duties (reap expired leases, force overdue cancellations,
    /// housekeeping); they run on one such process at a time.
    pub maintenance: bool,
}

pub struct Engine {
    store: Arc<dyn Store>,
    cache: Arc<dyn Cache>,
    bus: Arc<dyn EventBus>,
    config: EngineConfig,
    agents: Arc<AgentRegistry>,
    hub: Arc<EventHub>,
    tasks: TaskService,
    schedules: ScheduleService,
    files: FileService,
    backups: BackupService,
    auth: Arc<AuthService>,
    audit: Arc<Audit>,
    completer: Completer,
    dispatcher: Arc<Dispatcher>,
    monitoring: Arc<Monitoring>,
    waker: Waker,
    shutdown: CancellationToken,
    background: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    pub async fn start(
        backends: Backends,
        config: EngineConfig,
        duties: Duties,
    ) -> Result<Arc<Engine>> {
        let Backends {
            store,
            cache,
            bus,
            leader,
            limiter,
            objects,
            backup_target,
        } = backends;
        let backups = BackupService {
            store: store.clone(),
            objects: objects.clone(),
            timetable: BackupService::timetable(&config.backup, backup_target.is_some())?,
            target: backup_target,
            config: config.backup.clone(),
            running: Arc::default(),
        };
        let limiter: Arc<dyn RateLimiter> = Arc::new(limiter::Limiter::new(limiter, store.clone()));
        let agents = Arc::new(
            AgentRegistry::new(store.clone(), bus.clone())
                .allow_command(config.agents.command_allowed()),
        );
        agents.init().await?;
        let hub = EventHub::new(config.queue.replay_events);
        let monitoring = Monitoring::new(
            store.clone(),
            bus.clone(),
            Arc::new(Watch {
                agents: agents.clone(),
                hub: hub.clone(),
            }),
            config.monitoring.clone(),
            config.queue.heartbeat_ms,
        );
        let metrics = monitoring.metrics.clone();
        let audit = Arc::new(Audit::new(
            store.clone(),
            metrics.audit_write_failures.clone(),
        ));
        let auth = Arc::new(
            AuthService::new(
                store.clone(),
                cache.clone(),
                bus.clone(),
                config.auth.clone(),
            )
            .await?,
        );
        let dispatcher = Dispatcher::new(
            store.clone(),
            bus.clone(),
            agents.clone(),
            config.queue.lease_ms,
            config.queue.poll_interval_ms,
            metrics.clone(),
            limiter.clone(),
        );
        let submitter = Submitter::start(
            store.clone(),
            bus.clone(),
            duties.dispatch.then(|| dispatcher.clone()),
            config.queue.idempotency_window_s.saturating_mul(1_000),
            config.queue.max_write_batch,
            metrics.clone(),
        );
        let (waker, waker_loop) = Waker::new(store.clone(), bus.clone());
        let completer = Completer::start(CompleterDeps {
            store: store.clone(),
            bus: bus.clone(),
            cache: cache.clone(),
            agents: agents.clone(),
            max_batch: config.queue.max_write_batch,
            keep_stream: config.queue.max_stream_events,
            max_unstored: config.queue.replay_events / 2,
            metrics: metrics.clone(),
            waker: waker.clone(),
            limiter: limiter.clone(),
        });
        let tasks = TaskService {
            store: store.clone(),
            cache: cache.clone(),
            bus: bus.clone(),
            agents: agents.clone(),
            hub: hub.clone(),
            submitter,
            config: config.queue.clone(),
            metrics,
            waker: waker.clone(),
        };
        let schedules = ScheduleService {
            store: store.clone(),
            tasks: tasks.clone(),
            agents: agents.clone(),
            changed: Arc::new(tokio::sync::Notify::new()),
        };
        let url_key = store
            .init_setting(files::URL_KEY_SETTING, &random_key())
            .await?;
        let files = FileService {
            store: store.clone(),
            objects,
            tasks: tasks.clone(),
            signer: UrlSigner::new(url_key.as_bytes()),
            config: config.files.clone(),
        };
        let shutdown = CancellationToken::new();
        let mut background = vec![
            tokio::spawn(hub.clone().run(bus.subscribe())),
            tokio::spawn(invalidations(bus.subscribe(), agents.clone(), auth.clone())),
            tokio::spawn(monitoring.clone().run_bus_listener(bus.subscribe())),
            tokio::spawn(monitoring.clone().run_flusher(shutdown.clone())),
            tokio::spawn(waker_loop.run(shutdown.clone())),
        ];
        if duties.dispatch {
            background.push(tokio::spawn(
                dispatcher.clone().run(bus.subscribe(), shutdown.clone()),
            ));
        }
        if duties.maintenance {
            let m = Maintenance {
                store: store.clone(),
                bus: bus.clone(),
                agents: agents.clone(),
                cache: cache.clone(),
                completer: completer.clone(),
                config: config.queue.clone(),
                leader: leader.clone(),
                files: files.clone(),
                audit: config.audit.clone(),
            };
            background.push(tokio::spawn(m.run(shutdown.clone())));
            // Every such server fires schedules; each tick fires once (see `schedules`).
            background.push(tokio::spawn(schedules.clone().run(shutdown.clone())));
            background.push(tokio::spawn(
                backups
                    .clone()
                    .run_schedule(leader.clone(), shutdown.clone()),
            ));
            background.push(tokio::spawn(
                monitoring.clone().run_duties(leader, shutdown.clone()),
            ));
        }
        Ok(Arc::new(Engine {
            store,
            cache,
            bus,
            config,
            agents,
            hub,
            tasks,
            schedules,
            files,
            backups,
            auth,
            audit,
            completer,
            dispatcher,
            monitoring,
            waker,
            shutdown,
            background: Mutex::new(background),
        }))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn agents(&self) -> &Arc<AgentRegistry> {
        &self.agents
    }

    /// Live events of this process's subscribers.
    pub fn hub(&self) -> &Arc<EventHub> {
        &self.hub
    }

    pub fn tasks(&self) -> &TaskService {
        &self.tasks
    }

    pub fn schedules(&self) -> &ScheduleService {
        &self.schedules
    }

    pub fn files(&self) -> &FileService {
        &self.files
    }

    pub fn backups(&self) -> &BackupService {
        &self.backups
    }

    pub fn auth(&self) -> &Arc<AuthService> {
        &self.auth
    }

    /// The audit log: record security-relevant actions here (see `switchyard_core::audit`).
    pub fn audit(&self) -> &Arc<Audit> {
        &self.audit
    }

    pub fn completer(&self) -> &Completer {
        &self.completer
    }

    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    pub fn monitoring(&self) -> &Arc<Monitoring> {
        &self.monitoring
    }

    pub fn waker(&self) -> &Waker {
        &self.waker
    }

    /// Asks the database and the cache whether they answer, each within `timeout`.
    pub async fn probe(&self, timeout: Duration) -> Probes {
        let error = |r: std::result::Result<Result<()>, tokio::time::error::Elapsed>| match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.message),
            Err(_) => Some("timed out".to_owned()),
        };
        let (db, cache, files) = tokio::join!(
            tokio::time::timeout(timeout, self.store.ping()),
            tokio::time::timeout(timeout, self.cache.ping()),
            tokio::time::timeout(timeout, self.files.probe()),
        );
        Probes {
            database: Probe {
                backend: self.store.backend(),
                error: error(db),
                degraded: None,
            },
            cache: Probe {
                backend: self.cache.backend(),
                error: error(cache),
                degraded: self.cache.degraded(),
            },
            files: Probe {
                backend: self.files.backend(),
                error: error(files),
                degraded: None,
            },
        }
    }

    /// Single-node start-up: tasks that were running when the process last stopped go
    /// back through the completion path as `worker_lost`. Returns how many.
    pub async fn recover_orphans(&self) -> Result<usize> {
        maintenance::recover_orphans(&self.store, &self.completer).await
    }

    /// The database backend's name (`sqlite`, `postgres`).
    pub fn database_backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Cancelled when the engine stops; long-running loops watch it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the background loops (dispatch first, so nothing new is claimed).
    pub async fn stop(&self) {
        self.shutdown.cancel();
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *self.background.lock());
        for h in handles {
            if tokio::time::timeout(Duration::from_secs(5), async {
                h.abort();
                let _ = h.await;
            })
            .await
            .is_err()
            {
                tracing::warn!("a background loop did not stop in time");
            }
        }
    }
}

/// What monitoring reads from the services: agent kinds and live-event subscribers.
struct Watch {
    agents: Arc<AgentRegistry>,
    hub: Arc<EventHub>,
}

#[async_trait::async_trait]
impl Watched for Watch {
    async fn runs_builtin(&self, agent: &str) -> Result<Option<bool>> {
        Ok(self
            .agents
            .get(agent)
            .await?
            .map(|entry| entry.spec().kind.is_builtin()))
    }

    fn event_subscribers(&self) -> usize {
        self.hub.subscriber_count()
    }
}

/// Keeps per-server caches in step with changes made on any server.
async fn invalidations(
    mut rx: broadcast::Receiver<Arc<BusMessage>>,
    agents: Arc<AgentRegistry>,
    auth: Arc<AuthService>,
) {
    loop {
        match rx.recv().await {
            Ok(msg) => match &*msg {
                BusMessage::AgentChanged { name } => {
                    if let Err(e) = agents.refresh(name).await {
                        tracing::warn!(agent = %name, error = %e, "could not refresh agent");
                    }
                }
                BusMessage::CredentialRevoked { key } => auth.forget_credential(key),
                _ => {}
            },
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if let Err(e) = agents.init().await {
                    tracing::warn!(error = %e, "could not reload agents");
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A fresh 256-bit secret, hex encoded.
fn random_key() -> String {
    let mut key = [0u8; 32];
    rand::fill(&mut key);
    hex::encode(key)
}
