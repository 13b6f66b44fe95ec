//! Errors as clients see them: `{"error":{"code","message","request_id","details"?}}`
//! with the status the code maps to ([`status_of`]). Internal failures are logged with their cause and
//! the request id, and shown to clients only as a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use switchyard_core::{Error, ErrorCode};
use utoipa::ToSchema;

use crate::request_id::current_request_id;

pub struct ApiError(pub Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(Error::new(code, message))
    }
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `task_not_found`.
    pub code: String,
    pub message: String,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// The HTTP status an error code answers with. Exhaustive, so that a new code cannot be
/// added without choosing its status.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        MalformedJson | InvalidParameter => StatusCode::BAD_REQUEST,
        Unauthorized | TokenExpired | InvalidCredentials => StatusCode::UNAUTHORIZED,
        Forbidden | InvalidSignature | PasswordLoginDisabled => StatusCode::FORBIDDEN,
        TaskNotFound | AgentNotFound | UserNotFound | ApiKeyNotFound | SessionNotFound
        | AlertRuleNotFound | ScheduleNotFound | FileNotFound | RouteNotFound
        | SsoNotConfigured => StatusCode::NOT_FOUND,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        AgentExists | ScheduleExists | AgentBuiltin | AgentInUse | EmailTaken | InvalidState
        | TaskFinished | LeaseLost => StatusCode::CONFLICT,
        PayloadTooLarge | FileTooLarge | QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
        RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        InvalidBody | ValidationFailed | UnknownAgent | InvalidAgent | FallbackCycle
        | WeakPassword | InvalidSchedule | InvalidFile => StatusCode::UNPROCESSABLE_ENTITY,
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
        QueueFull | Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let request_id = current_request_id();
        let status = status_of(e.code);
        let message = if e.code == ErrorCode::Internal {
            tracing::error!(request_id = %request_id, error = %e, "internal error");
            format!("internal error; the server log has the details under request id {request_id}")
        } else {
            if e.code == ErrorCode::Unavailable {
                tracing::warn!(request_id = %request_id, error = %e, "service unavailable");
            }
            e.message.clone()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: e.code.as_str().to_owned(),
                message,
                request_id,
                details: e.details.map(|d| *d),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = e.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_a_client_or_server_error() {
        for &code in ErrorCode::ALL {
            let status = status_of(code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code} maps to {status}"
            );
        }
    }

    #[test]
    fn internal_failures_are_server_errors_and_the_rest_client_errors() {
        for &code in ErrorCode::ALL {
            let internal = matches!(
                code,
                ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::QueueFull
            );
            assert_eq!(status_of(code).is_server_error(), internal, "{code}");
        }
    }
}
