use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use switchyard_core::task::Task;
use utoipa::ToSchema;

use super::submit::SubmitBody;
use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Auth, JsonBody, perm};
use crate::routes::Items;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub tasks: Vec<SubmitBody>,
}

impl JsonBody for BatchBody {
    const CONTENT: &'static [&'static str] = &["/tasks/*/input"];
}

/// Submit many tasks in one transaction: all are accepted or none. A validation error
/// lists each rejected item by its index.
#[utoipa::path(post, operation_id = "submit_task_batch", path = "/api/v1/tasks/batch", tag = "tasks", request_body = BatchBody,
    security(("bearer" = [])),
    responses((status = 201, description = "Every task, in order", body = Items<Task>),
        (status = 404, description = "A `parent_id` names no task you can see (`task_not_found`)", body = ErrorBody),
        (status = 422, description = "Items rejected (listed by index), or more than `queue.max_submit_batch`", body = ErrorBody),
        (status = 503, description = "The server is shutting down (`unavailable`)", body = ErrorBody)))]
pub async fn batch(
    State(state): State<AppState>,
    auth: Auth<perm::SubmitTasks>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BatchBody>,
) -> ApiResult<(StatusCode, Json<Items<Task>>)> {
    let requests = body
        .tasks
        .into_iter()
        .map(|t| {
            let mut r = t.into_request(&headers)?;
            // A batch-wide Idempotency-Key header would collapse the batch to one task.
            if headers.contains_key("idempotency-key") {
                r.idempotency_key = None;
            }
            Ok(r)
        })
        .collect::<Result<Vec<_>, switchyard_core::Error>>()?;
    let submitted = state.engine.tasks().submit_batch(&auth, requests).await?;
    let items = submitted.into_iter().map(|s| s.into_task()).collect();
    Ok((StatusCode::CREATED, Json(Items { items })))
}
