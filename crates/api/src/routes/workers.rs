use axum::Json;
use axum::extract::State;
use switchyard_core::store::WorkerInfo;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, perm};
use crate::routes::Items;

/// Workers alive now: name, agents, slots in use, last heartbeat, version.
#[utoipa::path(get, operation_id = "list_workers", path = "/api/v1/workers", tag = "system", security(("bearer" = [])),
    responses((status = 200, body = Items<WorkerInfo>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _auth: Auth<perm::ReadSystem>,
) -> ApiResult<Json<Items<WorkerInfo>>> {
    Ok(Json(Items {
        items: state.engine.monitoring().live_workers().await?,
    }))
}
