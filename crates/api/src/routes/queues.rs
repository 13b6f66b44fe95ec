use axum::Json;
use axum::extract::State;
use switchyard_core::store::AgentQueueStats;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, perm};
use crate::routes::Items;

/// Queue depth per agent: runnable, scheduled (delayed or backing off) and running.
#[utoipa::path(get, operation_id = "list_queues", path = "/api/v1/queues", tag = "system", security(("bearer" = [])),
    responses((status = 200, body = Items<AgentQueueStats>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _auth: Auth<perm::ReadSystem>,
) -> ApiResult<Json<Items<AgentQueueStats>>> {
    Ok(Json(Items {
        items: state.engine.monitoring().queues().await?,
    }))
}
