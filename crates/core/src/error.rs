//! The domain error: a stable, machine-readable code, a human message, optional details.
//!
//! Codes are part of the public contract (clients switch on them), so variants may be
//! added but never renamed. Which HTTP status a code answers with is the API's business
//! (`switchyard_api::error::status_of`). Internal errors carry their cause for logging only; the
//! API layer never shows it to clients.

use std::fmt;

use serde_json::Value;

pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! error_codes {
    ($($variant:ident = $code:literal),* $(,)?) => {
        /// Stable error codes, serialized in snake_case.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant),* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code),* }
            }
        }
    };
}

error_codes! {
    MalformedJson = "malformed_json",
    InvalidParameter = "invalid_parameter",
    InvalidBody = "invalid_body",
    UnsupportedMediaType = "unsupported_media_type",
    PayloadTooLarge = "payload_too_large",
    RequestTimeout = "request_timeout",
    ValidationFailed = "validation_failed",
    UnknownAgent = "unknown_agent",
    InvalidAgent = "invalid_agent",
    FallbackCycle = "fallback_cycle",
    WeakPassword = "weak_password",
    TaskNotFound = "task_not_found",
    AgentNotFound = "agent_not_found",
    UserNotFound = "user_not_found",
    ApiKeyNotFound = "api_key_not_found",
    SessionNotFound = "session_not_found",
    AlertRuleNotFound = "alert_rule_not_found",
    ScheduleNotFound = "schedule_not_found",
    FileNotFound = "file_not_found",
    RouteNotFound = "route_not_found",
    MethodNotAllowed = "method_not_allowed",
    AgentExists = "agent_exists",
    ScheduleExists = "schedule_exists",
    InvalidSchedule = "invalid_schedule",
    InvalidFile = "invalid_file",
    FileTooLarge = "file_too_large",
    QuotaExceeded = "quota_exceeded",
    RangeNotSatisfiable = "range_not_satisfiable",
    InvalidSignature = "invalid_signature",
    LeaseLost = "lease_lost",
    AgentBuiltin = "agent_builtin",
    AgentInUse = "agent_in_use",
    EmailTaken = "email_taken",
    InvalidState = "invalid_state",
    TaskFinished = "task_finished",
    Unauthorized = "unauthorized",
    TokenExpired = "token_expired",
    InvalidCredentials = "invalid_credentials",
    Forbidden = "forbidden",
    PasswordLoginDisabled = "password_login_disabled",
    SsoNotConfigured = "sso_not_configured",
    RateLimited = "rate_limited",
    QueueFull = "queue_full",
    Unavailable = "unavailable",
    Internal = "internal",
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
    fn codes_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{s} is not snake_case"
            );
        }
    }
}
