//! The remote-worker gateway, `/api/v1/workers/ws` (API key with scope `worker`).
//!
//! A worker says `hello` with the agents it serves (registering or updating them) and
//! its slots; it becomes a dispatcher consumer and receives `assign` messages from the
//! same batched queue as the built-in runtime, within agent concurrency limits. Results
//! go through the same completion path; a result for an attempt the worker no longer
//! holds is answered `accepted: false`. When the connection drops, its tasks are failed
//! as `worker_lost` at once (retried per policy). The connection drives a
//! [`WorkerSession`], as the built-in runtime does; this module keeps the protocol.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use switchyard_core::auth::{Permission, Principal};
use switchyard_core::event::{EventBody, LogLevel};
use switchyard_core::retry::RetryPolicy;
use switchyard_core::step::{StepDraft, StepOutcome, refusals};
use switchyard_core::store::AttemptRef;
use switchyard_core::store::{ClaimedTask, EventDraft};
use switchyard_core::task::{ErrorClass, TaskError};
use switchyard_core::wait::{Wait, WaitKind};
use switchyard_core::{Error, ErrorCode, TaskId, Timestamp};
use switchyard_engine::agents::DeclaredAgent;
use switchyard_engine::completer::AttemptOutcome;
use switchyard_engine::dispatch::Serves;
use switchyard_engine::tasks::SubmitRequest;
use switchyard_engine::worker_session::{
    Assignments, Handover, StepRefusal, WaitAnswer, WorkerProfile, WorkerSession,
};
use switchyard_protocol::worker::{self as proto, AgentDecl, ServerMessage, WorkerMessage};

use super::{
    HANDSHAKE_TIMEOUT, Incoming, OUTBOUND_QUEUE, Outbox, close, next_text, protocol_error, split,
    upgrade_principal, with_limits,
};
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::ws::client::WsParams;

pub const MAX_SLOTS: u32 = 4_096;
/// A worker's outbound queue holds a full set of assignments (at most its slots), a
/// cancel for each of them and the usual headroom for acks and control messages: a
/// worker that reads its socket is never mistaken for a slow consumer however many
/// slots it declared, and one that stops reading still hits a bound.
const WORKER_OUTBOUND_QUEUE: usize = 2 * MAX_SLOTS as usize + OUTBOUND_QUEUE;
pub const MAX_AGENTS: usize = 256;

/// The worker WebSocket: remote workers in any language connect here. See docs/protocol.md.
#[utoipa::path(get, operation_id = "worker_websocket", path = "/api/v1/workers/ws", tag = "system", params(WsParams), security(("bearer" = [])),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn worker_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<WsParams>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let principal = upgrade_principal(&state, &headers, params.ticket.as_deref())
        .await?
        .ok_or_else(|| {
            Error::unauthorized("workers authenticate with `Authorization: Bearer <API key>`")
        })?;
    if !principal.allows(Permission::Work) {
        return Err(Error::forbidden(
            "this credential cannot act as a worker; use an API key with the worker scope",
        )
        .into());
    }
    let ws = ws.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("expected a WebSocket upgrade: {e}"),
        )
    })?;
    // A step's result, as large as the configuration allows, fits a message with room for
    // its envelope.
    let max_step = state.engine.config().queue.max_step_output_bytes;
    let max_message = switchyard_protocol::MAX_MESSAGE_BYTES.max(max_step + 64 * 1024);
    Ok(with_limits(ws, max_message).on_upgrade(move |socket| session(state, socket, principal)))
}

struct Session {
    state: AppState,
    principal: Principal,
    outbox: Outbox,
    worker: WorkerSession,
    assignments: Assignments,
    agents: HashSet<String>,
}

async fn session(state: AppState, socket: WebSocket, principal: Principal) {
    let metrics = state.engine.monitoring().metrics.clone();
    let _connected = switchyard_monitoring::metrics::GaugeGuard::new(&metrics.ws_workers);
    let (outbox, mut stream, _writer) = split(socket, WORKER_OUTBOUND_QUEUE);
    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, next_text(&mut stream, &outbox)).await
    {
        Ok(Incoming::Text(t)) => t,
        _ => {
            outbox.send(&protocol_error(
                "protocol",
                "send {\"type\":\"hello\",…} first",
            ));
            outbox.close(close::POLICY, "hello expected").await;
            return;
        }
    };
    let mut session = match Session::start(&state, principal, &outbox, &hello).await {
        Ok(s) => s,
        Err(e) => {
            outbox
                .send_wait(&protocol_error(e.code.as_str(), &e.message))
                .await;
            outbox.close(close::POLICY, "hello rejected").await;
            return;
        }
    };
    let mut cancels = session.worker.cancels();
    let shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = outbox.slow.cancelled() => {
                outbox.close(close::SLOW_CONSUMER, "slow_consumer").await;
                break;
            }
            _ = shutdown.cancelled() => {
                outbox.close(close::GOING_AWAY, "server shutting down").await;
                break;
            }
            batch = session.assignments.next() => match batch {
                Some(batch) => session.assign(batch),
                None => break,
            },
            Some(cancel) = cancels.next() => {
                session.outbox.send(&ServerMessage::Cancel {
                    task_id: cancel.task_id.0,
                    attempt: cancel.attempt,
                });
            }
            incoming = next_text(&mut stream, &outbox) => match incoming {
                Incoming::Text(text) => session.handle(&text).await,
                Incoming::Ignored => {}
                Incoming::Closed => break,
            },
        }
    }
    session.disconnected().await;
}

fn error_class(class: proto::ErrorClass) -> ErrorClass {
    match class {
        proto::ErrorClass::Retryable => ErrorClass::Retryable,
        proto::ErrorClass::Permanent => ErrorClass::Permanent,
        proto::ErrorClass::RateLimited => ErrorClass::RateLimited,
    }
}

/// What goes with an assignment beside the task itself.
#[derive(Default)]
struct Extras {
    /// Results of durable steps that succeeded in earlier runs.
    steps: serde_json::Map<String, serde_json::Value>,
    /// The files the input refers to, with signed download URLs.
    files: std::collections::BTreeMap<String, proto::FileRef>,
    /// The attempt's signed upload URL.
    upload_url: Option<String>,
}

/// Sends `task`'s assignment and hands the task back. The message borrows the agent and
/// input while it is encoded, instead of the input being copied for every assignment.
fn send_assignment(
    outbox: &Outbox,
    mut task: ClaimedTask,
    timeout_ms: u64,
    extras: Extras,
) -> ClaimedTask {
    let traceparent = task
        .trace_id
        .as_ref()
        .map(|t| format!("00-{t}-{}-01", &task.id.0.simple().to_string()[16..]));
    let message = ServerMessage::Assign {
        task_id: task.id.0,
        attempt: task.attempt,
        agent: std::mem::take(&mut task.agent),
        input: task.input.take(),
        timeout_ms,
        traceparent,
        parent_id: task.parent_id.map(|p| p.0),
        steps: extras.steps,
        files: extras.files,
        upload_url: extras.upload_url,
    };
    outbox.send(&message);
    if let ServerMessage::Assign { agent, input, .. } = message {
        task.agent = agent;
        task.input = input;
    }
    task
}

/// A step (a wait, a spawn) the database would not take: its attempt fails, to be
/// retried, and the worker is told its lease is lost.
async fn unrecorded(
    worker: &WorkerSession,
    task_id: TaskId,
    attempt: u32,
    name: &str,
    e: Error,
) -> StepRefusal {
    tracing::warn!(error = %e, task = %task_id, "could not record a step");
    let error = TaskError::retryable(
        "step_not_recorded",
        format!("step {name:?} could not be stored: {}", e.message),
    );
    let _ = worker
        .finish(task_id, attempt, AttemptOutcome::Failed(error), None)
        .await;
    StepRefusal {
        code: refusals::LEASE_LOST,
        message: "the step could not be stored; the attempt is retried".into(),
    }
}

fn to_declared(decl: AgentDecl) -> DeclaredAgent {
    DeclaredAgent {
        name: decl.name,
        version: decl.version,
        description: decl.description,
        input_schema: decl.input_schema,
        output_schema: decl.output_schema,
        timeout_ms: decl.timeout_ms,
        retry: decl.retry.map(|r| {
            let defaults = RetryPolicy::default();
            RetryPolicy {
                max_attempts: r.max_attempts.unwrap_or(defaults.max_attempts),
                base_ms: r.base_ms.unwrap_or(defaults.base_ms),
                cap_ms: r.cap_ms.unwrap_or(defaults.cap_ms),
            }
        }),
    }
}

impl Session {
    async fn start(
        state: &AppState,
        principal: Principal,
        outbox: &Outbox,
        hello: &str,
    ) -> Result<Session, Error> {
        let (name, agents, slots, version) = match serde_json::from_str::<WorkerMessage>(hello) {
            Ok(WorkerMessage::Hello {
                name,
                agents,
                slots,
                version,
            }) => (name, agents, slots, version),
            Ok(_) => return Err(Error::invalid_parameter("the first message must be hello")),
            Err(e) => {
                return Err(Error::invalid_parameter(format!(
                    "could not read hello: {e}"
                )));
            }
        };
        switchyard_core::text::refuse_nul("name", &name)?;
        if let Some(v) = &version {
            switchyard_core::text::refuse_nul("version", v)?;
        }
        if name.trim().is_empty() || name.len() > 100 {
            return Err(Error::invalid_parameter(
                "the worker name must be 1-100 characters",
            ));
        }
        if slots == 0 || slots > MAX_SLOTS {
            return Err(Error::invalid_parameter(format!(
                "slots must be between 1 and {MAX_SLOTS}"
            )));
        }
        if agents.is_empty() || agents.len() > MAX_AGENTS {
            return Err(Error::invalid_parameter(format!(
                "declare between 1 and {MAX_AGENTS} agents"
            )));
        }
        let mut names = HashSet::new();
        for decl in agents {
            let agent = state
                .engine
                .agents()
                .declare_remote(&principal, to_declared(decl))
                .await?;
            names.insert(agent.spec.name);
        }
        let mut agents: Vec<String> = names.iter().cloned().collect();
        agents.sort();
        let (worker, assignments) = WorkerSession::open(
            &state.engine,
            WorkerProfile {
                name,
                kind: "remote".into(),
                serves: Serves::Agents(names.clone()),
                agents,
                slots,
                version: version.unwrap_or_else(|| "unknown".into()),
                host: None,
            },
        )
        .await?;
        let queue = &state.engine.config().queue;
        let worker_id = worker.worker_id();
        outbox.send(&ServerMessage::Welcome {
            worker_id: worker_id.0,
            lease_ms: queue.lease_ms,
            heartbeat_ms: queue.heartbeat_ms,
        });
        tracing::info!(worker = %worker.name(), id = %worker_id, slots, "remote worker connected");
        Ok(Session {
            state: state.clone(),
            principal,
            outbox: outbox.clone(),
            worker,
            assignments,
            agents: names,
        })
    }

    fn assign(&mut self, batch: Vec<ClaimedTask>) {
        for task in batch {
            let timeout_ms = self
                .state
                .engine
                .agents()
                .cached(&task.agent)
                .map_or(switchyard_core::agent::DEFAULT_TIMEOUT_MS, |e| {
                    e.spec().timeout_ms
                });
            let refs = switchyard_core::files::file_refs(&task.input).unwrap_or_default();
            if task.ran_before() || !refs.is_empty() {
                // Its memoized steps, or its files, are read first.
                self.assign_after_lookup(task, refs, timeout_ms);
                continue;
            }
            let extras = Extras {
                upload_url: Some(self.state.engine.files().upload_url(
                    task.id,
                    task.attempt,
                    switchyard_core::Timestamp::now(),
                    timeout_ms,
                )),
                ..Extras::default()
            };
            let task = send_assignment(&self.outbox, task, timeout_ms, extras);
            self.worker.hold(Arc::new(AttemptRef::from(task)));
        }
    }

    /// Assigns a task once what goes with it is read: the durable steps that succeeded
    /// in earlier runs, signed URLs for the files its input refers to. It is held from the
    /// start, so a worker's early answer finds it; when the lookup fails, the attempt goes
    /// back to the queue instead of running its steps again.
    fn assign_after_lookup(
        &self,
        task: ClaimedTask,
        refs: Vec<switchyard_core::files::FileRef>,
        timeout_ms: u64,
    ) {
        let worker = self.worker.clone();
        let outbox = self.outbox.clone();
        let files = self.state.engine.files().clone();
        worker.hold(Arc::new(AttemptRef::from(task.clone())));
        tokio::spawn(async move {
            let extras = async {
                let steps = if task.ran_before() {
                    worker.memoized_steps(&task).await?.into_iter().collect()
                } else {
                    serde_json::Map::new()
                };
                let (grants, upload_url) = files
                    .grants(task.id, task.attempt, &refs, timeout_ms)
                    .await?;
                let files = grants
                    .into_iter()
                    .map(|g| {
                        let f = g.record;
                        let r = proto::FileRef {
                            url: g.url,
                            name: f.name,
                            size: f.size,
                            content_type: f.content_type,
                            sha256: f.sha256,
                        };
                        (f.id.to_string(), r)
                    })
                    .collect();
                Ok::<_, switchyard_core::Error>(Extras {
                    steps,
                    files,
                    upload_url: Some(upload_url),
                })
            };
            match extras.await {
                Ok(extras) => {
                    send_assignment(&outbox, task, timeout_ms, extras);
                }
                Err(e) => {
                    tracing::warn!(error = %e, task = %task.id, "could not read what goes with an assignment; the task goes back to the queue");
                    let error = TaskError::retryable(
                        "assignment_unavailable",
                        format!(
                            "the task's durable steps or files could not be read: {}",
                            e.message
                        ),
                    );
                    let _ = worker
                        .finish(task.id, task.attempt, AttemptOutcome::Failed(error), None)
                        .await;
                }
            }
        });
    }

    /// The in-flight attempt a message refers to, if this worker still holds it.
    fn holds(&self, task_id: uuid::Uuid, attempt: u32) -> bool {
        self.worker.holds(TaskId(task_id), attempt)
    }

    async fn handle(&mut self, text: &str) {
        let message = match WorkerMessage::from_json(text) {
            Ok(m) => m,
            Err(e) => {
                self.outbox.send(&protocol_error(
                    "malformed_message",
                    &format!("could not read the message: {e}"),
                ));
                return;
            }
        };
        match message {
            WorkerMessage::Hello { .. } => {
                self.outbox
                    .send(&protocol_error("protocol", "hello was already received"));
            }
            WorkerMessage::Heartbeat {} => self.worker.heartbeat().await,
            WorkerMessage::Log {
                task_id,
                attempt,
                level,
                message,
            } => {
                let level = match level {
                    proto::Level::Debug => LogLevel::Debug,
                    proto::Level::Info => LogLevel::Info,
                    proto::Level::Warn => LogLevel::Warn,
                    proto::Level::Error => LogLevel::Error,
                };
                let message: String = message.chars().take(64 * 1024).collect();
                self.live(task_id, attempt, EventBody::Log { level, message })
                    .await;
            }
            WorkerMessage::Progress {
                task_id,
                attempt,
                progress,
                message,
            } => {
                let progress = progress
                    .filter(|p| p.is_finite())
                    .map(|p| p.clamp(0.0, 1.0));
                self.live(task_id, attempt, EventBody::Progress { progress, message })
                    .await;
            }
            WorkerMessage::Partial {
                task_id,
                attempt,
                data,
            } => {
                self.live(task_id, attempt, EventBody::Partial { data })
                    .await;
            }
            WorkerMessage::Result {
                task_id,
                attempt,
                output,
            } => {
                self.finish(task_id, attempt, AttemptOutcome::Succeeded(output))
                    .await;
            }
            WorkerMessage::Error {
                task_id,
                attempt,
                class,
                message,
                code,
                retry_after_ms,
            } => {
                let error = TaskError {
                    class: error_class(class),
                    code: code.unwrap_or_else(|| "worker_error".into()),
                    message,
                    retry_after_ms,
                    details: None,
                };
                self.finish(task_id, attempt, AttemptOutcome::Failed(error))
                    .await;
            }
            WorkerMessage::Cancelled { task_id, attempt } => {
                self.finish(task_id, attempt, AttemptOutcome::Cancelled(None))
                    .await;
            }
            WorkerMessage::Step {
                task_id,
                attempt,
                name,
                output,
                error,
                duration_ms,
            } => {
                let outcome = match error {
                    Some(e) => StepOutcome::Failed(TaskError {
                        class: error_class(e.class.unwrap_or(proto::ErrorClass::Retryable)),
                        code: e.code.unwrap_or_else(|| "step_error".into()),
                        message: e.message,
                        retry_after_ms: None,
                        details: None,
                    }),
                    // `"output": null` reads as no output: a step may return null.
                    None => StepOutcome::Succeeded(output.unwrap_or(serde_json::Value::Null)),
                };
                let finished_at = Timestamp::now();
                let draft = StepDraft {
                    task_id: TaskId(task_id),
                    attempt,
                    name,
                    outcome,
                    started_at: finished_at.minus_ms(duration_ms),
                    finished_at,
                };
                self.step(draft);
            }
            WorkerMessage::Wait {
                task_id,
                attempt,
                name,
                kind,
                duration_ms,
                until,
                signal,
                timeout_ms,
                children,
            } => {
                let now = Timestamp::now();
                let wait = match kind {
                    proto::WaitKind::Sleep => Wait {
                        kind: WaitKind::Sleep,
                        until: match (duration_ms, until) {
                            (Some(ms), None) => Some(now.plus_ms(ms)),
                            (None, Some(at)) => Some(Timestamp::from_millis(at).clamped()),
                            _ => None,
                        },
                        ..Wait::named(WaitKind::Sleep, name)
                    },
                    proto::WaitKind::Signal => Wait {
                        signal,
                        until: timeout_ms.map(|ms| now.plus_ms(ms)),
                        ..Wait::named(WaitKind::Signal, name)
                    },
                    proto::WaitKind::Children => Wait {
                        children: children.into_iter().map(TaskId).collect(),
                        ..Wait::named(WaitKind::Children, name)
                    },
                };
                self.wait(TaskId(task_id), attempt, wait);
            }
            WorkerMessage::Spawn {
                task_id,
                attempt,
                name,
                agent,
                input,
                priority,
            } => {
                let req = SubmitRequest {
                    agent,
                    input,
                    priority,
                    ..SubmitRequest::default()
                };
                self.spawn(TaskId(task_id), attempt, name, req);
            }
            WorkerMessage::Drain {} => {
                self.assignments.drain();
                self.outbox.send(&ServerMessage::Draining {});
            }
        }
    }

    /// Records a durable step off the read loop (a durable write must not hold up the
    /// worker's other messages) and answers `step_recorded`. A step that cannot be
    /// stored fails its attempt, to be retried: the worker is told its lease is lost.
    fn step(&self, draft: StepDraft) {
        let worker = self.worker.clone();
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            let (task_id, attempt, name) = (draft.task_id, draft.attempt, draft.name.clone());
            let refusal = match worker.record_step(draft).await {
                Ok(Ok(())) => None,
                Ok(Err(refusal)) => Some(refusal),
                Err(e) => Some(unrecorded(&worker, task_id, attempt, &name, e).await),
            };
            outbox.send(&ServerMessage::StepRecorded {
                task_id: task_id.0,
                attempt,
                name,
                accepted: refusal.is_none(),
                code: refusal.as_ref().map(|r| r.code.to_owned()),
                message: refusal.map(|r| r.message),
            });
        });
    }

    /// Begins a durable wait off the read loop and answers `wait_result`.
    fn wait(&self, task_id: TaskId, attempt: u32, wait: Wait) {
        let worker = self.worker.clone();
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            let name = wait.name.clone();
            let answer = |status, output, refusal: Option<StepRefusal>| ServerMessage::WaitResult {
                task_id: task_id.0,
                attempt,
                name: name.clone(),
                status,
                output,
                code: refusal.as_ref().map(|r| r.code.to_owned()),
                message: refusal.map(|r| r.message),
            };
            let message = match worker.wait(task_id, attempt, wait).await {
                Ok(Ok(WaitAnswer::Ready(output))) => {
                    answer(proto::WaitStatus::Ready, Some(output), None)
                }
                Ok(Ok(WaitAnswer::Suspended)) => answer(proto::WaitStatus::Suspended, None, None),
                Ok(Ok(WaitAnswer::TimedOut)) => answer(proto::WaitStatus::TimedOut, None, None),
                Ok(Err(refusal)) => answer(proto::WaitStatus::Refused, None, Some(refusal)),
                Err(e) => {
                    let refusal = unrecorded(&worker, task_id, attempt, &name, e).await;
                    answer(proto::WaitStatus::Refused, None, Some(refusal))
                }
            };
            outbox.send(&message);
        });
    }

    /// Spawns a child task off the read loop and answers `spawned`.
    fn spawn(&self, task_id: TaskId, attempt: u32, name: String, req: SubmitRequest) {
        let worker = self.worker.clone();
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            let result = match worker.spawn(task_id, attempt, name.clone(), req).await {
                Ok(result) => result,
                Err(e) => Err(unrecorded(&worker, task_id, attempt, &name, e).await),
            };
            let (child_id, refusal) = match result {
                Ok(id) => (Some(id.0), None),
                Err(refusal) => (None, Some(refusal)),
            };
            outbox.send(&ServerMessage::Spawned {
                task_id: task_id.0,
                attempt,
                name,
                accepted: refusal.is_none(),
                child_id,
                code: refusal.as_ref().map(|r| r.code.to_owned()),
                message: refusal.map(|r| r.message),
            });
        });
    }

    async fn live(&mut self, task_id: uuid::Uuid, attempt: u32, body: EventBody) {
        if !self.holds(task_id, attempt) {
            self.outbox.send(&protocol_error(
                "not_assigned",
                &format!("task {task_id} attempt {attempt} is not assigned to this worker"),
            ));
            return;
        }
        let draft = EventDraft {
            task_id: TaskId(task_id),
            attempt,
            at: Timestamp::now(),
            body,
        };
        if let Err(e) = self.worker.emit(draft).await {
            tracing::warn!(error = %e, "could not record a live event");
        }
    }

    async fn finish(&mut self, task_id: uuid::Uuid, attempt: u32, outcome: AttemptOutcome) {
        let (ack, answer) = tokio::sync::oneshot::channel();
        match self
            .worker
            .finish(TaskId(task_id), attempt, outcome, Some(ack))
            .await
        {
            Ok(Handover::NotHeld) => {
                self.outbox.send(&ServerMessage::Ack {
                    task_id,
                    attempt,
                    accepted: false,
                });
                return;
            }
            Ok(Handover::Handed) => {}
            Err(e) => tracing::error!(error = %e, "could not hand in a remote result"),
        }
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            let accepted = answer.await.unwrap_or(false);
            outbox.send(&ServerMessage::Ack {
                task_id,
                attempt,
                accepted,
            });
        });
    }

    /// The connection is gone: everything it held goes back to the queue as `worker_lost`.
    async fn disconnected(self) {
        let name = self.worker.name().to_owned();
        if let Err(e) = self.worker.lost(self.assignments).await {
            tracing::warn!(error = %e, "could not remove a disconnected worker");
        }
        tracing::info!(worker = %name, agents = ?self.agents, principal = %self.principal.user_id, "remote worker disconnected");
    }
}
