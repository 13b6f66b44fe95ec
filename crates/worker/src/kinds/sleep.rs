use serde_json::json;
use switchyard_core::event::{EventBody, LogLevel};
use switchyard_core::task::TaskError;

use super::{KindResult, TaskContext};

pub async fn run(ctx: TaskContext<'_>) -> KindResult {
    let ms = ctx
        .attempt
        .input
        .get("ms")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| TaskError::permanent("bad_input", "sleep needs an integer `ms` ≥ 0"))?;
    ctx.events
        .emit(EventBody::Log {
            level: LogLevel::Info,
            message: format!("sleeping {ms} ms"),
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    Ok(json!({ "slept_ms": ms }))
}
