use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::ApiKeyId;
use switchyard_core::audit::{AuditAction, TargetKind};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, AuditTrail, Auth, perm};

/// Revoke an API key; it stops working at once on every server.
#[utoipa::path(delete, operation_id = "revoke_api_key", path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = ApiKeyId, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Auth<perm::ManageOwnKeys>,
    trail: AuditTrail,
    ApiPath(id): ApiPath<ApiKeyId>,
) -> ApiResult<StatusCode> {
    let result = state.engine.auth().revoke_api_key(&auth, id).await;
    trail
        .on(
            &auth,
            AuditAction::ApiKeyRevoke,
            TargetKind::ApiKey.id(id),
            &result,
        )
        .await;
    result?;
    Ok(StatusCode::NO_CONTENT)
}
