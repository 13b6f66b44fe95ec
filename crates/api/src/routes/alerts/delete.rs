use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};

/// Delete an alert rule (admins). Its past events stay.
#[utoipa::path(delete, operation_id = "delete_alert_rule", path = "/api/v1/alerts/rules/{id}", tag = "monitoring",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    _auth: Auth<perm::ManageSystem>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.engine.monitoring().delete_rule(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
