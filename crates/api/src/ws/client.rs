//! The client gateway, `/api/v1/ws`: authenticate, subscribe to tasks, an agent or
//! everything you may see (resumable with `since`), submit and cancel — with events
//! pushed as they happen. The message contract is in `switchyard_protocol::client`.

use std::collections::HashMap;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use switchyard_core::auth::{Permission, Principal};
use switchyard_core::event::TaskEvent;
use switchyard_core::store::Submitted;
use switchyard_core::{Error, ErrorCode, TaskId, Timestamp};
use switchyard_engine::events::Filter;
use switchyard_engine::tasks::SubmitRequest;
use switchyard_monitoring::metrics::GaugeGuard;
use switchyard_protocol::client::{ClientMessage, ServerMessage, Target};
use tokio::task::JoinHandle;
use utoipa::IntoParams;

use super::{
    HANDSHAKE_TIMEOUT, Incoming, OUTBOUND_QUEUE, Outbox, close, next_text, protocol_error, split,
    upgrade_principal, with_limits,
};
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::follow::{End, EventSink, TaskFollower, pump_many, pump_task};
use crate::sse::{SLOW_CONSUMER_MESSAGE, wire_json};

/// Most simultaneous subscriptions per connection.
pub const MAX_SUBSCRIPTIONS: usize = 1_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WsParams {
    /// A single-use ticket from `POST /api/v1/auth/ws-ticket` (for browsers, which cannot
    /// set headers). Alternatively send `{"type":"auth","token":…}` as the first message.
    pub ticket: Option<String>,
}

/// The client WebSocket. Authenticate with a bearer header, `?ticket=`, or a first
/// `{"type":"auth","token":…}` message; then subscribe, submit and cancel. See docs/protocol.md.
#[utoipa::path(get, operation_id = "client_websocket", path = "/api/v1/ws", tag = "tasks", params(WsParams),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn client_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<WsParams>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let principal = upgrade_principal(&state, &headers, params.ticket.as_deref()).await?;
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) if principal.is_none() => {
            return Err(Error::unauthorized(
                "missing credentials: a bearer header, `?ticket=`, or an auth message",
            )
            .into());
        }
        Err(e) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("expected a WebSocket upgrade: {e}"),
            ));
        }
    };
    Ok(with_limits(ws, switchyard_protocol::MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| session(state, socket, principal)))
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Task(TaskId),
    Agent(String),
    All,
    Alerts,
}

impl Key {
    fn target(&self) -> Target {
        match self {
            Key::Task(id) => Target {
                task_id: Some(id.0),
                ..Default::default()
            },
            Key::Agent(a) => Target {
                agent: Some(a.clone()),
                ..Default::default()
            },
            Key::All => Target {
                all: Some(true),
                ..Default::default()
            },
            Key::Alerts => Target {
                alerts: Some(true),
                ..Default::default()
            },
        }
    }

    fn parse(
        task_id: Option<uuid::Uuid>,
        agent: Option<String>,
        all: Option<bool>,
        alerts: Option<bool>,
    ) -> Result<Key, Error> {
        let all = all == Some(true);
        let alerts = alerts == Some(true);
        match (task_id, agent, all, alerts) {
            (Some(id), None, false, false) => Ok(Key::Task(TaskId(id))),
            (None, Some(agent), false, false) => Ok(Key::Agent(agent)),
            (None, None, true, false) => Ok(Key::All),
            (None, None, false, true) => Ok(Key::Alerts),
            _ => Err(Error::invalid_parameter(
                "name exactly one of task_id, agent, all: true or alerts: true",
            )),
        }
    }
}

struct Session {
    state: AppState,
    principal: Principal,
    outbox: Outbox,
    subs: HashMap<Key, JoinHandle<()>>,
}

struct WsSink(Outbox);

impl EventSink for WsSink {
    async fn emit(&mut self, event: &TaskEvent) -> bool {
        self.0.send_text(wire_json(event))
    }
}

async fn session(
    state: AppState,
    socket: axum::extract::ws::WebSocket,
    principal: Option<Principal>,
) {
    let metrics = state.engine.monitoring().metrics.clone();
    let _connected = GaugeGuard::new(&metrics.ws_clients);
    let (outbox, mut stream, _writer) = split(socket, OUTBOUND_QUEUE);
    let principal = match principal {
        Some(p) => p,
        None => match handshake(&state, &mut stream, &outbox).await {
            Some(p) => p,
            None => {
                outbox
                    .close(close::UNAUTHORIZED, "authentication failed")
                    .await;
                return;
            }
        },
    };
    outbox.send(&ServerMessage::Authenticated {
        user_id: principal.user_id.0,
        role: principal.role.as_str().to_owned(),
    });
    let shutdown = state.shutdown.clone();
    let mut session = Session {
        state,
        principal,
        outbox: outbox.clone(),
        subs: HashMap::new(),
    };
    loop {
        tokio::select! {
            _ = outbox.slow.cancelled() => {
                outbox.send_wait(&protocol_error("slow_consumer", SLOW_CONSUMER_MESSAGE)).await;
                outbox.close(close::SLOW_CONSUMER, "slow_consumer").await;
                break;
            }
            _ = shutdown.cancelled() => {
                outbox.close(close::GOING_AWAY, "server shutting down").await;
                break;
            }
            incoming = next_text(&mut stream, &outbox) => match incoming {
                Incoming::Text(text) => session.handle(&text).await,
                Incoming::Ignored => {}
                Incoming::Closed => break,
            },
        }
    }
    for (_, h) in session.subs.drain() {
        h.abort();
    }
}

/// Waits for `{"type":"auth","token":…}`.
async fn handshake(
    state: &AppState,
    stream: &mut futures::stream::SplitStream<axum::extract::ws::WebSocket>,
    outbox: &Outbox,
) -> Option<Principal> {
    let text = match tokio::time::timeout(HANDSHAKE_TIMEOUT, next_text(stream, outbox)).await {
        Ok(Incoming::Text(t)) => t,
        _ => {
            outbox.send(&protocol_error(
                "unauthorized",
                "send {\"type\":\"auth\",\"token\":…} first",
            ));
            return None;
        }
    };
    let token = match serde_json::from_str::<ClientMessage>(&text) {
        Ok(ClientMessage::Auth { token }) => token,
        _ => {
            outbox.send(&protocol_error(
                "unauthorized",
                "the first message must be {\"type\":\"auth\",\"token\":…}",
            ));
            return None;
        }
    };
    match state.engine.auth().authenticate(&token).await {
        Ok(p) => Some(p),
        Err(e) => {
            outbox.send(&protocol_error(e.code.as_str(), &e.message));
            None
        }
    }
}

fn error_message(e: &Error, reference: Option<String>) -> ServerMessage {
    let message = if e.code == ErrorCode::Internal {
        "internal error".to_owned()
    } else {
        e.message.clone()
    };
    if e.code == ErrorCode::Internal {
        tracing::error!(error = %e, "internal error on the WebSocket gateway");
    }
    ServerMessage::Error {
        code: e.code.as_str().to_owned(),
        message,
        reference,
    }
}

impl Session {
    async fn handle(&mut self, text: &str) {
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(m) => m,
            Err(e) => {
                self.outbox.send(&protocol_error(
                    "malformed_message",
                    &format!("could not read the message: {e}"),
                ));
                return;
            }
        };
        let result = match message {
            ClientMessage::Auth { .. } => Err(Error::invalid_state("already authenticated")),
            ClientMessage::Subscribe {
                task_id,
                agent,
                all,
                alerts,
                since,
            } => match Key::parse(task_id, agent, all, alerts) {
                Ok(key) => self.subscribe(key, since).await,
                Err(e) => Err(e),
            },
            ClientMessage::Unsubscribe {
                task_id,
                agent,
                all,
                alerts,
            } => self.unsubscribe(task_id, agent, all, alerts),
            ClientMessage::Submit {
                reference,
                agent,
                input,
                priority,
                delay_ms,
                idempotency_key,
                concurrency_key,
            } => {
                // Absent is `{}`, as over REST; any other non-object is refused.
                let input = if input.is_null() {
                    serde_json::Value::Object(Default::default())
                } else {
                    input
                };
                if let Err(e) = crate::routes::tasks::submit::check_input(&input) {
                    self.outbox.send(&error_message(&e, Some(reference)));
                    return;
                }
                let req = SubmitRequest {
                    id: None,
                    agent,
                    input,
                    priority,
                    run_at: delay_ms.map(|ms| Timestamp::now().plus_ms(ms)),
                    idempotency_key,
                    parent_id: None,
                    trace_id: None,
                    concurrency_key,
                    schedule: None,
                };
                self.submit(reference, req).await;
                Ok(())
            }
            ClientMessage::Cancel { task_id, reference } => {
                match self
                    .state
                    .engine
                    .tasks()
                    .cancel(&self.principal, TaskId(task_id))
                    .await
                {
                    Ok(task) => {
                        if let Some(reference) = reference {
                            let task = serde_json::to_value(task).unwrap_or_default();
                            self.outbox.send(&ServerMessage::Ack { reference, task });
                        }
                    }
                    Err(e) => {
                        self.outbox.send(&error_message(&e, reference));
                    }
                }
                Ok(())
            }
            ClientMessage::Ping {} => {
                self.outbox.send(&ServerMessage::Pong {});
                Ok(())
            }
        };
        if let Err(e) = result {
            self.outbox.send(&error_message(&e, None));
        }
    }

    async fn subscribe(&mut self, key: Key, since: Option<u64>) -> Result<(), Error> {
        let (needed, what) = match key {
            Key::Alerts => (Permission::ReadSystem, "alerts"),
            _ => (Permission::ReadTasks, "tasks"),
        };
        if !self.principal.allows(needed) {
            return Err(Error::forbidden(format!(
                "this credential is not allowed to read {what}"
            )));
        }
        if !self.subs.contains_key(&key) && self.subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(Error::invalid_parameter(format!(
                "at most {MAX_SUBSCRIPTIONS} subscriptions per connection"
            )));
        }
        let buffer = self.state.config.subscriber_buffer;
        let hub = &self.state.engine.hub();
        let outbox = self.outbox.clone();
        let shutdown = self.state.shutdown.clone();
        let handle = match &key {
            Key::Task(id) => {
                self.state
                    .engine
                    .tasks()
                    .visible(&self.principal, *id)
                    .await?;
                let sub = hub.subscribe(Filter::Task(*id), buffer);
                let task = self
                    .state
                    .engine
                    .tasks()
                    .visible(&self.principal, *id)
                    .await?;
                let backlog = self.state.engine.tasks().backlog(&task, since).await;
                let state = self.state.clone();
                let task_id = task.id;
                self.outbox.send(&ServerMessage::Subscribed {
                    target: key.target(),
                });
                tokio::spawn(async move {
                    let mut sink = WsSink(outbox);
                    let follower = TaskFollower::new(state, task_id, backlog, since, sub);
                    if pump_task(follower, &mut sink).await == End::Lagged {
                        sink.0.slow.cancel();
                    }
                })
            }
            Key::Agent(_) | Key::All => {
                let owner = self.principal.task_scope();
                let filter = match &key {
                    Key::Agent(agent) => Filter::Agent {
                        agent: agent.clone(),
                        owner,
                    },
                    _ => Filter::All { owner },
                };
                let mut sub = hub.subscribe(filter.clone(), buffer);
                // For many-task streams `since` is a time (Unix ms): resend recent events after it.
                let backlog = since.map_or_else(Vec::new, |ms| {
                    hub.recent_matching(&filter, |e| u64::try_from(e.at.millis()).unwrap_or(0) > ms)
                });
                self.outbox.send(&ServerMessage::Subscribed {
                    target: key.target(),
                });
                tokio::spawn(async move {
                    let mut sink = WsSink(outbox);
                    if pump_many(backlog, &mut sub, &shutdown, &mut sink).await == End::Lagged {
                        sink.0.slow.cancel();
                    }
                })
            }
            Key::Alerts => {
                let mut alerts = self.state.engine.monitoring().subscribe_alerts();
                self.outbox.send(&ServerMessage::Subscribed {
                    target: key.target(),
                });
                tokio::spawn(async move {
                    loop {
                        let event = tokio::select! {
                            _ = shutdown.cancelled() => return,
                            e = alerts.recv() => e,
                        };
                        match event {
                            Ok(event) => {
                                let event = serde_json::to_value(&*event).unwrap_or_default();
                                outbox.send(&ServerMessage::Alert { event });
                            }
                            // Alerts are rare; a lagging receiver just skips ahead.
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                        }
                    }
                })
            }
        };
        if let Some(old) = self.subs.insert(key, handle) {
            old.abort();
        }
        Ok(())
    }

    fn unsubscribe(
        &mut self,
        task_id: Option<uuid::Uuid>,
        agent: Option<String>,
        all: Option<bool>,
        alerts: Option<bool>,
    ) -> Result<(), Error> {
        let key = Key::parse(task_id, agent, all, alerts)?;
        if let Some(h) = self.subs.remove(&key) {
            h.abort();
        }
        self.outbox.send(&ServerMessage::Unsubscribed {
            target: key.target(),
        });
        Ok(())
    }

    /// Submits, acknowledges with the task, then streams its events.
    async fn submit(&mut self, reference: String, mut req: SubmitRequest) {
        let id = TaskId::new();
        req.id = Some(id);
        // Subscribe first: the task's events are buffered until the ack has been sent.
        let mut sub = self
            .state
            .engine
            .hub()
            .subscribe(Filter::Task(id), self.state.config.subscriber_buffer);
        let submitted = match self.state.engine.tasks().submit(&self.principal, req).await {
            Ok(s) => s,
            Err(e) => {
                self.outbox.send(&error_message(&e, Some(reference)));
                return;
            }
        };
        let (task, backlog, since) = match submitted {
            Submitted::Created(task) => (task, Vec::new(), Some(0)),
            Submitted::Existing(task) => {
                sub = self
                    .state
                    .engine
                    .hub()
                    .subscribe(Filter::Task(task.id), self.state.config.subscriber_buffer);
                let current = self
                    .state
                    .engine
                    .tasks()
                    .current(task.id)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(task);
                let backlog = self.state.engine.tasks().backlog(&current, None).await;
                (current, backlog, None)
            }
        };
        let key = Key::Task(task.id);
        let value = serde_json::to_value(&task).unwrap_or_default();
        self.outbox.send(&ServerMessage::Ack {
            reference,
            task: value,
        });
        let outbox = self.outbox.clone();
        let state = self.state.clone();
        let task_id = task.id;
        let handle = tokio::spawn(async move {
            let mut sink = WsSink(outbox);
            let follower = TaskFollower::new(state, task_id, backlog, since, sub);
            if pump_task(follower, &mut sink).await == End::Lagged {
                sink.0.slow.cancel();
            }
        });
        if let Some(old) = self.subs.insert(key, handle) {
            old.abort();
        }
    }
}
