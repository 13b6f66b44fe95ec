use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use switchyard_core::Error;
use switchyard_engine::events::{Filter, Kinds};
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};
use crate::sse::follow_many;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Only this agent's tasks.
    pub agent: Option<String>,
    /// Only these event kinds, comma-separated (`status,log,progress,partial,result,error,step_finished`).
    pub kinds: Option<String>,
    /// Resume: first resend the recent events that happened after this time (Unix
    /// milliseconds), from the server's replay window. Deduplicate by `task_id` + `seq`.
    pub since: Option<u64>,
    /// A single-use ticket from `POST /api/v1/auth/ws-ticket`, for clients that cannot
    /// send an `Authorization` header (browsers' `EventSource`). Read by the `Auth` extractor.
    #[serde(rename = "ticket")]
    pub _ticket: Option<String>,
}

/// Follow every task you may see (or one agent's) live, as Server-Sent Events.
#[utoipa::path(get, operation_id = "follow_events", path = "/api/v1/events", tag = "tasks", params(StreamParams), security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "A stream of task events"),
        (status = 401, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    auth: Auth<perm::ReadTasks>,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> ApiResult<impl IntoResponse> {
    let owner = auth.task_scope();
    let filter = match params.agent {
        Some(agent) => Filter::Agent { agent, owner },
        None => Filter::All { owner },
    };
    let kinds = match params.kinds.as_deref() {
        None | Some("") => Kinds::ALL,
        Some(list) => Kinds::parse(list.split(',').map(str::trim))
            .map_err(|k| Error::invalid_parameter(format!("unknown event kind {k:?}")))?,
    };
    let hub = &state.engine.hub();
    let sub = hub.subscribe_kinds(filter.clone(), state.config.subscriber_buffer, kinds);
    let missed = params.since.map_or_else(Vec::new, |ms| {
        hub.recent_matching(&filter, |e| {
            kinds.contains(e) && u64::try_from(e.at.millis()).unwrap_or(0) > ms
        })
    });
    Ok(follow_many(&state, sub, missed))
}
