use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use switchyard_core::Error;
use switchyard_engine::events::Filter;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};
use crate::sse::follow_many;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Only this agent's tasks.
    pub agent: Option<String>,
    /// Only these event kinds, comma-separated (`status,log,progress,partial,result,error`).
    pub kinds: Option<String>,
}

/// Follow every task you may see (or one agent's) live, as Server-Sent Events.
#[utoipa::path(get, path = "/api/v1/events", tag = "tasks", params(StreamParams), security(("bearer" = [])),
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
        None | Some("") => None,
        Some(list) => Some(
            list.split(',')
                .map(|k| match k.trim() {
                    k @ ("status" | "log" | "progress" | "partial" | "result" | "error") => {
                        Ok(k.to_owned())
                    }
                    other => Err(Error::invalid_parameter(format!(
                        "unknown event kind {other:?}"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let sub = state
        .engine
        .hub
        .subscribe(filter, state.config.subscriber_buffer);
    Ok(follow_many(&state, sub, kinds))
}
