//! Built-in agent kinds. Each turns an input into an output or a classified error.

mod command;
mod fail;
mod http;
pub mod llm;
mod sleep;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::sync::Arc;

use serde_json::Value;
use switchyard_core::agent::{AgentKind, AgentSpec};
use switchyard_core::event::EventBody;
use switchyard_core::store::AttemptRef;
use switchyard_core::task::TaskError;
use tokio_util::sync::CancellationToken;

pub use command::CommandKind;
pub use http::HttpKind;
pub use llm::LlmKind;

/// The HTTP client of the kinds that call out (`http`, `llm`): bounded connect time and
/// redirects, pooled connections, Switchyard's user agent.
fn outbound_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .pool_idle_timeout(std::time::Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// The built-in kinds that keep state or settings of their own.
pub struct Kinds {
    pub http: HttpKind,
    pub command: CommandKind,
    pub llm: LlmKind,
}

/// The server's own environment, which built-in kinds may hand on (a `command` agent's
/// `pass_env`, an `llm` agent's `api_key_env`). The binary's config module reads it once at start; printed, it shows
/// the names only.
#[derive(Clone, Default)]
pub struct HostEnvironment {
    vars: Arc<BTreeMap<OsString, OsString>>,
}

impl HostEnvironment {
    pub fn new(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        HostEnvironment {
            vars: Arc::new(vars.into_iter().collect()),
        }
    }

    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(OsStr::new(name)).map(OsString::as_os_str)
    }
}

impl std::fmt::Debug for HostEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

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
/// enforced by the caller, which drops the future; kinds only need to stop promptly when
/// `cancel` fires if they wait on something (sleep), and to leave nothing behind when
/// dropped (command ends its process group).
pub async fn execute(kind: AgentKind, ctx: TaskContext<'_>, kinds: &Kinds) -> KindResult {
    match kind {
        AgentKind::Echo => Ok(ctx.attempt.input.clone()),
        AgentKind::Sleep => sleep::run(ctx).await,
        AgentKind::Fail => fail::run(ctx),
        AgentKind::Http => kinds.http.run(ctx).await,
        AgentKind::Command => kinds.command.run(ctx).await,
        AgentKind::Llm => kinds.llm.run(ctx).await,
        // The dispatcher never hands remote agents to this runtime; refuse rather than guess.
        AgentKind::Remote => Err(TaskError::permanent(
            "not_builtin",
            format!("agent {:?} runs in remote workers", ctx.spec.name),
        )),
    }
}
