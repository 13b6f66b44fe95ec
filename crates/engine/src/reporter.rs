//! The completion path of the Error Recovery flow, batched.
//!
//! Workers hand in attempt results and live events; one loop groups whatever has
//! arrived, numbers and stores the events, decides each result's fate (succeed, retry
//! with backoff, fall back, dead), records all of it in one transaction, then publishes
//! the events and fills the result cache.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::cache::{Cache, EventBus};
use switchyard_core::event::{BusMessage, SharedEvent, TaskEvent};
use switchyard_core::json::input_fingerprint;
use switchyard_core::store::{
    ClaimedTask, Completion, EventDraft, LeaseInfo, NewTask, Outcome, Store,
};
use switchyard_core::task::{ErrorClass, FailureDecision, TaskError, codes, decide_failure};
use switchyard_core::{Error, Result, TaskId, Timestamp, UserId};
use tokio::sync::{mpsc, oneshot};

use crate::agents::{AgentEntry, AgentRegistry};
use crate::publish::{announce, send};

/// One attempt, with what deciding its outcome needs.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRef {
    pub task_id: TaskId,
    pub agent: String,
    pub attempt: u32,
    pub attempts_in_run: u32,
    pub input: Value,
    pub owner_id: Option<UserId>,
    pub parent_id: Option<TaskId>,
    pub trace_id: Option<String>,
    /// For latency metrics and trace spans, when known (not for reaped leases).
    pub created_at: Option<Timestamp>,
    pub claimed_at: Option<Timestamp>,
}

impl From<ClaimedTask> for AttemptRef {
    fn from(c: ClaimedTask) -> Self {
        AttemptRef {
            task_id: c.id,
            agent: c.agent,
            attempt: c.attempt,
            attempts_in_run: c.attempts_in_run,
            input: c.input,
            owner_id: c.owner_id,
            parent_id: c.parent_id,
            trace_id: c.trace_id,
            created_at: Some(c.created_at),
            claimed_at: Some(c.claimed_at),
        }
    }
}

impl From<LeaseInfo> for AttemptRef {
    fn from(l: LeaseInfo) -> Self {
        AttemptRef {
            task_id: l.task_id,
            agent: l.agent,
            attempt: l.attempt,
            attempts_in_run: l.attempts_in_run,
            input: l.input,
            owner_id: l.owner_id,
            parent_id: l.parent_id,
            trace_id: l.trace_id,
            created_at: None,
            claimed_at: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum AttemptOutcome {
    Succeeded(Value),
    Failed(TaskError),
    Cancelled(Option<TaskError>),
}

pub struct AttemptResult {
    pub attempt: AttemptRef,
    pub outcome: AttemptOutcome,
    /// Told whether the result counted (false: the attempt had lost its lease).
    pub ack: Option<oneshot::Sender<bool>>,
}

enum Item {
    Result(AttemptResult),
    Event(EventDraft),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Reporter {
    tx: mpsc::Sender<Item>,
}

pub struct ReporterDeps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub cache: Arc<dyn Cache>,
    pub agents: Arc<AgentRegistry>,
    pub max_batch: usize,
    pub metrics: Arc<crate::monitoring::Metrics>,
}

impl Reporter {
    pub fn start(deps: ReporterDeps) -> Self {
        let (tx, rx) = mpsc::channel(65_536);
        tokio::spawn(run(rx, deps));
        Reporter { tx }
    }

    /// Hands in the end of an attempt. Returns once it is queued for recording.
    pub async fn finish(&self, result: AttemptResult) -> Result<()> {
        self.tx
            .send(Item::Result(result))
            .await
            .map_err(|_| Error::unavailable("the completion path is shut down"))
    }

    /// Returns once everything handed in before the call is recorded (for shutdown).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Item::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Hands in a live event (log, progress, partial output) of a running attempt.
    pub async fn emit(&self, draft: EventDraft) -> Result<()> {
        self.tx
            .send(Item::Event(draft))
            .await
            .map_err(|_| Error::unavailable("the completion path is shut down"))
    }
}

async fn run(mut rx: mpsc::Receiver<Item>, deps: ReporterDeps) {
    let max = deps.max_batch.max(1);
    let mut buf = Vec::with_capacity(max);
    loop {
        if rx.recv_many(&mut buf, max).await == 0 {
            return;
        }
        let mut drafts = Vec::new();
        let mut results = Vec::new();
        let mut flushes = Vec::new();
        for item in buf.drain(..) {
            match item {
                Item::Event(d) => drafts.push(d),
                Item::Result(r) => results.push(r),
                Item::Flush(done) => flushes.push(done),
            }
        }
        // Events before results: a task's last log lines precede its final event.
        if !drafts.is_empty() {
            record_events(&deps, drafts).await;
        }
        if !results.is_empty() {
            complete(&deps, results).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn record_events(deps: &ReporterDeps, drafts: Vec<EventDraft>) {
    match deps.store.record_events(drafts).await {
        Ok(recorded) => {
            let events: Vec<SharedEvent> = recorded
                .into_iter()
                .filter_map(|r| {
                    r.seq.map(|seq| {
                        Arc::new(TaskEvent {
                            task_id: r.draft.task_id,
                            seq,
                            agent: r.agent,
                            owner_id: r.owner_id,
                            at: r.draft.at,
                            body: r.draft.body,
                        })
                    })
                })
                .collect();
            if !events.is_empty() {
                send(&deps.bus, BusMessage::Tasks { events }).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "recording task events failed; they are dropped"),
    }
}

async fn complete(deps: &ReporterDeps, mut results: Vec<AttemptResult>) {
    let now = Timestamp::now();
    let mut completions = Vec::with_capacity(results.len());
    let mut cache_after = Vec::new();
    let mut limited_agents = BTreeSet::new();
    for r in &mut results {
        let entry = deps.agents.get(&r.attempt.agent).await.ok().flatten();
        if entry
            .as_ref()
            .is_some_and(|e| e.spec().concurrency.is_some())
        {
            limited_agents.insert(r.attempt.agent.clone());
        }
        // The outcome moves into the completion (outputs are not copied); what stays
        // behind in `results` is only read for its attempt and ack.
        let attempt_outcome = std::mem::replace(&mut r.outcome, AttemptOutcome::Cancelled(None));
        let outcome = decide(deps, entry.as_deref(), &r.attempt, attempt_outcome, now).await;
        if let (Outcome::Succeeded { output }, Some(entry)) = (&outcome, &entry)
            && let Some(ttl) = entry.spec().cache_ttl_ms
        {
            cache_after.push((
                result_cache_key(entry, &r.attempt.input),
                output.clone(),
                ttl,
            ));
        }
        completions.push(Completion {
            task_id: r.attempt.task_id,
            attempt: r.attempt.attempt,
            at: now,
            outcome,
        });
    }
    let outcome = retry_unavailable(|| deps.store.complete_tasks(&completions)).await;
    match outcome {
        Ok(done) => {
            deps.metrics
                .completed(&results, &completions, &done.rejected, now);
            for r in results {
                if let Some(ack) = r.ack {
                    let _ = ack.send(!done.rejected.contains(&r.attempt.task_id));
                }
            }
            if !done.rejected.is_empty() {
                tracing::info!(
                    count = done.rejected.len(),
                    "results for attempts that no longer hold their lease were rejected"
                );
            }
            announce(&deps.bus, done.transitions, now).await;
            if !limited_agents.is_empty() {
                send(
                    &deps.bus,
                    BusMessage::Wake {
                        agents: limited_agents.into_iter().collect(),
                    },
                )
                .await;
            }
            for (key, output, ttl) in cache_after {
                let bytes = serde_json::to_vec(&output).unwrap_or_default();
                if let Err(e) = deps
                    .cache
                    .set(&key, &bytes, Duration::from_millis(ttl))
                    .await
                {
                    tracing::warn!(error = %e, "could not fill the result cache");
                }
            }
        }
        Err(e) => {
            // Nothing was recorded; the leases will expire and the reaper retries the tasks.
            tracing::error!(error = %e, count = completions.len(), "recording task results failed");
            for r in results {
                if let Some(ack) = r.ack {
                    let _ = ack.send(false);
                }
            }
        }
    }
}

/// Retries a store call a few times while the database is briefly unavailable.
async fn retry_unavailable<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut delay = Duration::from_millis(50);
    for _ in 0..6 {
        match f().await {
            Err(e) if e.code == switchyard_core::ErrorCode::Unavailable => {
                tracing::warn!(error = %e, "database unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
    f().await
}

pub fn result_cache_key(entry: &AgentEntry, input: &Value) -> String {
    format!(
        "result:{}",
        input_fingerprint(&entry.spec().name, &entry.spec().version, input)
    )
}

async fn decide(
    deps: &ReporterDeps,
    entry: Option<&AgentEntry>,
    attempt: &AttemptRef,
    outcome: AttemptOutcome,
    now: Timestamp,
) -> Outcome {
    let error = match outcome {
        AttemptOutcome::Cancelled(error) => {
            return Outcome::Cancelled {
                error: Some(error.unwrap_or_else(|| {
                    TaskError::permanent(codes::CANCELLED, "cancelled while running")
                })),
            };
        }
        AttemptOutcome::Succeeded(output) => {
            let violations = entry
                .and_then(|e| e.output_schema.as_ref())
                .and_then(|s| s.check(&output).err());
            match violations {
                None => {
                    return Outcome::Succeeded { output };
                }
                Some(v) => TaskError {
                    details: Some(Box::new(json!({ "violations": v }))),
                    ..TaskError::permanent(
                        codes::INVALID_OUTPUT,
                        "the output does not match the agent's output_schema",
                    )
                },
            }
        }
        AttemptOutcome::Failed(e) => e,
    };
    let default_policy = Default::default();
    let (policy, fallback) = match entry {
        Some(e) => (&e.spec().retry, e.spec().fallback.as_deref()),
        None => (&default_policy, None),
    };
    match decide_failure(
        &error,
        attempt.attempts_in_run,
        policy,
        fallback,
        rand::random::<f64>(),
    ) {
        FailureDecision::Retry { delay_ms } => Outcome::Retry {
            error,
            run_at: now.plus_ms(delay_ms),
        },
        FailureDecision::Dead => Outcome::Dead { error },
        FailureDecision::Fallback { agent } => {
            match fallback_task(deps, &agent, attempt, now).await {
                Ok(task) => Outcome::Fallback {
                    error,
                    fallback: Box::new(task),
                },
                Err(reason) => Outcome::Dead {
                    error: TaskError {
                        details: Some(Box::new(
                            json!({ "original_error": error, "fallback_agent": agent }),
                        )),
                        ..TaskError::new(
                            ErrorClass::Permanent,
                            codes::FALLBACK_REJECTED,
                            format!(
                                "fallback agent {agent:?} could not take over: {}",
                                reason.message
                            ),
                        )
                    },
                },
            }
        }
    }
}

async fn fallback_task(
    deps: &ReporterDeps,
    agent: &str,
    from: &AttemptRef,
    now: Timestamp,
) -> Result<NewTask> {
    let entry = deps
        .agents
        .get(agent)
        .await?
        .ok_or_else(|| Error::agent_not_found(agent))?;
    let input = match &entry.input_schema {
        Some(schema) => schema.prepare(from.input.clone(), "the input")?,
        None => from.input.clone(),
    };
    Ok(NewTask {
        id: TaskId::new(),
        agent: agent.to_owned(),
        input,
        priority: entry.spec().priority,
        run_at: now,
        owner_id: from.owner_id,
        idempotency_key: None,
        parent_id: from.parent_id,
        fallback_of: Some(from.task_id),
        trace_id: from.trace_id.clone(),
        created_at: now,
        cached_output: None,
        claim: None,
    })
}
