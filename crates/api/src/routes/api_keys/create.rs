use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchyard_core::Timestamp;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::auth::{ApiKey, Scope};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuditTrail, Auth, JsonBody, perm};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<Timestamp>,
}

impl JsonBody for CreateKeyBody {}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    pub key: ApiKey,
    /// The secret. Shown only in this response; store it now.
    pub secret: String,
}

/// Create an API key for yourself. The secret is returned once and stored only as a hash.
#[utoipa::path(post, operation_id = "create_api_key", path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateKeyBody,
    security(("bearer" = [])),
    responses((status = 201, description = "The key and its secret", body = CreatedKey),
        (status = 403, description = "A scope beyond your role (`forbidden`)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth<perm::ManageOwnKeys>,
    trail: AuditTrail,
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let detail = json!({"name": body.name, "scopes": body.scopes, "expires_at": body.expires_at});
    let result = state
        .engine
        .auth()
        .create_api_key(&auth, &body.name, body.scopes, body.expires_at)
        .await;
    // The key's id (never its secret); its name when there is none.
    let target = result
        .as_ref()
        .map_or(body.name.clone(), |(k, _)| k.id.to_string());
    trail
        .on_with(
            &auth,
            AuditAction::ApiKeyCreate,
            TargetKind::ApiKey.id(target),
            Some(detail),
            &result,
        )
        .await;
    let (key, secret) = result?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, secret })))
}
