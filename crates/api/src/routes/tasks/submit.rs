use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use switchyard_core::store::Submitted;
use switchyard_core::task::Task;
use switchyard_core::{Error, TaskId, Timestamp};
use switchyard_engine::tasks::SubmitRequest;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Auth, JsonBody, perm};

/// A task to submit.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    pub agent: String,
    /// A JSON object, validated against the agent's input schema with its defaults
    /// applied. Default `{}`.
    #[serde(default = "empty_object", deserialize_with = "object_input")]
    #[schema(value_type = Object)]
    pub input: Value,
    /// Higher runs first; defaults to the agent's priority.
    pub priority: Option<i32>,
    /// Run no earlier than this time.
    pub run_at: Option<Timestamp>,
    /// Run no earlier than this many milliseconds from now.
    pub delay_ms: Option<u64>,
    /// Submitting again with the same key (within the window) returns the first task.
    pub idempotency_key: Option<String>,
    /// The task that spawned this one.
    pub parent_id: Option<TaskId>,
    /// Its flow key: tasks of one key share the agent's `concurrency_per_key` and
    /// per-key rate limit, and dispatch takes turns between keys. Overrides the agent's
    /// `concurrency_key` pointer.
    pub concurrency_key: Option<String>,
}

impl JsonBody for SubmitBody {
    const CONTENT: &'static [&'static str] = &["/input"];
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A task's input is a JSON object (what agents and their input schemas expect, and what
/// the SDKs send). Anything else is refused, naming `/input`.
pub fn check_input(input: &Value) -> Result<(), Error> {
    if input.is_object() {
        return Ok(());
    }
    let got = match input {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    Err(Error::new(
        switchyard_core::ErrorCode::InvalidBody,
        format!("/input must be a JSON object, got {got}"),
    )
    .with_details(serde_json::json!({ "pointer": "/input" })))
}

fn object_input<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    let input = Value::deserialize(d)?;
    check_input(&input).map_err(|e| serde::de::Error::custom(e.message))?;
    Ok(input)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubmitParams {
    /// Wait up to this long for the task to finish: `10s`, `500ms`, `1m`, or seconds.
    pub wait: Option<String>,
}

/// Parses `10s`, `250ms`, `2m` or a bare number of seconds.
pub fn parse_wait(s: &str) -> Result<Duration, Error> {
    let s = s.trim();
    let bad = || {
        Error::invalid_parameter(format!(
            "wait={s:?} is not a duration; use e.g. 10s, 500ms or 1m"
        ))
    };
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1_000.0,
        "m" => n * 60_000.0,
        _ => return Err(bad()),
    };
    if !ms.is_finite() || ms < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_millis(ms as u64))
}

/// The trace id of a W3C `traceparent` header, if well formed.
pub fn trace_id(headers: &HeaderMap) -> Option<String> {
    crate::request_id::traceparent_trace_id(headers)
}

impl SubmitBody {
    pub fn into_request(self, headers: &HeaderMap) -> Result<SubmitRequest, Error> {
        let now = Timestamp::now();
        let run_at = match (self.run_at, self.delay_ms) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_parameter(
                    "give run_at or delay_ms, not both",
                ));
            }
            (Some(t), None) => Some(t),
            (None, Some(ms)) => Some(now.plus_ms(ms)),
            (None, None) => None,
        };
        let header_key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(SubmitRequest {
            id: None,
            agent: self.agent,
            input: self.input,
            priority: self.priority,
            run_at,
            idempotency_key: self.idempotency_key.or(header_key),
            parent_id: self.parent_id,
            trace_id: trace_id(headers),
            concurrency_key: self.concurrency_key,
            schedule: None,
        })
    }
}

/// Submit a task. `201` when created; `200` when an idempotency key matched an existing
/// task. With `?wait=`, answers when the task finishes, or `202` if it is still running
/// when the wait ends.
#[utoipa::path(post, operation_id = "submit_task", path = "/api/v1/tasks", tag = "tasks", request_body = SubmitBody, params(SubmitParams),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created (and, with `wait`, finished)", body = Task),
        (status = 200, description = "An existing task with the same idempotency key", body = Task),
        (status = 202, description = "Still running when the wait ended", body = Task),
        (status = 400, description = "Malformed JSON, a bad `wait`, or `run_at` with `delay_ms`", body = ErrorBody),
        (status = 404, description = "`parent_id` names no task you can see (`task_not_found`)", body = ErrorBody),
        (status = 422, description = "An unknown agent, a body of the wrong shape, or an input its schema rejects", body = ErrorBody),
        (status = 503, description = "The server is shutting down (`unavailable`)", body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    auth: Auth<perm::SubmitTasks>,
    ApiQuery(params): ApiQuery<SubmitParams>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SubmitBody>,
) -> ApiResult<(StatusCode, Json<Task>)> {
    let request = body.into_request(&headers)?;
    let tasks = &state.engine.tasks();
    match params.wait.as_deref().map(parse_wait).transpose()? {
        None => Ok(match tasks.submit(&auth, request).await? {
            Submitted::Created(t) => (StatusCode::CREATED, Json(t)),
            Submitted::Existing(t) => (StatusCode::OK, Json(t)),
        }),
        Some(wait) => {
            let waited = tasks.submit_and_wait(&auth, request, wait).await?;
            let status = match (waited.finished, waited.created) {
                (false, _) => StatusCode::ACCEPTED,
                (true, true) => StatusCode::CREATED,
                (true, false) => StatusCode::OK,
            };
            Ok((status, Json(waited.task)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_durations() {
        assert_eq!(parse_wait("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_wait("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_wait("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_wait("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_wait("1.5s").unwrap(), Duration::from_millis(1_500));
        for bad in ["", "x", "10h", "-1s", "s"] {
            assert!(parse_wait(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn traceparent_is_parsed() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            trace_id(&h).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        h.insert(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(trace_id(&h), None);
        h.insert("traceparent", "garbage".parse().unwrap());
        assert_eq!(trace_id(&h), None);
    }
}
