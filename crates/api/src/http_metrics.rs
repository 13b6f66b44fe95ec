//! Counts every HTTP request by its route template (axum's `MatchedPath`, never the raw
//! path, so ids and user input never become labels), method and status, with latency.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// The route label of requests that matched no route (the UI, unknown paths).
pub const UNMATCHED_ROUTE: &str = "unmatched";

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let metrics = &state.engine.monitoring().metrics;
    if !metrics.enabled() {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    let route = route.as_deref().unwrap_or(UNMATCHED_ROUTE);
    metrics.http_request(
        route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed().as_millis() as u64,
    );
    response
}
