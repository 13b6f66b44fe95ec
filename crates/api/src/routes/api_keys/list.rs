use axum::Json;
use axum::extract::State;
use switchyard_core::auth::ApiKey;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, perm};
use crate::routes::Items;

/// Your API keys (admins: everyone's). Secrets are never shown again.
#[utoipa::path(get, operation_id = "list_api_keys", path = "/api/v1/api-keys", tag = "api-keys", security(("bearer" = [])),
    responses((status = 200, body = Items<ApiKey>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth<perm::ManageOwnKeys>,
) -> ApiResult<Json<Items<ApiKey>>> {
    Ok(Json(Items {
        items: state.engine.auth().list_api_keys(&auth).await?,
    }))
}
