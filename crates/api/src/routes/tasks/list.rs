use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchyard_core::store::TaskQuery;
use switchyard_core::task::{Task, TaskStatus};
use switchyard_core::{Error, TaskId, Timestamp};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};

pub const DEFAULT_LIMIT: u32 = 50;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub agent: Option<String>,
    /// One status or several, comma-separated (`queued,running`).
    pub status: Option<String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub parent_id: Option<TaskId>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<TaskId>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<u32>,
    /// Full-text search: tasks whose agent, input, output, error or log lines hold every
    /// word. The index trails submissions and completions by a few seconds.
    pub q: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TaskPage {
    pub items: Vec<Task>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<TaskId>,
}

/// Tasks you may see, newest first, with filters and cursor pagination.
#[utoipa::path(get, operation_id = "list_tasks", path = "/api/v1/tasks", tag = "tasks", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = TaskPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth<perm::ReadTasks>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Json<TaskPage>> {
    let statuses = match p.status.as_deref() {
        None | Some("") => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|part| {
                part.trim()
                    .parse::<TaskStatus>()
                    .map_err(Error::invalid_parameter)
            })
            .collect::<Result<_, _>>()?,
    };
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > switchyard_engine::tasks::MAX_LIST_LIMIT {
        return Err(Error::invalid_parameter(format!(
            "limit must be between 1 and {}",
            switchyard_engine::tasks::MAX_LIST_LIMIT
        ))
        .into());
    }
    let query = TaskQuery {
        owner_id: None,
        agent: p.agent,
        statuses,
        created_after: p.created_after,
        created_before: p.created_before,
        parent_id: p.parent_id,
        before_id: p.cursor,
        text: p.q.filter(|q| !q.trim().is_empty()),
        limit,
    };
    let items = state.engine.tasks().list(&auth, query).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|t| t.id))
        .flatten();
    Ok(Json(TaskPage { items, next_cursor }))
}
