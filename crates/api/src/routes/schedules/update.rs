use axum::Json;
use axum::extract::State;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::schedule::ScheduleSpec;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, AuditTrail, Auth, perm};
use crate::views::ScheduleView;

/// Replace a schedule (pause or resume it by sending it with `paused` set). Its tasks
/// are owned by the caller from now on; a changed timetable starts over from now.
#[utoipa::path(put, operation_id = "update_schedule", path = "/api/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path)), request_body = ScheduleSpec, security(("bearer" = [])),
    responses((status = 200, description = "Replaced", body = ScheduleView), (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 422, description = "An invalid schedule or an unknown agent", body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth<perm::ManageAgents>,
    trail: AuditTrail,
    ApiPath(name): ApiPath<String>,
    ApiJson(spec): ApiJson<ScheduleSpec>,
) -> ApiResult<Json<ScheduleView>> {
    let result = state.engine.schedules().replace(&auth, &name, spec).await;
    trail
        .on(
            &auth,
            AuditAction::ScheduleUpdate,
            TargetKind::Schedule.id(&name),
            &result,
        )
        .await;
    Ok(Json(result?.into()))
}
