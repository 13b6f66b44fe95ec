use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::schedule::ScheduleSpec;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuditTrail, Auth, perm};
use crate::views::ScheduleView;

/// Create a schedule: the agent's task with this input, submitted at every tick of the
/// cron expression (5 fields, or 6 with seconds first) in the time zone. Its tasks are
/// owned by the caller and carry `schedule` and `scheduled_for`.
#[utoipa::path(post, operation_id = "create_schedule", path = "/api/v1/schedules", tag = "schedules",
    request_body = ScheduleSpec, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = ScheduleView),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "An invalid schedule or an unknown agent", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth<perm::ManageAgents>,
    trail: AuditTrail,
    ApiJson(spec): ApiJson<ScheduleSpec>,
) -> ApiResult<(StatusCode, Json<ScheduleView>)> {
    let name = spec.name.clone();
    let result = state.engine.schedules().create(&auth, spec).await;
    trail
        .on(
            &auth,
            AuditAction::ScheduleCreate,
            TargetKind::Schedule.id(name),
            &result,
        )
        .await;
    Ok((StatusCode::CREATED, Json(result?.into())))
}
