//! Cluster duties: the lease reaper, forced cancellations and housekeeping.
//!
//! Every process with the duty contends for leadership ([`Leadership`]); only the holder
//! runs them, and another takes over when it dies. Running them twice (briefly, while a
//! lost leader has not noticed yet) is still safe, because every completion is checked
//! against its lease.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::agent::MAX_TIMEOUT_MS;
use switchyard_core::audit::AuditConfig;
use switchyard_core::cache::Cache;
use switchyard_core::cache::EventBus;
use switchyard_core::event::BusMessage;
use switchyard_core::store::{Leadership, Store};
use switchyard_core::task::{TaskError, codes};
use switchyard_core::{Result, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::agents::AgentRegistry;
use crate::completer::{AttemptOutcome, AttemptResult, Completer};
use crate::config::QueueConfig;
use crate::files::FileService;

const SWEEP_BATCH: u32 = 1_000;
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
/// How often unfinished uploads and unused file bytes are collected.
const FILES_EVERY: Duration = Duration::from_secs(5);

pub struct Maintenance {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    /// The agents' timeouts, from memory.
    pub agents: Arc<AgentRegistry>,
    pub cache: Arc<dyn Cache>,
    pub completer: Completer,
    pub config: QueueConfig,
    pub leader: Arc<dyn Leadership>,
    pub files: FileService,
    /// How long audit entries are kept.
    pub audit: AuditConfig,
}

impl Maintenance {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(
            self.config.reaper_interval_ms.max(10),
        ));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_housekeeping = tokio::time::Instant::now();
        let mut last_files = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.leader.release().await;
                    return;
                }
                _ = tick.tick() => {}
            }
            if !self.leader.check().await {
                continue;
            }
            if let Err(e) = self.reap().await {
                tracing::warn!(error = %e, "reaping expired leases failed");
            }
            if last_files.elapsed() >= FILES_EVERY {
                last_files = tokio::time::Instant::now();
                let before = self.files.stale_before(Timestamp::now());
                if let Err(e) = self.files.collect(before).await {
                    tracing::warn!(error = %e, "collecting file storage failed");
                }
            }
            if last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
                last_housekeeping = tokio::time::Instant::now();
                if let Err(e) = self.housekeeping().await {
                    tracing::warn!(error = %e, "housekeeping failed");
                }
            }
        }
    }

    /// Expired leases become retryable failures; attempts past their timeout and the
    /// grace period end as `timeout` (their workers are told to stop); overdue
    /// cancellations are forced.
    pub async fn reap(&self) -> Result<()> {
        let now = Timestamp::now();
        self.end_timed_out(now).await?;
        for lease in self.store.expired_leases(now, SWEEP_BATCH).await? {
            tracing::info!(task = %lease.task_id, attempt = lease.attempt, "lease expired; the attempt counts as failed");
            self.completer
                .finish(AttemptResult {
                    attempt: lease,
                    outcome: AttemptOutcome::Failed(TaskError::retryable(
                        codes::LEASE_EXPIRED,
                        "the worker stopped renewing its lease (crashed or lost)",
                    )),
                    ack: None,
                })
                .await?;
        }
        let grace = now.minus_ms(self.config.cancel_grace_ms);
        for lease in self.store.overdue_cancellations(grace, SWEEP_BATCH).await? {
            tracing::info!(task = %lease.task_id, "cancellation not acknowledged in time; forcing it");
            self.completer
                .finish(AttemptResult {
                    attempt: lease,
                    outcome: AttemptOutcome::Cancelled(Some(TaskError::permanent(
                        codes::CANCELLED,
                        "cancelled (forced after the grace period)",
                    ))),
                    ack: None,
                })
                .await?;
        }
        Ok(())
    }

    /// A worker that keeps renewing its lease but never finishes does not hold a task
    /// past its agent's `timeout_ms` plus `queue.cancel_grace_ms`: the server records the
    /// attempt as failed with `timeout` (retried by the agent's policy), tells the worker
    /// to cancel it, and the worker's late result is rejected, since the attempt no
    /// longer holds its lease.
    async fn end_timed_out(&self, now: Timestamp) -> Result<()> {
        let grace = self.config.cancel_grace_ms;
        let deadline = |timeout_ms: u64| now.minus_ms(timeout_ms.saturating_add(grace));
        let timeouts: BTreeMap<String, u64> = self
            .agents
            .all_cached()
            .iter()
            .map(|entry| (entry.spec().name.clone(), entry.spec().timeout_ms))
            .collect();
        let started_before = timeouts
            .iter()
            .map(|(name, timeout_ms)| (name.clone(), deadline(*timeout_ms)))
            .collect();
        // An agent not in memory right now (just changed) waits for the next sweep.
        let otherwise = deadline(MAX_TIMEOUT_MS);
        let overdue = self
            .store
            .timed_out_attempts(&started_before, otherwise, SWEEP_BATCH)
            .await?;
        for attempt in overdue {
            let timeout_ms = timeouts
                .get(&attempt.agent)
                .copied()
                .unwrap_or(MAX_TIMEOUT_MS);
            tracing::info!(task = %attempt.task_id, attempt = attempt.attempt, timeout_ms, "attempt ran past its timeout; ending it");
            let cancel = attempt.worker_id.map(|worker_id| BusMessage::Cancel {
                task_id: attempt.task_id,
                attempt: attempt.attempt,
                worker_id,
            });
            self.completer
                .finish(AttemptResult {
                    attempt,
                    outcome: AttemptOutcome::Failed(TaskError::retryable(
                        codes::TIMEOUT,
                        format!(
                            "the attempt ran past its timeout ({timeout_ms} ms) and the grace \
                             period ({grace} ms); the server ended it"
                        ),
                    )),
                    ack: None,
                })
                .await?;
            if let Some(cancel) = cancel {
                self.bus.send(cancel).await;
            }
        }
        Ok(())
    }

    async fn housekeeping(&self) -> Result<()> {
        let now = Timestamp::now();
        let window_ms = self.config.idempotency_window_s.saturating_mul(1_000);
        let expired = self
            .store
            .expire_idempotency_keys(now.minus_ms(window_ms))
            .await?;
        let silent = now.minus_ms(self.config.heartbeat_ms.saturating_mul(10).max(60_000));
        let pruned = self.store.prune_workers(silent).await?;
        self.cache.sweep().await?;
        let pruned_audit = match self.audit.prune_before(now) {
            Some(before) => self.store.prune_audit(before).await?,
            None => 0,
        };
        tracing::debug!(
            expired_keys = expired,
            pruned_workers = pruned,
            pruned_audit,
            "housekeeping done"
        );
        Ok(())
    }
}

/// After a restart of a single-node install, nothing can still be running: every task
/// left `running` belonged to the previous process and is retried at once.
pub async fn recover_orphans(store: &Arc<dyn Store>, completer: &Completer) -> Result<usize> {
    let mut total = 0;
    loop {
        let orphans = store.running_tasks(None, SWEEP_BATCH).await?;
        if orphans.is_empty() {
            return Ok(total);
        }
        total += orphans.len();
        let mut acks = Vec::with_capacity(orphans.len());
        for lease in orphans {
            let (tx, rx) = tokio::sync::oneshot::channel();
            completer
                .finish(AttemptResult {
                    attempt: lease,
                    outcome: AttemptOutcome::Failed(TaskError::retryable(
                        codes::WORKER_LOST,
                        "the server stopped while the task was running",
                    )),
                    ack: Some(tx),
                })
                .await?;
            acks.push(rx);
        }
        let mut accepted = 0;
        for ack in acks {
            accepted += usize::from(ack.await.unwrap_or(false));
        }
        if accepted == 0 {
            return Err(switchyard_core::Error::unavailable(
                "could not requeue tasks left running",
            ));
        }
    }
}
