use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchyard_core::Error;
use switchyard_core::monitoring::AlertEventQuery;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};
use crate::views::AlertEventView;

const MAX_LIMIT: u32 = 500;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Only events of this rule.
    pub rule_id: Option<Uuid>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertEventPage {
    pub items: Vec<AlertEventView>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// Alert events (a rule started or stopped firing), newest first, with the state of their
/// webhook notification.
#[utoipa::path(get, operation_id = "list_alert_events", path = "/api/v1/alerts/events", tag = "monitoring",
    params(EventParams), security(("bearer" = [])),
    responses((status = 200, body = AlertEventPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    _auth: Auth<perm::ReadSystem>,
    ApiQuery(p): ApiQuery<EventParams>,
) -> ApiResult<Json<AlertEventPage>> {
    let limit = p.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(
            Error::invalid_parameter(format!("limit must be between 1 and {MAX_LIMIT}")).into(),
        );
    }
    let items = state
        .engine
        .monitoring()
        .alert_events(&AlertEventQuery {
            rule_id: p.rule_id,
            before_id: p.cursor,
            limit,
        })
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|e| e.id))
        .flatten();
    let items = items.into_iter().map(AlertEventView::from).collect();
    Ok(Json(AlertEventPage { items, next_cursor }))
}
