use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::{TaskId, Timestamp};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, AuditTrail, Auth, perm};

/// The task a run-now submitted.
#[derive(Serialize, ToSchema)]
pub struct Triggered {
    pub task_id: TaskId,
    pub schedule: String,
    pub scheduled_for: Timestamp,
}

/// Run a schedule's task now, outside its timetable (also while paused).
#[utoipa::path(post, operation_id = "trigger_schedule", path = "/api/v1/schedules/{name}/trigger", tag = "schedules",
    params(("name" = String, Path)), security(("bearer" = [])),
    responses((status = 201, description = "Submitted", body = Triggered), (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 422, description = "The agent refused the input", body = ErrorBody)))]
pub async fn trigger(
    State(state): State<AppState>,
    auth: Auth<perm::ManageAgents>,
    trail: AuditTrail,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<Triggered>)> {
    let result = state.engine.schedules().trigger(&auth, &name).await;
    let detail = result
        .as_ref()
        .ok()
        .map(|(task, _)| serde_json::json!({"task_id": task}));
    trail
        .on_with(
            &auth,
            AuditAction::ScheduleTrigger,
            TargetKind::Schedule.id(&name),
            detail,
            &result,
        )
        .await;
    let (task_id, scheduled_for) = result?;
    Ok((
        StatusCode::CREATED,
        Json(Triggered {
            task_id,
            schedule: name,
            scheduled_for,
        }),
    ))
}
