use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, perm};
use crate::routes::Items;
use crate::views::ScheduleView;

/// Every schedule, by name, with its next fire times and latest tasks.
#[utoipa::path(get, operation_id = "list_schedules", path = "/api/v1/schedules", tag = "schedules", security(("bearer" = [])),
    responses((status = 200, description = "Every schedule", body = Items<ScheduleView>)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth<perm::ReadSystem>,
) -> ApiResult<Json<Items<ScheduleView>>> {
    let items = state.engine.schedules().list(&auth).await?;
    Ok(Json(Items {
        items: items.into_iter().map(ScheduleView::from).collect(),
    }))
}
