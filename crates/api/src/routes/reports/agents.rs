use axum::Json;
use axum::extract::State;
use switchyard_monitoring::reports::Report;

use super::{DEFAULT_SPAN_MS, ReportParams};
use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};
use crate::routes::period::parse_period;

/// Per-agent figures over the tasks submitted in a period: volume, outcomes, success
/// rate, submit → finish latency percentiles, retries, fallbacks and cache hits.
#[utoipa::path(get, operation_id = "agent_report", path = "/api/v1/reports/agents", tag = "monitoring",
    params(ReportParams), security(("bearer" = [])),
    responses((status = 200, body = Report), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn agents(
    State(state): State<AppState>,
    _auth: Auth<perm::ReadSystem>,
    ApiQuery(p): ApiQuery<ReportParams>,
) -> ApiResult<Json<Report>> {
    let (from, to) = parse_period(p.from.as_deref(), p.to.as_deref(), DEFAULT_SPAN_MS)?;
    Ok(Json(state.engine.monitoring().report(from, to).await?))
}
