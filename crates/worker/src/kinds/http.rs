//! The `http` kind: a webhook agent in any language, no SDK needed.
//!
//! The input JSON is POSTed to `config.url`. 2xx: the body (JSON, or text as a string)
//! is the output. 429: rate limited, honouring `Retry-After`. 408 and 5xx, timeouts and
//! connection errors: retryable. Other 4xx: permanent.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::Value;
use switchyard_core::event::{EventBody, LogLevel};
use switchyard_core::task::TaskError;

use super::{KindResult, TaskContext};

/// Larger response bodies are refused (the output is stored with the task).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct HttpKind {
    client: reqwest::Client,
}

impl HttpKind {
    pub fn new() -> Self {
        let client = super::outbound_client();
        HttpKind { client }
    }

    pub async fn run(&self, ctx: TaskContext<'_>) -> KindResult {
        let config = ctx
            .spec
            .http_config()
            .map_err(|e| TaskError::permanent("bad_config", e.message))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) else {
                return Err(TaskError::permanent(
                    "bad_config",
                    format!("invalid header {name:?}"),
                ));
            };
            headers.insert(name, value);
        }
        let task_id = ctx.attempt.task_id.to_string();
        let mut request = self
            .client
            .post(&config.url)
            .headers(headers)
            .header("x-switchyard-task-id", &task_id)
            .header("x-switchyard-attempt", ctx.attempt.attempt.to_string())
            .timeout(Duration::from_millis(ctx.spec.timeout_ms))
            .json(&ctx.attempt.input);
        if let Some(trace) = &ctx.attempt.trace_id {
            request = request.header(
                "traceparent",
                format!("00-{trace}-{}-01", &task_id.replace('-', "")[16..]),
            );
        }
        let response = request.send().await.map_err(classify_transport)?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers().get(RETRY_AFTER));
        let body = read_limited(response).await?;
        ctx.events
            .emit(EventBody::Log {
                level: if status.is_success() {
                    LogLevel::Info
                } else {
                    LogLevel::Warn
                },
                message: format!("POST {} -> {}", config.url, status.as_u16()),
            })
            .await;
        let text = String::from_utf8_lossy(&body);
        if status.is_success() {
            return Ok(parse_body(&text));
        }
        let snippet: String = text.chars().take(500).collect();
        let code = format!("http_{}", status.as_u16());
        let message = format!("{} answered {}: {}", config.url, status, snippet.trim());
        Err(match status.as_u16() {
            429 => TaskError {
                code,
                ..TaskError::rate_limited(message, retry_after)
            },
            408 | 500..=599 => TaskError::retryable(code, message),
            _ => TaskError::permanent(code, message),
        })
    }
}

impl Default for HttpKind {
    fn default() -> Self {
        HttpKind::new()
    }
}

/// JSON bodies become JSON output; anything else is kept as a string.
fn parse_body(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, TaskError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify_transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(TaskError::permanent(
                "response_too_large",
                format!("the response body exceeds {MAX_RESPONSE_BYTES} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(super) fn classify_transport(e: reqwest::Error) -> TaskError {
    if e.is_timeout() {
        TaskError::retryable("timeout", format!("the request timed out: {e}"))
    } else if e.is_builder() {
        TaskError::permanent(
            "bad_request",
            format!("the request could not be built: {e}"),
        )
    } else {
        TaskError::retryable("network", format!("the request failed: {e}"))
    }
}

/// `Retry-After` as delay-seconds or an HTTP date, in milliseconds.
pub fn parse_retry_after(value: Option<&HeaderValue>) -> Option<u64> {
    let s = value?.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(secs.saturating_mul(1_000));
    }
    let when = chrono::DateTime::parse_from_rfc2822(s).ok()?;
    let ms = when.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(ms.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("7"))),
            Some(7_000)
        );
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static(
                "Wed, 21 Oct 2015 07:28:00 GMT"
            ))),
            Some(0)
        );
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("soon"))),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn bodies_become_json_or_text() {
        assert_eq!(parse_body("{\"a\":1}"), serde_json::json!({"a": 1}));
        assert_eq!(parse_body("plain"), Value::String("plain".into()));
        assert_eq!(parse_body("  "), Value::Null);
    }
}
