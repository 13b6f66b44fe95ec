use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};

/// Delete a schedule. The tasks it fired stay.
#[utoipa::path(delete, operation_id = "delete_schedule", path = "/api/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth<perm::ManageAgents>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.engine.schedules().delete(&auth, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
