use serde_json::json;
use switchyard_core::task::{ErrorClass, TaskError};

use super::{KindResult, TaskContext};

/// Fails the task's first `times` attempts with `class`, then succeeds. Attempts are
/// counted over the task's life, so replaying a dead task continues the count.
pub fn run(ctx: TaskContext<'_>) -> KindResult {
    let input = &ctx.attempt.input;
    let times = input.get("times").and_then(|v| v.as_u64()).unwrap_or(1);
    let class: ErrorClass = match input.get("class").and_then(|v| v.as_str()) {
        Some(c) => c
            .parse()
            .map_err(|e: String| TaskError::permanent("bad_input", e))?,
        None => ErrorClass::Retryable,
    };
    let n = u64::from(ctx.attempt.attempt);
    if n <= times {
        let message = input
            .get("message")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("simulated {} failure {n} of {times}", class.as_str()));
        let mut error = TaskError::new(class, "simulated_failure", message);
        if class == ErrorClass::RateLimited {
            error.retry_after_ms = input.get("retry_after_ms").and_then(|v| v.as_u64());
        }
        return Err(error);
    }
    Ok(json!({ "attempts": n }))
}
