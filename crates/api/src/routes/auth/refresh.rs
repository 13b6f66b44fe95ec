use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use switchyard_auth::TokenPair;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, JsonBody};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

impl JsonBody for RefreshBody {}

/// Exchange a refresh token for new tokens. The refresh token rotates: the old one is
/// spent, and presenting it again revokes the session.
#[utoipa::path(post, operation_id = "refresh_tokens", path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<TokenPair>> {
    Ok(Json(
        state.engine.auth().refresh(&body.refresh_token).await?,
    ))
}
