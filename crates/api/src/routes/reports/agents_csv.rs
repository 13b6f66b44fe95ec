use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use switchyard_monitoring::reports::csv;

use super::{DEFAULT_SPAN_MS, ReportParams};
use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};
use crate::routes::period::parse_period;

/// The per-agent report as CSV (one header line, one line per agent; empty fields where
/// the JSON report has `null`).
#[utoipa::path(get, operation_id = "agent_report_csv", path = "/api/v1/reports/agents.csv", tag = "monitoring",
    params(ReportParams), security(("bearer" = [])),
    responses((status = 200, description = "CSV", content_type = "text/csv", body = String),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn agents_csv(
    State(state): State<AppState>,
    _auth: Auth<perm::ReadSystem>,
    ApiQuery(p): ApiQuery<ReportParams>,
) -> ApiResult<Response> {
    let (from, to) = parse_period(p.from.as_deref(), p.to.as_deref(), DEFAULT_SPAN_MS)?;
    let report = state.engine.monitoring().report(from, to).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"agents-report.csv\"",
            ),
        ],
        csv(&report),
    )
        .into_response())
}
