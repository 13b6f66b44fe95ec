use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::json;
use switchyard_auth::UserUpdate;
use switchyard_core::UserId;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::auth::{Role, User};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, AuditTrail, Auth, JsonBody, perm};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// A new password (a reset). The user's sessions end.
    pub password: Option<String>,
}

impl JsonBody for UpdateUserBody {}

/// Change a user's role, disable or enable them, or reset their password (admins only).
/// Any change ends the user's sessions; the last active admin cannot be demoted or disabled.
#[utoipa::path(patch, operation_id = "update_user", path = "/api/v1/users/{id}", tag = "users", params(("id" = UserId, Path)),
    request_body = UpdateUserBody, security(("bearer" = [])),
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth<perm::ManageUsers>,
    trail: AuditTrail,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> ApiResult<Json<User>> {
    // What was asked, the password only as the fact of a reset.
    let detail = json!({"role": body.role, "disabled": body.disabled, "password_reset": body.password.is_some()});
    let update = UserUpdate {
        role: body.role,
        disabled: body.disabled,
        password: body.password,
    };
    let result = state.engine.auth().update_user(&auth, id, update).await;
    trail
        .on_with(
            &auth,
            AuditAction::UserUpdate,
            TargetKind::User.id(id),
            Some(detail),
            &result,
        )
        .await;
    Ok(Json(result?))
}
