//! Errors as clients see them: `{"error":{"code","message","request_id","details"?}}`
//! with the status the code maps to. Internal failures are logged with their cause and
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let request_id = current_request_id();
        let status =
            StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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
