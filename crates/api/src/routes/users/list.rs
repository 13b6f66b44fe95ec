use axum::Json;
use axum::extract::State;
use switchyard_core::auth::User;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, perm};
use crate::routes::Items;

/// Every user (admins only).
#[utoipa::path(get, operation_id = "list_users", path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Items<User>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth<perm::ManageUsers>,
) -> ApiResult<Json<Items<User>>> {
    Ok(Json(Items {
        items: state.engine.auth().list_users(&auth).await?,
    }))
}
