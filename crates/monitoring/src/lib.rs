//! The Monitoring System diagram: in-process metrics (Prometheus `/metrics`), the metric
//! aggregator that rolls them into the database (time series for the dashboard and
//! alerts), alert evaluation and notification, per-agent reports, task-log retention
//! and the search indexer.
//!
//! Two loops run in the background: the flusher on every process (its own counters'
//! deltas into the one-minute rows), and the monitoring duties on the one process that
//! holds the cluster duties (queue gauges, alerts, notifications, search indexing,
//! downsampling and retention, the daily report).

pub mod alerts;
mod config;
pub mod metrics;
pub mod process;
pub mod prometheus;
pub mod reports;
pub mod rollup;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use switchyard_core::backup::BackupRecord;
use switchyard_core::cache::EventBus;
use switchyard_core::event::BusMessage;
use switchyard_core::monitoring::{
    AlertEvent, AlertStatus, HOUR_MS, MINUTE_MS, MetricPoint, bucket_start, series,
};
use switchyard_core::store::{AgentQueueStats, Leadership, Store};
use switchyard_core::{Result, Timestamp};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use config::MonitoringConfig;
pub use metrics::Metrics;

/// What monitoring reads from the services it watches; the engine implements it.
#[async_trait]
pub trait Watched: Send + Sync + 'static {
    /// Whether `agent` runs on the built-in runtime; `None` when there is no such agent.
    async fn runs_builtin(&self, agent: &str) -> Result<Option<bool>>;
    /// Clients following live events on this process.
    fn event_subscribers(&self) -> usize;
}

/// Queue statistics are read at most this often for `/metrics`.
const QUEUE_STATS_TTL: Duration = Duration::from_secs(1);
/// Downsampling and retention run this often.
const RETENTION_EVERY: Duration = Duration::from_secs(300);
const DAY_MS: u64 = 86_400_000;

pub struct Monitoring {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    pub metrics: Arc<Metrics>,
    watched: Arc<dyn Watched>,
    pub config: MonitoringConfig,
    heartbeat_ms: u64,
    /// Built-in worker runtimes in this process (0 or 1).
    pub builtin_workers: AtomicI64,
    http: reqwest::Client,
    queue_cache: Mutex<Option<(Instant, Arc<Vec<AgentQueueStats>>)>>,
    alerts: broadcast::Sender<Arc<AlertEvent>>,
}

impl Monitoring {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        watched: Arc<dyn Watched>,
        config: MonitoringConfig,
        heartbeat_ms: u64,
    ) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        Arc::new(Monitoring {
            metrics: Arc::new(Metrics::new(config.enabled)),
            store,
            bus,
            watched,
            config,
            heartbeat_ms,
            builtin_workers: AtomicI64::new(0),
            http,
            queue_cache: Mutex::new(None),
            alerts: broadcast::channel(256).0,
        })
    }

    /// Alert events (firing, resolved) as they happen anywhere in the cluster.
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<Arc<AlertEvent>> {
        self.alerts.subscribe()
    }

    async fn queue_stats(&self) -> Result<Arc<Vec<AgentQueueStats>>> {
        if let Some((at, stats)) = &*self.queue_cache.lock()
            && at.elapsed() < QUEUE_STATS_TTL
        {
            return Ok(stats.clone());
        }
        let stats = Arc::new(self.store.queue_stats(Timestamp::now()).await?);
        *self.queue_cache.lock() = Some((Instant::now(), stats.clone()));
        Ok(stats)
    }

    /// The newest successful backup of the deployment.
    pub async fn last_backup(&self) -> Result<Option<BackupRecord>> {
        self.store.last_backup().await
    }

    /// The Prometheus exposition of this process.
    pub async fn prometheus(&self) -> Result<String> {
        let queues = self.queue_stats().await?;
        let last_backup = self.last_backup().await?;
        let firing = self
            .store
            .list_alert_rules()
            .await?
            .iter()
            .filter(|r| r.state.status == AlertStatus::Firing)
            .count();
        Ok(prometheus::render(&prometheus::Scrape {
            metrics: &self.metrics,
            queues: &queues,
            now_ms: Timestamp::now().millis(),
            pools: &self.store.pool_stats(),
            process: &process::read(),
            builtin_workers: self.builtin_workers.load(Ordering::Relaxed),
            event_subscribers: self.watched.event_subscribers(),
            alerts_firing: firing,
            last_backup: last_backup.as_ref(),
            version: env!("CARGO_PKG_VERSION"),
        }))
    }

    pub async fn series(&self, q: &rollup::SeriesQuery) -> Result<rollup::Series> {
        rollup::query(&*self.store, q).await
    }

    /// Adds this process's counter deltas to the one-minute rows.
    async fn flush(&self, state: &mut rollup::FlushState) {
        let (points, next) = rollup::deltas(&self.metrics, state);
        if points.is_empty() {
            *state = next;
            return;
        }
        // The deltas accumulated up to now belong to the minute that is ending.
        let at = bucket_start(Timestamp::now().minus_ms(1), MINUTE_MS);
        match self.store.add_metric_points(at, &points).await {
            Ok(()) => *state = next,
            // Kept for the next flush: nothing is lost while the database is away.
            Err(e) => tracing::warn!(error = %e, "could not store metric rollups"),
        }
    }

    /// Every process: flushes counter deltas every `rollup_interval_ms` (aligned to the
    /// interval, so a flush never straddles two minutes), and once more at shutdown.
    pub async fn run_flusher(self: Arc<Self>, shutdown: CancellationToken) {
        if !self.config.enabled {
            return;
        }
        let interval = self.config.rollup_interval_ms.max(50);
        let mut state = rollup::FlushState::default();
        loop {
            let now = Timestamp::now().millis() as u64;
            let wait = interval - now % interval;
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.flush(&mut state).await;
                    return;
                }
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            }
            self.flush(&mut state).await;
        }
    }

    /// Forwards alert events from the bus to local subscribers (SSE streams).
    pub async fn run_bus_listener(self: Arc<Self>, mut rx: broadcast::Receiver<Arc<BusMessage>>) {
        loop {
            match rx.recv().await {
                Ok(msg) => {
                    if let BusMessage::Alert { event } = &*msg {
                        let _ = self.alerts.send(Arc::new((**event).clone()));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// The queue gauges of this moment, into the current minute.
    async fn sample_gauges(&self, now: Timestamp) -> Result<()> {
        let queues = self.store.queue_stats(now).await?;
        let mut points = Vec::with_capacity(queues.len() * 4 + 1);
        for q in &queues {
            points.push(MetricPoint::new(
                series::QUEUE_READY,
                &q.agent,
                q.ready as f64,
            ));
            points.push(MetricPoint::new(
                series::QUEUE_SCHEDULED,
                &q.agent,
                q.scheduled as f64,
            ));
            points.push(MetricPoint::new(
                series::QUEUE_RUNNING,
                &q.agent,
                q.running as f64,
            ));
            let age = q
                .oldest_ready_at
                .map_or(0.0, |t| now.since(t) as f64 / 1_000.0);
            points.push(MetricPoint::new(series::QUEUE_OLDEST_AGE_S, &q.agent, age));
        }
        let workers = self
            .store
            .list_workers(now.minus_ms(self.heartbeat_ms.saturating_mul(3).max(15_000)))
            .await?;
        points.push(MetricPoint::new(series::WORKERS, "", workers.len() as f64));
        self.store
            .set_metric_gauges(bucket_start(now, MINUTE_MS), &points)
            .await
    }

    async fn retention(&self, now: Timestamp) -> Result<()> {
        let c = &self.config;
        let minute_cutoff = bucket_start(now.minus_ms(c.minute_retention_h * 3_600_000), HOUR_MS);
        let folded = self.store.downsample_metrics(minute_cutoff).await?;
        let hours = self
            .store
            .prune_metrics(3600, now.minus_ms(c.hour_retention_days * DAY_MS))
            .await?;
        let logs = self
            .store
            .prune_task_logs(now.minus_ms(c.task_log_retention_days * DAY_MS))
            .await?;
        let events = self
            .store
            .prune_alert_events(now.minus_ms(c.alert_event_retention_days * DAY_MS))
            .await?;
        tracing::debug!(
            folded_minutes = folded,
            pruned_hours = hours,
            pruned_log_lines = logs,
            pruned_alert_events = events,
            "monitoring retention done"
        );
        Ok(())
    }

    /// The cluster duty: runs only while this process holds leadership.
    pub async fn run_duties(
        self: Arc<Self>,
        leader: Arc<dyn Leadership>,
        shutdown: CancellationToken,
    ) {
        let c = self.config.clone();
        let every = |ms: u64| Duration::from_millis(ms.max(50));
        let start = Instant::now();
        let mut next_gauges = start;
        let mut next_alerts = start;
        let mut next_search = start;
        let mut next_retention = start;
        let mut next_daily = start;
        let tick = every(c.rollup_interval_ms)
            .min(every(c.alert_interval_ms))
            .min(every(c.search_interval_ms))
            .min(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
            if !leader.check().await {
                continue;
            }
            let now = Instant::now();
            let ts = Timestamp::now();
            if c.enabled && now >= next_gauges {
                next_gauges = now + every(c.rollup_interval_ms);
                if let Err(e) = self.sample_gauges(ts).await {
                    tracing::warn!(error = %e, "could not sample queue gauges");
                }
            }
            if c.enabled && now >= next_alerts {
                next_alerts = now + every(c.alert_interval_ms);
                if let Err(e) = self.evaluate_alerts(ts).await {
                    tracing::warn!(error = %e, "alert evaluation failed");
                }
            }
            if let Err(e) = self.deliver_notifications(Timestamp::now()).await {
                tracing::warn!(error = %e, "alert notification delivery failed");
            }
            if now >= next_search {
                next_search = now + every(c.search_interval_ms);
                match self.store.index_tasks(c.search_batch).await {
                    // A full batch: more is waiting, come back at the next tick.
                    Ok(n) if n >= u64::from(c.search_batch) => next_search = now,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "search indexing failed"),
                }
            }
            if now >= next_retention {
                next_retention = now + RETENTION_EVERY;
                if let Err(e) = self.retention(ts).await {
                    tracing::warn!(error = %e, "monitoring retention failed");
                }
            }
            if now >= next_daily {
                next_daily = now + Duration::from_secs(60);
                if let Err(e) = self.daily_report(ts).await {
                    tracing::warn!(error = %e, "daily report failed");
                }
            }
        }
    }
}
