//! The completion path of the Error Recovery flow, batched.
//!
//! Workers hand in attempt results and live events; one loop groups whatever has
//! arrived, numbers the events from memory ([`numbering`]), publishes them and hands
//! them to be stored behind ([`event_writer`]), then decides each result's fate
//! (succeed, retry with backoff, fall back, dead), records all of it in one transaction,
//! publishes the transitions and fills the result cache.

mod event_writer;
mod numbering;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::cache::{Cache, EventBus};
use switchyard_core::event::{BusMessage, SharedEvent};
use switchyard_core::json::input_fingerprint;
use switchyard_core::store::{
    AttemptRef, Completion, CompletionResult, EventDraft, NewTask, Outcome, Store,
};
use switchyard_core::task::{ErrorClass, FailureDecision, TaskError, codes, decide_failure};
use switchyard_core::{Error, ErrorCode, Result, TaskId, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::agents::{AgentEntry, AgentRegistry};
use crate::announcer::announce;
use crate::waker::Waker;
use event_writer::EventWriter;
use numbering::Numbering;

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
    /// Results decided earlier that wait to be recorded.
    Decided(Vec<Decided>),
    Event(EventDraft),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Completer {
    tx: mpsc::Sender<Item>,
}

pub struct CompleterDeps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub cache: Arc<dyn Cache>,
    pub agents: Arc<AgentRegistry>,
    pub max_batch: usize,
    /// Stream events each task keeps (`queue.max_stream_events`).
    pub keep_stream: u32,
    /// The most live events published and not yet stored: less than the event hub's
    /// window of recent events (`queue.replay_events`), so that a follower that resumes
    /// finds each of them stored or in the window.
    pub max_unstored: usize,
    pub metrics: Arc<switchyard_monitoring::Metrics>,
    /// Told when a child task finishes, for its parent's join.
    pub waker: Waker,
    /// Paused when a worker reports `rate_limited` with a Retry-After.
    pub limiter: Arc<dyn switchyard_core::flow::RateLimiter>,
}

impl Completer {
    pub fn start(deps: CompleterDeps) -> Self {
        let (tx, rx) = mpsc::channel(65_536);
        tokio::spawn(run(rx, deps, tx.downgrade()));
        Completer { tx }
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

async fn run(mut rx: mpsc::Receiver<Item>, deps: CompleterDeps, loopback: Loopback) {
    let max = deps.max_batch.max(1);
    let mut buf = Vec::with_capacity(max);
    let mut numbering = Numbering::new();
    let mut writer = EventWriter::start(
        deps.store.clone(),
        deps.keep_stream,
        deps.max_unstored,
        event_writer::PACE,
    );
    loop {
        if rx.recv_many(&mut buf, max).await == 0 {
            return;
        }
        let mut drafts = Vec::new();
        let mut results = Vec::new();
        let mut flushes = Vec::new();
        let mut waiting = Vec::new();
        for item in buf.drain(..) {
            match item {
                Item::Event(d) => drafts.push(d),
                Item::Result(r) => results.push(r),
                Item::Decided(d) => waiting.extend(d),
                Item::Flush(done) => flushes.push(done),
            }
        }
        // Events before results: a task's last log lines precede its final event.
        if !drafts.is_empty() {
            record_events(&deps, &mut numbering, &mut writer, drafts).await;
        }
        if !waiting.is_empty() || !results.is_empty() || !flushes.is_empty() {
            // A task's final event is stored after its live events.
            writer.stored().await;
        }
        for d in &waiting {
            numbering.forget(d.attempt.task_id, d.attempt.attempt);
        }
        if !waiting.is_empty() {
            record(&deps, &loopback, waiting).await;
        }
        for r in &results {
            numbering.forget(r.attempt.task_id, r.attempt.attempt);
        }
        if !results.is_empty() {
            complete(&deps, &loopback, results).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Numbers live events, publishes them and hands them to be stored: a follower waits
/// for neither the database nor the write. One that connects meanwhile finds them in the
/// event hub's window of recent events (the backlog merges it with the store). Only an
/// attempt's first events (or those of an attempt that ran through its numbers) wait
/// for a block of numbers from the store.
async fn record_events(
    deps: &CompleterDeps,
    numbering: &mut Numbering,
    writer: &mut EventWriter,
    drafts: Vec<EventDraft>,
) {
    for grant in writer.grants() {
        match grant.blocks {
            Ok(blocks) => numbering.renewed(&grant.asked, blocks),
            Err(e) => {
                tracing::warn!(error = %e, "reserving event numbers ahead failed; asking again when due");
                numbering.not_renewed(&grant.asked);
            }
        }
    }
    let missing = numbering.missing(&drafts);
    if !missing.is_empty() {
        match retry_unavailable(|| deps.store.reserve_event_numbers(&missing)).await {
            Ok(blocks) => numbering.granted(&missing, blocks),
            // Their events get no numbers below, and are dropped.
            Err(e) => {
                tracing::error!(error = %e, "reserving event numbers failed; those attempts' events are dropped")
            }
        }
    }
    let numbered = numbering.number(drafts);
    let renewals = numbering.renewals();
    if !renewals.is_empty() {
        writer.reserve(renewals);
    }
    if numbered.is_empty() {
        return;
    }
    let Some(room) = writer.room(numbered.len()).await else {
        return;
    };
    let events: Vec<SharedEvent> = numbered.iter().map(|n| n.event.clone()).collect();
    deps.bus.send(BusMessage::Tasks { events }).await;
    writer.store(numbered, room).await;
}

/// An attempt's result with its fate decided, until it is recorded.
struct Decided {
    attempt: AttemptRef,
    completion: Completion,
    ack: Option<oneshot::Sender<bool>>,
    /// The agent has a concurrency limit: its dispatchers are woken when a slot frees.
    limited: bool,
    /// What to put in the result cache once recorded (key, output, TTL).
    cache: Option<(String, Value, u64)>,
    /// The database refused this result once: it now stands for the attempt's failure.
    refused: bool,
}

/// The completer's loop, for results that wait to be tried again. Weak, so that waiting
/// results do not keep a shut-down completer alive.
type Loopback = mpsc::WeakSender<Item>;

async fn complete(deps: &CompleterDeps, loopback: &Loopback, results: Vec<AttemptResult>) {
    let now = Timestamp::now();
    let mut decided = Vec::with_capacity(results.len());
    for r in results {
        decided.push(decide_result(deps, r, now).await);
    }
    record(deps, loopback, decided).await;
}

async fn decide_result(deps: &CompleterDeps, r: AttemptResult, now: Timestamp) -> Decided {
    let entry = deps.agents.get(&r.attempt.agent).await.ok().flatten();
    let limited = entry
        .as_ref()
        .is_some_and(|e| e.spec().concurrency.is_some() || e.spec().concurrency_per_key.is_some());
    let outcome = decide(deps, entry.as_deref(), &r.attempt, r.outcome, now).await;
    let cache = match (&outcome, &entry) {
        (Outcome::Succeeded { output }, Some(entry)) => entry.spec().cache_ttl_ms.map(|ttl| {
            (
                result_cache_key(entry, &r.attempt.input),
                output.clone(),
                ttl,
            )
        }),
        _ => None,
    };
    Decided {
        completion: Completion {
            task_id: r.attempt.task_id,
            attempt: r.attempt.attempt,
            at: now,
            outcome,
        },
        attempt: r.attempt,
        ack: r.ack,
        limited,
        cache,
        refused: false,
    }
}

/// Records decided results. A result is never dropped: a batch the database refuses is
/// recorded member by member, so that one result it cannot hold fails alone; that
/// result is recorded as a failure of its attempt instead; and results that meet an
/// unavailable database wait and are tried again (their workers' heartbeats would
/// otherwise keep the tasks `running` for ever).
async fn record(deps: &CompleterDeps, loopback: &Loopback, mut decided: Vec<Decided>) {
    // Moved out (outputs are not copied), and back in should the batch need another try.
    let completions: Vec<Completion> = decided
        .iter_mut()
        .map(|d| take_completion(&mut d.completion))
        .collect();
    let e = match retry_unavailable(|| deps.store.complete_tasks(&completions)).await {
        Ok(done) => return recorded(deps, decided, completions, done).await,
        Err(e) => e,
    };
    for (d, c) in decided.iter_mut().zip(completions) {
        d.completion = c;
    }
    if e.code == ErrorCode::Unavailable {
        tracing::error!(error = %e, count = decided.len(), "recording task results failed; trying again");
        park(loopback, decided);
    } else if decided.len() > 1 {
        tracing::warn!(error = %e, count = decided.len(), "a batch of task results was refused; recording them one by one");
        for d in decided {
            Box::pin(record(deps, loopback, vec![d])).await;
        }
    } else if let Some(d) = decided.into_iter().next() {
        unrecordable(deps, loopback, d, e).await;
    }
}

/// The completion, leaving a placeholder with the same attempt behind.
fn take_completion(c: &mut Completion) -> Completion {
    let placeholder = Completion {
        task_id: c.task_id,
        attempt: c.attempt,
        at: c.at,
        outcome: Outcome::Cancelled { error: None },
    };
    std::mem::replace(c, placeholder)
}

/// One result the database refused on its own: recorded as a permanent failure of its
/// attempt, which the task's policy then handles (fallback or dead).
async fn unrecordable(deps: &CompleterDeps, loopback: &Loopback, d: Decided, e: Error) {
    if d.refused {
        // Even the failure could not be recorded: the database is at fault, not the
        // result. Keep it, as for an unavailable database.
        tracing::error!(error = %e, task_id = %d.attempt.task_id, "recording a task's failure failed; trying again");
        park(loopback, vec![d]);
        return;
    }
    tracing::warn!(error = %e, task_id = %d.attempt.task_id, "a task's result could not be stored; recording the attempt as failed");
    let error = TaskError::permanent(
        codes::RESULT_NOT_RECORDED,
        format!("the attempt's result could not be stored: {}", e.message),
    );
    let entry = deps.agents.get(&d.attempt.agent).await.ok().flatten();
    let outcome = decide(
        deps,
        entry.as_deref(),
        &d.attempt,
        AttemptOutcome::Failed(error),
        d.completion.at,
    )
    .await;
    let failed = Decided {
        completion: Completion {
            outcome,
            ..d.completion
        },
        cache: None,
        refused: true,
        ..d
    };
    Box::pin(record(deps, loopback, vec![failed])).await;
}

/// How long results wait before they are tried again while the database is down.
const PARKED_RETRY: Duration = Duration::from_secs(2);

/// Hands results back to the loop after a pause.
fn park(loopback: &Loopback, decided: Vec<Decided>) {
    let Some(tx) = loopback.upgrade() else {
        for d in decided {
            if let Some(ack) = d.ack {
                let _ = ack.send(false);
            }
        }
        return;
    };
    tokio::spawn(async move {
        tokio::time::sleep(PARKED_RETRY).await;
        let _ = tx.send(Item::Decided(decided)).await;
    });
}

async fn recorded(
    deps: &CompleterDeps,
    decided: Vec<Decided>,
    completions: Vec<Completion>,
    done: CompletionResult,
) {
    let now = completions.first().map_or_else(Timestamp::now, |c| c.at);
    let attempts: Vec<&AttemptRef> = decided.iter().map(|d| &d.attempt).collect();
    deps.metrics
        .completed(&attempts, &completions, &done.rejected, now);
    if !done.rejected.is_empty() {
        tracing::info!(
            count = done.rejected.len(),
            "results for attempts that no longer hold their lease were rejected"
        );
    }
    let mut limited_agents = BTreeSet::new();
    let mut cache_after = Vec::new();
    for (d, c) in decided.into_iter().zip(&completions) {
        let accepted = !done.rejected.contains(&d.attempt.task_id);
        if accepted
            && !matches!(c.outcome, Outcome::Retry { .. })
            && let Some(parent) = d.attempt.parent_id
        {
            deps.waker.child_finished(parent);
        }
        if let Some(ack) = d.ack {
            let _ = ack.send(accepted);
        }
        if d.limited {
            limited_agents.insert(d.attempt.agent);
        }
        cache_after.extend(d.cache.filter(|_| accepted));
    }
    announce(&deps.bus, done.transitions, now).await;
    if !limited_agents.is_empty() {
        deps.bus
            .send(BusMessage::Wake {
                agents: limited_agents.into_iter().collect(),
            })
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

/// A worker reported `rate_limited` with a Retry-After for an agent with a rate limit:
/// none of the agent's tasks (of the task's key, for a per-key limit) start before then.
async fn pause_if_rate_limited(
    deps: &CompleterDeps,
    entry: Option<&AgentEntry>,
    attempt: &AttemptRef,
    error: &TaskError,
    now: Timestamp,
) {
    use switchyard_core::flow::{flow_key, limiter_key};
    use switchyard_core::task::ErrorClass;
    let (Some(entry), Some(after_ms)) = (entry, error.retry_after_ms) else {
        return;
    };
    let spec = entry.spec();
    let Some(limit) = &spec.rate_limit else {
        return;
    };
    if error.class != ErrorClass::RateLimited {
        return;
    }
    let key = limit
        .key
        .as_deref()
        .and_then(|pointer| flow_key(None, Some(pointer), &attempt.input));
    let until = now.plus_ms(after_ms.min(24 * 3_600_000));
    if let Err(e) = deps
        .limiter
        .pause(&limiter_key(&spec.name, key.as_deref()), until)
        .await
    {
        tracing::warn!(agent = %spec.name, error = %e, "could not pause the agent's starts");
    }
}

async fn decide(
    deps: &CompleterDeps,
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
    pause_if_rate_limited(deps, entry, attempt, &error, now).await;
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
    deps: &CompleterDeps,
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
    let flow_key = switchyard_core::flow::flow_key(None, entry.spec().flow_key_pointer(), &input);
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
        flow_key,
        schedule: None,
        scheduled_for: None,
        cached_output: None,
        claim: None,
    })
}

#[cfg(test)]
mod tests;
