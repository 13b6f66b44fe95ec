use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewParams {
    /// 5 fields, or 6 with seconds first.
    pub cron: String,
    /// An IANA time zone; default `UTC`.
    pub timezone: Option<String>,
}

/// When a cron expression fires next.
#[derive(Serialize, ToSchema)]
pub struct SchedulePreview {
    pub next_runs: Vec<Timestamp>,
}

/// The next 5 fire times of a cron expression in a time zone, or a 422 naming what is
/// wrong with it (for the schedule form's helper).
#[utoipa::path(get, operation_id = "preview_schedule", path = "/api/v1/schedules/preview", tag = "schedules",
    params(PreviewParams), security(("bearer" = [])),
    responses((status = 200, description = "The next fire times", body = SchedulePreview),
        (status = 422, description = "An invalid cron expression or time zone", body = ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    auth: Auth<perm::ReadSystem>,
    ApiQuery(p): ApiQuery<PreviewParams>,
) -> ApiResult<Json<SchedulePreview>> {
    let timezone = p.timezone.as_deref().unwrap_or("UTC");
    let next_runs = state.engine.schedules().preview(&auth, &p.cron, timezone)?;
    Ok(Json(SchedulePreview { next_runs }))
}
