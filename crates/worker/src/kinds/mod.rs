//! Built-in agent kinds. Each turns an input into an output or a classified error.

mod fail;
mod http;
mod sleep;

use serde_json::Value;
use switchyard_core::agent::{AgentKind, AgentSpec};
use switchyard_core::event::EventBody;
use switchyard_core::store::AttemptRef;
use switchyard_core::task::TaskError;
use tokio_util::sync::CancellationToken;

pub use http::HttpKind;

/// What an executing task can see and do.
pub struct TaskContext<'a> {
    pub attempt: &'a AttemptRef,
    pub spec: &'a AgentSpec,
    pub cancel: CancellationToken,
    pub events: &'a dyn EventSink,
}

/// Where live events of a running attempt go.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync {
    async fn emit(&self, body: EventBody);
}

pub type KindResult = Result<Value, TaskError>;

/// Runs one attempt of a built-in kind. Cancellation and the per-attempt timeout are
/// enforced by the caller; kinds only need to stop promptly when `cancel` fires if
/// they wait on something (sleep).
pub async fn execute(kind: AgentKind, ctx: TaskContext<'_>, http: &HttpKind) -> KindResult {
    match kind {
        AgentKind::Echo => Ok(ctx.attempt.input.clone()),
        AgentKind::Sleep => sleep::run(ctx).await,
        AgentKind::Fail => fail::run(ctx),
        AgentKind::Http => http.run(ctx).await,
        // The dispatcher never hands remote agents to this runtime; refuse rather than guess.
        AgentKind::Remote => Err(TaskError::permanent(
            "not_builtin",
            format!("agent {:?} runs in remote workers", ctx.spec.name),
        )),
    }
}
