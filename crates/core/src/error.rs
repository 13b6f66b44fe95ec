//! The domain error: a stable, machine-readable code, a human message, optional details.
//!
//! Codes are part of the public contract (clients switch on them), so variants may be
//! added but never renamed. Internal errors carry their cause for logging only; the
//! API layer never shows it to clients.

use std::fmt;

use serde_json::Value;

pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! error_codes {
    ($($variant:ident = ($code:literal, $status:literal)),* $(,)?) => {
        /// Stable error codes, serialized in snake_case.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant),* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code),* }
            }

            /// The HTTP status this code maps to.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status),* }
            }
        }
    };
}

error_codes! {
    MalformedJson = ("malformed_json", 400),
    InvalidParameter = ("invalid_parameter", 400),
    InvalidBody = ("invalid_body", 422),
    UnsupportedMediaType = ("unsupported_media_type", 415),
    PayloadTooLarge = ("payload_too_large", 413),
    RequestTimeout = ("request_timeout", 408),
    ValidationFailed = ("validation_failed", 422),
    UnknownAgent = ("unknown_agent", 422),
    InvalidAgent = ("invalid_agent", 422),
    FallbackCycle = ("fallback_cycle", 422),
    WeakPassword = ("weak_password", 422),
    TaskNotFound = ("task_not_found", 404),
    AgentNotFound = ("agent_not_found", 404),
    UserNotFound = ("user_not_found", 404),
    ApiKeyNotFound = ("api_key_not_found", 404),
    SessionNotFound = ("session_not_found", 404),
    AlertRuleNotFound = ("alert_rule_not_found", 404),
    RouteNotFound = ("route_not_found", 404),
    MethodNotAllowed = ("method_not_allowed", 405),
    AgentExists = ("agent_exists", 409),
    AgentBuiltin = ("agent_builtin", 409),
    AgentInUse = ("agent_in_use", 409),
    EmailTaken = ("email_taken", 409),
    InvalidState = ("invalid_state", 409),
    Unauthorized = ("unauthorized", 401),
    TokenExpired = ("token_expired", 401),
    InvalidCredentials = ("invalid_credentials", 401),
    Forbidden = ("forbidden", 403),
    RateLimited = ("rate_limited", 429),
    QueueFull = ("queue_full", 503),
    Unavailable = ("unavailable", 503),
    Internal = ("internal", 500),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// Structured extra information safe to show the client (e.g. the list of schema violations).
    pub details: Option<Box<Value>>,
    /// For `rate_limited`: how long the client should wait.
    pub retry_after_s: Option<u64>,
    /// The underlying cause, for logs only.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            details: None,
            retry_after_s: None,
            source: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    /// An internal failure (database down, bug). The message is for operators; clients
    /// only ever see a generic text.
    pub fn internal(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error {
            code: ErrorCode::Internal,
            message: context.into(),
            details: None,
            retry_after_s: None,
            source: Some(Box::new(source)),
        }
    }

    pub fn internal_msg(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Unavailable, message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidParameter, message)
    }

    pub fn invalid_state(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidState, message)
    }

    pub fn task_not_found(id: impl fmt::Display) -> Self {
        Error::new(ErrorCode::TaskNotFound, format!("task {id} not found"))
    }

    pub fn agent_not_found(name: &str) -> Self {
        Error::new(
            ErrorCode::AgentNotFound,
            format!("agent {name:?} not found"),
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Forbidden, message)
    }

    pub fn is_internal(&self) -> bool {
        matches!(self.code, ErrorCode::Internal | ErrorCode::Unavailable)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("code", &self.code).field("message", &self.message);
        if let Some(details) = &self.details {
            d.field("details", details);
        }
        if let Some(source) = &self.source {
            d.field("source", &format_args!("{source}"));
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_map_to_client_or_server_errors() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{s} is not snake_case"
            );
            assert!((400..600).contains(&code.http_status()));
        }
    }
}
