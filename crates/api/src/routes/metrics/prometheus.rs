use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use switchyard_monitoring::prometheus::CONTENT_TYPE;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, perm};

/// Prometheus metrics of this server (text exposition format 0.0.4). Needs a credential
/// that may read the system's state (an API key with the `read` scope) unless the server
/// runs with `monitoring.public_metrics`.
#[utoipa::path(get, operation_id = "prometheus_metrics", path = "/metrics", tag = "monitoring",
    security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn prometheus(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    if !state.engine.monitoring().config.public_metrics {
        let (mut parts, _) = req.into_parts();
        Auth::<perm::ReadSystem>::from_request_parts(&mut parts, &state).await?;
    }
    let text = state.engine.monitoring().prometheus().await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}
