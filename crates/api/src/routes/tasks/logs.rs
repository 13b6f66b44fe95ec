use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use switchyard_core::event::LogLevel;
use switchyard_core::monitoring::LogQuery;
use switchyard_core::{Error, TaskId};
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, Auth, perm};
use crate::routes::Items;
use crate::views::LogLine;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Only lines after this sequence number.
    pub after: Option<u64>,
    /// At most this many lines (1-5000, default 1000).
    pub limit: Option<u32>,
    /// Only lines at this level or above: `debug`, `info`, `warn` or `error`.
    pub level: Option<String>,
    /// Only lines containing this text (case-insensitive).
    pub q: Option<String>,
}

/// The log lines a task's agent wrote, oldest first.
#[utoipa::path(get, operation_id = "list_task_logs", path = "/api/v1/tasks/{id}/logs", tag = "tasks", params(("id" = TaskId, Path), LogParams),
    security(("bearer" = [])),
    responses((status = 200, body = Items<LogLine>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    auth: Auth<perm::ReadTasks>,
    ApiPath(id): ApiPath<TaskId>,
    ApiQuery(p): ApiQuery<LogParams>,
) -> ApiResult<Json<Items<LogLine>>> {
    let limit = p.limit.unwrap_or(1_000).clamp(1, 5_000);
    let min_level = p
        .level
        .as_deref()
        .filter(|l| !l.is_empty())
        .map(|l| l.parse::<LogLevel>().map_err(Error::invalid_parameter))
        .transpose()?;
    let query = LogQuery {
        task_id: id,
        after_seq: p.after.unwrap_or(0),
        min_level,
        contains: p.q.filter(|q| !q.trim().is_empty()),
        limit,
    };
    let lines = state.engine.tasks().logs(&auth, &query).await?;
    let items = lines.into_iter().map(LogLine::from).collect();
    Ok(Json(Items { items }))
}
