use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;
use switchyard_core::auth::{ApiKey, Scope};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Auth, JsonBody, perm};

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
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let (key, secret) = state
        .engine
        .auth()
        .create_api_key(&auth, &body.name, body.scopes, body.expires_at)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, secret })))
}
