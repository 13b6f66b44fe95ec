use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};
use crate::views::ScheduleView;

/// One schedule, with its next 5 fire times and its latest tasks.
#[utoipa::path(get, operation_id = "get_schedule", path = "/api/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The schedule", body = ScheduleView), (status = 404, description = "No such schedule", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth<perm::ReadSystem>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ScheduleView>> {
    Ok(Json(
        state.engine.schedules().get(&auth, &name).await?.into(),
    ))
}
