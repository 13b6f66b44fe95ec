//! The remote-worker protocol, `/api/v1/workers/ws` (API key with scope `worker`).
//!
//! ```text
//! worker                                   server
//!   hello {name, agents, slots}     ──▶
//!                                   ◀──    welcome {worker_id, lease_ms, heartbeat_ms}
//!                                   ◀──    assign {task_id, attempt, agent, input, …}   (≤ slots in flight)
//!   heartbeat                       ──▶    (extends the leases of every task in flight)
//!   log / progress / partial        ──▶
//!   step {name, output | error}     ──▶
//!                                   ◀──    step_recorded {task_id, attempt, name, accepted}
//!   wait {name, kind, …}            ──▶
//!                                   ◀──    wait_result {status: ready | suspended | timed_out | refused}
//!   spawn {name, agent, input}      ──▶
//!                                   ◀──    spawned {child_id | code, message}
//!   result | error | cancelled      ──▶
//!                                   ◀──    ack {task_id, attempt, accepted}
//!                                   ◀──    cancel {task_id, attempt}
//!   drain                           ──▶    (finish what you have, get nothing new)
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An agent a worker serves. Declaring it registers it (as a `remote` agent) or updates
/// its schema and version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDecl {
    pub name: String,
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Per-attempt timeout. Declared, it replaces the agent's; left out, the agent keeps its own
    /// (the server default for a new agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retry policy. Declared, it replaces the agent's, its left-out fields taking the server
    /// defaults; left out, the agent keeps its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryDecl>,
}

/// A retry policy as a worker declares it: attempts in total (the first included) and the
/// exponential backoff's base and cap. Each field left out takes the server default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDecl {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_ms: Option<u64>,
}

fn default_version() -> String {
    "1".to_owned()
}

impl AgentDecl {
    pub fn new(name: impl Into<String>) -> Self {
        AgentDecl {
            name: name.into(),
            version: default_version(),
            description: None,
            input_schema: None,
            output_schema: None,
            timeout_ms: None,
            retry: None,
        }
    }
}

/// Why a durable step failed, as the worker reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepError {
    pub message: String,
    /// Default `retryable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ErrorClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// How a failed attempt is classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Retryable,
    Permanent,
    RateLimited,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// Worker → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorkerMessage {
    Hello {
        name: String,
        agents: Vec<AgentDecl>,
        slots: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    /// Extends the leases of every task this connection holds.
    Heartbeat {},
    Log {
        task_id: uuid::Uuid,
        attempt: u32,
        level: Level,
        message: String,
    },
    Progress {
        task_id: uuid::Uuid,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        progress: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Partial {
        task_id: uuid::Uuid,
        attempt: u32,
        data: Value,
    },
    Result {
        task_id: uuid::Uuid,
        attempt: u32,
        output: Value,
    },
    Error {
        task_id: uuid::Uuid,
        attempt: u32,
        class: ErrorClass,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// The attempt stopped because the server asked it to.
    Cancelled { task_id: uuid::Uuid, attempt: u32 },
    /// A durable step ran: its `output`, or the `error` it raised. Answered with
    /// `step_recorded` once stored.
    Step {
        task_id: uuid::Uuid,
        attempt: u32,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<StepError>,
        /// How long the step ran.
        #[serde(default)]
        duration_ms: u64,
    },
    /// A durable wait: answered with `wait_result`. `ready` goes on; `suspended` ends
    /// the run (the task waits without a worker and runs again when the wait is over).
    Wait {
        task_id: uuid::Uuid,
        attempt: u32,
        /// The wait's step name.
        name: String,
        kind: WaitKind,
        /// `sleep`: for this long, from when the server receives the message...
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        /// ... or until then (milliseconds since the Unix epoch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<i64>,
        /// `signal`: the signal's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<String>,
        /// `signal`: give up after this long (the wait then times out).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        /// `children`: the child tasks to join.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        children: Vec<uuid::Uuid>,
    },
    /// Creates a child task once per (task, `name`): answered with `spawned`.
    Spawn {
        task_id: uuid::Uuid,
        attempt: u32,
        /// The spawn's step name.
        name: String,
        agent: String,
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<i32>,
    },
    /// Finish the tasks in flight, take nothing new.
    Drain {},
}

/// What a durable wait waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    Sleep,
    Signal,
    Children,
}

/// How a `wait` stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitStatus {
    /// Over already: go on with `output`.
    Ready,
    /// The run is over: stop the handler, send nothing more for this attempt.
    Suspended,
    /// The signal wait timed out: raise the SDK's timeout error.
    TimedOut,
    /// Not taken: `code` and `message` say why.
    Refused,
}

/// A file an assignment's input refers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// A signed path to GET the content (no credentials needed); it expires.
    pub url: String,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
}

/// Server → worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        worker_id: uuid::Uuid,
        /// A lease lasts this long without a heartbeat.
        lease_ms: u64,
        /// Send a heartbeat at least this often.
        heartbeat_ms: u64,
    },
    Assign {
        task_id: uuid::Uuid,
        attempt: u32,
        agent: String,
        input: Value,
        /// The attempt's time budget.
        timeout_ms: u64,
        /// W3C trace context of the task.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traceparent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_id: Option<uuid::Uuid>,
        /// Results of the task's durable steps that succeeded in earlier runs, by name.
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        steps: serde_json::Map<String, Value>,
        /// The files the input refers to (`{"$file": id}`), by id, each with a signed
        /// download URL.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        files: std::collections::BTreeMap<String, FileRef>,
        /// Where the attempt uploads its artifacts (POST, no credentials; append
        /// `&name=…`). A path: resolve it against the server's HTTP address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upload_url: Option<String>,
    },
    /// Stop working on this attempt (report `cancelled`).
    Cancel {
        task_id: uuid::Uuid,
        attempt: u32,
    },
    /// Whether a result counted; `false` when the attempt had lost its lease.
    Ack {
        task_id: uuid::Uuid,
        attempt: u32,
        accepted: bool,
    },
    /// Answers `step`: stored (`accepted`), or refused with a `code` and `message`
    /// (`lease_lost`, `step_output_too_large`, `too_many_steps`, `invalid_step`).
    StepRecorded {
        task_id: uuid::Uuid,
        attempt: u32,
        name: String,
        accepted: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Answers `wait`.
    WaitResult {
        task_id: uuid::Uuid,
        attempt: u32,
        name: String,
        status: WaitStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Answers `spawn`: the child's id, or why there is none.
    Spawned {
        task_id: uuid::Uuid,
        attempt: u32,
        name: String,
        accepted: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        child_id: Option<uuid::Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Acknowledges `drain`: no new work will be assigned.
    Draining {},
    Error {
        code: String,
        message: String,
    },
}

impl WorkerMessage {
    /// Reads one message, exactly as `serde_json::from_str` does (the same result, the
    /// same errors), only faster for the live messages a busy worker sends most.
    ///
    /// serde reads an internally tagged enum in two passes: the whole message into an
    /// intermediate tree first (to find its `type`), then the tree into the variant. A
    /// message that starts with its `type` (every SDK writes it first) and is a `partial`,
    /// `progress` or `log` is read straight into its fields instead; anything that read
    /// refuses takes the general path, which gives the error.
    pub fn from_json(text: &str) -> serde_json::Result<WorkerMessage> {
        live(text).map_or_else(|| serde_json::from_str(text), Ok)
    }
}

/// The direct read of [`WorkerMessage::from_json`]; `None` when it does not apply.
fn live(text: &str) -> Option<WorkerMessage> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Partial<'a> {
        #[serde(rename = "type", borrow)]
        _kind: &'a str,
        task_id: uuid::Uuid,
        attempt: u32,
        data: Value,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Progress<'a> {
        #[serde(rename = "type", borrow)]
        _kind: &'a str,
        task_id: uuid::Uuid,
        attempt: u32,
        #[serde(default)]
        progress: Option<f64>,
        #[serde(default)]
        message: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Log<'a> {
        #[serde(rename = "type", borrow)]
        _kind: &'a str,
        task_id: uuid::Uuid,
        attempt: u32,
        level: Level,
        message: String,
    }
    let rest = text.trim_start().strip_prefix('{')?.trim_start();
    let rest = rest
        .strip_prefix(r#""type""#)?
        .trim_start()
        .strip_prefix(':')?;
    let kind = rest.trim_start().strip_prefix('"')?.split('"').next()?;
    // A repeated `type` is refused by the structs (duplicate field): the general path
    // decides what it means.
    match kind {
        "partial" => serde_json::from_str::<Partial>(text)
            .ok()
            .map(|m| WorkerMessage::Partial {
                task_id: m.task_id,
                attempt: m.attempt,
                data: m.data,
            }),
        "progress" => {
            serde_json::from_str::<Progress>(text)
                .ok()
                .map(|m| WorkerMessage::Progress {
                    task_id: m.task_id,
                    attempt: m.attempt,
                    progress: m.progress,
                    message: m.message,
                })
        }
        "log" => serde_json::from_str::<Log>(text)
            .ok()
            .map(|m| WorkerMessage::Log {
                task_id: m.task_id,
                attempt: m.attempt,
                level: m.level,
                message: m.message,
            }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_direct_read_of_live_messages_agrees_with_serde() {
        let id = "00000000-0000-0000-0000-000000000001";
        let texts = [
            format!(
                r#"{{"type":"partial","task_id":"{id}","attempt":1,"data":{{"delta":"a\u0000b"}}}}"#
            ),
            format!(r#"{{ "type" : "partial", "task_id":"{id}","attempt":1,"data":null}}"#),
            format!(r#"{{"type":"partial","task_id":"{id}","attempt":1}}"#),
            format!(r#"{{"type":"partial","task_id":"{id}","attempt":1,"data":1,"extra":2}}"#),
            format!(r#"{{"type":"partial","type":"log","task_id":"{id}","attempt":1,"data":1}}"#),
            format!(r#"{{"type":"partial","task_id":"{id}","attempt":-1,"data":1}}"#),
            format!(r#"{{"type":"progress","task_id":"{id}","attempt":2,"progress":0.5}}"#),
            format!(r#"{{"type":"progress","task_id":"{id}","attempt":2,"message":null}}"#),
            format!(r#"{{"type":"progress","task_id":"{id}","attempt":2,"progress":"x"}}"#),
            format!(
                r#"{{"type":"log","task_id":"{id}","attempt":3,"level":"warn","message":"m"}}"#
            ),
            format!(
                r#"{{"type":"log","task_id":"{id}","attempt":3,"level":"loud","message":"m"}}"#
            ),
            format!(r#"{{"task_id":"{id}","type":"partial","attempt":1,"data":{{}}}}"#),
            r#"{"type":"heartbeat"}"#.to_string(),
            format!(r#"{{"type":"partial","task_id":"{id}","attempt":1,"data":{{}}}} trailing"#),
            r#"{"type":"part"#.to_string(),
        ];
        for text in &texts {
            let direct = WorkerMessage::from_json(text);
            let general = serde_json::from_str::<WorkerMessage>(text);
            match (&direct, &general) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
                _ => panic!("{text}: {direct:?} against {general:?}"),
            }
        }
        assert!(
            live(&texts[0]).is_some(),
            "the common case takes the direct read"
        );
        assert!(live(&texts[6]).is_some() && live(&texts[9]).is_some());
    }

    #[test]
    fn hello_and_results_round_trip() {
        let hello: WorkerMessage = serde_json::from_value(json!({
            "type": "hello", "name": "w1", "slots": 4,
            "agents": [{"name": "summarize", "input_schema": {"type": "object"}}]
        }))
        .unwrap();
        match hello {
            WorkerMessage::Hello { agents, slots, .. } => {
                assert_eq!(slots, 4);
                assert_eq!(agents[0].version, "1");
            }
            other => panic!("{other:?}"),
        }
        let id = uuid::Uuid::nil();
        let err = WorkerMessage::Error {
            task_id: id,
            attempt: 2,
            class: ErrorClass::RateLimited,
            message: "slow".into(),
            code: None,
            retry_after_ms: Some(500),
        };
        let v = serde_json::to_value(&err).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["class"], "rate_limited");
        assert_eq!(serde_json::from_value::<WorkerMessage>(v).unwrap(), err);
    }

    #[test]
    fn a_declared_retry_keeps_what_it_leaves_out_unset_and_refuses_unknown_fields() {
        let decl: AgentDecl = serde_json::from_value(json!({
            "name": "summarize", "retry": {"max_attempts": 3}
        }))
        .unwrap();
        assert_eq!(
            decl.retry,
            Some(RetryDecl {
                max_attempts: Some(3),
                ..RetryDecl::default()
            })
        );
        assert_eq!(
            serde_json::to_value(&decl).unwrap()["retry"],
            json!({"max_attempts": 3})
        );
        let typo = serde_json::from_value::<AgentDecl>(json!({
            "name": "summarize", "retry": {"max_attempt": 3}
        }))
        .unwrap_err();
        assert!(typo.to_string().contains("max_attempt"), "{typo}");
        assert_eq!(AgentDecl::new("x").retry, None);
    }
}
