//! Extractors that turn every kind of bad input into a clear JSON error, and the
//! authentication extractor that guards every route.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use switchyard_core::ErrorCode;
use switchyard_core::auth::{Permission, Principal};

use crate::AppState;
use crate::error::ApiError;

/// A JSON body. Malformed JSON is `400 malformed_json`, a wrong shape `422 invalid_body`
/// (naming the field), a missing content type `415`, an oversized body `413`, and
/// U+0000 outside the body's content fields `422 validation_failed` naming each field
/// (`switchyard_core::text`).
pub struct ApiJson<T>(pub T);

/// A request body type, and where it carries content.
pub trait JsonBody {
    /// Pointer patterns (`*` for any one segment) of the fields whose strings are content
    /// stored as given, U+0000 included: task input. Everything else names something.
    const CONTENT: &'static [&'static str] = &[];
}

// Agent and alert-rule definitions name things and hold settings: no content.
impl JsonBody for serde_json::Value {}
impl JsonBody for switchyard_core::agent::AgentSpec {}
impl JsonBody for switchyard_core::monitoring::AlertRuleSpec {}
// A schedule's input is task input.
impl JsonBody for switchyard_core::schedule::ScheduleSpec {
    const CONTENT: &'static [&'static str] = &["/input"];
}

impl<T: DeserializeOwned + JsonBody, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(missing_json_content_type());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| json_rejection(JsonRejection::BytesRejection(e)))?;
        let value = match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => v,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        // U+0000 can only arrive escaped; a body without the escape needs no second look.
        if memchr::memmem::find(&bytes, b"\\u0000").is_some() {
            let tree: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))?;
            switchyard_core::text::refuse_nul_in(&tree, T::CONTENT)?;
        }
        Ok(ApiJson(value))
    }
}

/// `application/json` or any `application/*+json`, as axum's own `Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

fn missing_json_content_type() -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "send the body as JSON with `Content-Type: application/json`",
    )
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::new(
            ErrorCode::InvalidBody,
            format!("the request body has the wrong shape: {}", e.body_text()),
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            ErrorCode::MalformedJson,
            format!("the request body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::MissingJsonContentType(_) => missing_json_content_type(),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than the server accepts",
            )
        }
        other => ApiError::new(
            ErrorCode::InvalidBody,
            format!("could not read the request body: {}", other.body_text()),
        ),
    }
}

/// Query parameters; anything unparsable is `400 invalid_parameter`.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(name) = parts.uri.query().and_then(nul_query_parameter) {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "the query parameter `{name}` holds the character U+0000, which is not allowed"
                ),
            ));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

/// The name of the first query parameter whose name or value holds U+0000 (`%00`).
fn nul_query_parameter(query: &str) -> Option<&str> {
    query
        .split('&')
        .find(|pair| pair.contains("%00"))
        .map(|pair| pair.split('=').next().unwrap_or_default())
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidParameter,
        format!("invalid query string: {}", e.body_text()),
    )
}

/// Path parameters; a malformed id is `400 invalid_parameter`.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await
            && let Some((name, _)) = raw.iter().find(|(_, v)| v.contains('\0'))
        {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "the path parameter `{name}` holds the character U+0000, which is not allowed"
                ),
            ));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(path_rejection(e)),
        }
    }
}

fn path_rejection(e: PathRejection) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidParameter,
        format!("invalid path parameter: {}", e.body_text()),
    )
}

/// The permission a route requires, as a type.
pub trait RequiredPermission {
    const PERMISSION: Option<Permission>;
}

pub mod perm {
    use super::{Permission, RequiredPermission};

    macro_rules! perms {
        ($($name:ident => $p:expr),* $(,)?) => {
            $(
                pub struct $name;
                impl RequiredPermission for $name {
                    const PERMISSION: Option<Permission> = $p;
                }
            )*
        };
    }

    perms! {
        Authenticated => None,
        ReadTasks => Some(Permission::ReadTasks),
        SubmitTasks => Some(Permission::SubmitTasks),
        ManageTasks => Some(Permission::ManageTasks),
        ReadAgents => Some(Permission::ReadAgents),
        ManageAgents => Some(Permission::ManageAgents),
        ReadSystem => Some(Permission::ReadSystem),
        ManageSystem => Some(Permission::ManageSystem),
        ManageUsers => Some(Permission::ManageUsers),
        ManageOwnKeys => Some(Permission::ManageOwnKeys),
        Work => Some(Permission::Work),
        ReadAudit => Some(Permission::ReadAudit),
    }
}

/// The authenticated caller, holding the permission `P` (checked before the handler
/// runs). Every `/api/v1` handler except login and refresh takes one.
pub struct Auth<P: RequiredPermission = perm::Authenticated> {
    pub principal: Principal,
    _p: PhantomData<P>,
}

impl<P: RequiredPermission> std::ops::Deref for Auth<P> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<P: RequiredPermission + Send + Sync> FromRequestParts<AppState> for Auth<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Browsers cannot set headers on EventSource/WebSocket: a single-use ticket in the
        // query string stands in for the header there.
        let ticket = (!parts.headers.contains_key(header::AUTHORIZATION))
            .then(|| query_ticket(parts))
            .flatten();
        let principal = match ticket {
            Some(ticket) => state.engine.auth().redeem_ticket(&ticket).await?,
            None => {
                state
                    .engine
                    .auth()
                    .authenticate(bearer_token(parts)?)
                    .await?
            }
        };
        if let Some(p) = P::PERMISSION
            && !principal.allows(p)
        {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this credential is not allowed to do that",
            ));
        }
        Ok(Auth {
            principal,
            _p: PhantomData,
        })
    }
}

fn query_ticket(parts: &Parts) -> Option<String> {
    parts.uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "ticket" && !v.is_empty()).then(|| v.to_owned())
    })
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthorized,
            "missing `Authorization: Bearer <token>` header",
        )
    })?;
    let value = header.to_str().map_err(|_| {
        ApiError::new(
            ErrorCode::Unauthorized,
            "the Authorization header is not valid text",
        )
    })?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthorized,
            "expected `Authorization: Bearer <token>`",
        )
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "expected `Authorization: Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

/// The client's address, for login throttling: see [`crate::client_addr`].
pub use crate::client_addr::ClientAddr;
/// Where a handler records its audit entries: see [`crate::routes::audit`].
pub use crate::routes::audit::AuditTrail;
