//! What a [`Client`](crate::Client) call can fail with. The server's answer is boxed in
//! [`ClientError`]: it is large, and results travel far more often than errors.

use serde_json::Value;

/// An error the server answered: `{"error": {"code", "message", "request_id", "details"?}}`
/// with its HTTP status.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// The server's stable snake_case code (`task_not_found`, `forbidden`,
    /// `validation_failed`, …), or `http_<status>` when the body was not an error object.
    pub code: String,
    pub message: String,
    /// Quote it when reporting a problem: the server logs under it.
    pub request_id: Option<String>,
    /// E.g. `{"violations": [{"path", "keyword", "message"}]}` for `validation_failed`.
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (HTTP {})", self.code, self.message, self.status)?;
        for violation in self.violations() {
            let at = violation
                .get("path")
                .or_else(|| violation.get("pointer"))
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .unwrap_or("/");
            let message = violation
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("");
            write!(f, "; {at}: {message}")?;
        }
        Ok(())
    }
}

impl ApiError {
    /// The per-field violations of a `validation_failed` error (empty for others).
    pub fn violations(&self) -> &[Value] {
        self.details
            .as_ref()
            .and_then(|d| d.get("violations"))
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// Reads an error response's body (`status` is the response's).
    pub(crate) fn from_body(status: u16, body: &[u8]) -> ApiError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let error = parsed.as_ref().and_then(|b| b.get("error"));
        let text = |key: &str| {
            error
                .and_then(|e| e.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match text("code") {
            Some(code) => ApiError {
                status,
                message: text("message").unwrap_or_else(|| code.clone()),
                code,
                request_id: text("request_id"),
                details: error.and_then(|e| e.get("details")).cloned(),
            },
            None => {
                let body = String::from_utf8_lossy(body);
                let body = body.trim();
                ApiError {
                    status,
                    code: format!("http_{status}"),
                    message: if body.is_empty() {
                        format!("the server answered HTTP {status}")
                    } else {
                        body.chars().take(500).collect()
                    },
                    request_id: None,
                    details: None,
                }
            }
        }
    }
}

/// A failed [`Client`](crate::Client) call, by what a caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL given to the client is not `http(s)://host[:port]`.
    #[error("invalid server URL {0:?}: use http(s)://host:port")]
    InvalidUrl(String),
    /// The server could not be reached, or the connection broke before an answer.
    #[error("cannot reach the server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// 401: no credential, a wrong or revoked one, or an expired session.
    #[error("{0}")]
    Unauthorized(Box<ApiError>),
    /// 403: the credential may not do this (a viewer, a key without the scope).
    #[error("{0}")]
    Forbidden(Box<ApiError>),
    /// 404: no such task, agent, … (or one the caller may not see).
    #[error("{0}")]
    NotFound(Box<ApiError>),
    /// 400, 413, 415 and 422: the request itself is wrong (bad input, a schema violation,
    /// an unknown agent).
    #[error("{0}")]
    BadRequest(Box<ApiError>),
    /// Any other error status: a conflict (409), a rate limit (429), a server failure (5xx).
    #[error("{0}")]
    Server(Box<ApiError>),
    /// The server answered something this client cannot read.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

impl ClientError {
    pub(crate) fn from_status(error: ApiError) -> ClientError {
        let error = Box::new(error);
        match error.status {
            401 => ClientError::Unauthorized(error),
            403 => ClientError::Forbidden(error),
            404 => ClientError::NotFound(error),
            400 | 413 | 415 | 422 => ClientError::BadRequest(error),
            _ => ClientError::Server(error),
        }
    }

    pub(crate) fn transport(url: &str, e: &reqwest::Error) -> ClientError {
        // The whole source chain: reqwest's own message is only "error sending request".
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        ClientError::Unreachable {
            url: url.to_owned(),
            reason,
        }
    }

    /// The server's answer, for errors that are one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Unauthorized(e)
            | ClientError::Forbidden(e)
            | ClientError::NotFound(e)
            | ClientError::BadRequest(e)
            | ClientError::Server(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// The server's error code (`task_not_found`, …), for errors that are an answer.
    pub fn code(&self) -> Option<&str> {
        self.api().map(|e| e.code.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_is_read_and_classified() {
        let body =
            br#"{"error":{"code":"task_not_found","message":"no task 1","request_id":"r1"}}"#;
        let e = ClientError::from_status(ApiError::from_body(404, body));
        assert!(matches!(e, ClientError::NotFound(_)));
        assert_eq!(e.code(), Some("task_not_found"));
        assert_eq!(e.to_string(), "task_not_found: no task 1 (HTTP 404)");
        assert_eq!(e.api().unwrap().request_id.as_deref(), Some("r1"));
    }

    #[test]
    fn violations_are_part_of_the_message() {
        let body = br#"{"error":{"code":"validation_failed","message":"bad input","request_id":"r","details":{"violations":[{"path":"/ms","keyword":"type","message":"not an integer"}]}}}"#;
        let e = ClientError::from_status(ApiError::from_body(422, body));
        assert!(matches!(e, ClientError::BadRequest(_)));
        assert_eq!(
            e.to_string(),
            "validation_failed: bad input (HTTP 422); /ms: not an integer"
        );
    }

    #[test]
    fn a_body_that_is_not_an_error_object_keeps_its_status() {
        for (status, kind) in [(403, "forbidden"), (502, "server"), (400, "bad")] {
            let e = ClientError::from_status(ApiError::from_body(status, b"<html>gateway</html>"));
            assert_eq!(e.code(), Some(format!("http_{status}").as_str()));
            let matched = match kind {
                "forbidden" => matches!(e, ClientError::Forbidden(_)),
                "server" => matches!(e, ClientError::Server(_)),
                _ => matches!(e, ClientError::BadRequest(_)),
            };
            assert!(matched, "{status}: {e:?}");
        }
        let empty = ApiError::from_body(500, b"");
        assert_eq!(empty.message, "the server answered HTTP 500");
    }
}
