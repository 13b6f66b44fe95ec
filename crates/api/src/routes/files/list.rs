use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchyard_core::files::FileQuery;
use switchyard_core::{FileId, TaskId, UserId};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};
use crate::views::FileView;

const DEFAULT_LIMIT: u32 = 50;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only the artifacts of this task.
    pub task: Option<TaskId>,
    /// Only this user's files (admins; others always see only their own).
    pub owner: Option<UserId>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<FileId>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct FilePage {
    pub items: Vec<FileView>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<FileId>,
}

/// Files you may see, newest first, with cursor pagination.
#[utoipa::path(get, operation_id = "list_files", path = "/api/v1/files", tag = "files",
    params(ListParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of files", body = FilePage),
        (status = 400, description = "Invalid parameter", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth<perm::ReadTasks>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Json<FilePage>> {
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=switchyard_engine::files::MAX_PAGE).contains(&limit) {
        return Err(switchyard_core::Error::invalid_parameter(format!(
            "limit must be between 1 and {}",
            switchyard_engine::files::MAX_PAGE
        ))
        .into());
    }
    let files = state
        .engine
        .files()
        .list(
            &auth,
            FileQuery {
                owner_id: p.owner,
                task_id: p.task,
                before: p.cursor,
                limit,
            },
        )
        .await?;
    let next_cursor = (files.len() == limit as usize)
        .then(|| files.last().map(|f| f.id))
        .flatten();
    Ok(Json(FilePage {
        items: files.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}
