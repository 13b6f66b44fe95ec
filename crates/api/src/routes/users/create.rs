use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::auth::{Role, User};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuditTrail, Auth, JsonBody, perm};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    pub email: String,
    /// At least 12 characters and not one of the 10,000 most common passwords.
    pub password: String,
    pub role: Role,
}

impl JsonBody for CreateUserBody {}

/// Create a user (admins only).
#[utoipa::path(post, operation_id = "create_user", path = "/api/v1/users", tag = "users", request_body = CreateUserBody, security(("bearer" = [])),
    responses((status = 201, body = User), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth<perm::ManageUsers>,
    trail: AuditTrail,
    ApiJson(body): ApiJson<CreateUserBody>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let result = state
        .engine
        .auth()
        .create_user(&auth, &body.email, &body.password, body.role)
        .await;
    // The new user's id; the email asked for when there is none.
    let target = result
        .as_ref()
        .map_or(body.email.clone(), |u| u.id.to_string());
    let detail = result
        .as_ref()
        .ok()
        .map(|u| json!({"email": u.email, "role": u.role}));
    trail
        .on_with(
            &auth,
            AuditAction::UserCreate,
            TargetKind::User.id(target),
            detail,
            &result,
        )
        .await;
    Ok((StatusCode::CREATED, Json(result?)))
}
