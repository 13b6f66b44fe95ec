use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use switchyard_core::Error;
use switchyard_monitoring::rollup::{Series, SeriesQuery};
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};
use crate::routes::period::parse_period;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SeriesParams {
    /// A series name (`GET /api/v1/metrics/series/names` lists them), e.g. `tasks_submitted`,
    /// `tasks_finished`, `tasks_failed`, `queue_depth`, `latency_p95`.
    pub metric: String,
    /// Only this agent; absent: all agents together.
    pub agent: Option<String>,
    /// Start: RFC 3339 or Unix seconds (default: one hour before `to`).
    pub from: Option<String>,
    /// End: RFC 3339 or Unix seconds (default: now).
    pub to: Option<String>,
    /// Seconds per point, at least 60 (default 60).
    pub step: Option<u64>,
}

/// A stored time series, one point per step (from the one-minute and one-hour rollups;
/// percentiles from the stored histograms).
#[utoipa::path(get, operation_id = "get_metric_series", path = "/api/v1/metrics/series", tag = "monitoring", params(SeriesParams),
    security(("bearer" = [])),
    responses((status = 200, body = Series), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn series(
    State(state): State<AppState>,
    _auth: Auth<perm::ReadSystem>,
    ApiQuery(p): ApiQuery<SeriesParams>,
) -> ApiResult<Json<Series>> {
    let (from, to) = parse_period(p.from.as_deref(), p.to.as_deref(), 3_600_000)?;
    let agent = p.agent.filter(|a| !a.trim().is_empty());
    if p.metric.trim().is_empty() {
        return Err(Error::invalid_parameter("`metric` must name a series").into());
    }
    let query = SeriesQuery {
        metric: p.metric,
        agent,
        from,
        to,
        step_s: p.step.unwrap_or(60),
    };
    Ok(Json(state.engine.monitoring().series(&query).await?))
}
