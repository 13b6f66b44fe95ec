//! An agent as the API shows it: secrets masked, with the list of those that are set.

use serde::Serialize;
use serde_json::Value;
use switchyard_core::Timestamp;
use switchyard_core::agent::{Agent, AgentKind};
use switchyard_core::retry::RetryPolicy;
use utoipa::ToSchema;

/// A registered agent. Secret values in `config` (an `http` agent's header values, a
/// `command` agent's `env` values) are write-only: they read `"***"`, and `secrets`
/// lists the ones that are set. Sending `"***"` back in an update keeps the stored value.
#[derive(Serialize, ToSchema)]
#[schema(as = Agent)]
#[serde(deny_unknown_fields)]
pub struct AgentView {
    pub name: String,
    pub kind: AgentKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub version: String,
    /// JSON Schema (2020-12) the task input must satisfy; its `default`s are applied.
    #[schema(value_type = Option<switchyard_core::schema::JsonSchemaValue>)]
    pub input_schema: Option<Value>,
    /// JSON Schema the output must satisfy.
    #[schema(value_type = Option<switchyard_core::schema::JsonSchemaValue>)]
    pub output_schema: Option<Value>,
    /// Kind-specific settings (`http`: `{"url", "headers"}`; `command`: `{"program",
    /// "args", "cwd", "env", "pass_env", "max_output_bytes", "exit_codes"}`; `llm`:
    /// `{"base_url", "model", "api_key_env", ...}`, whose key stays in the server's
    /// environment), secrets shown as `"***"`.
    #[schema(value_type = Object)]
    pub config: Value,
    pub retry: RetryPolicy,
    pub timeout_ms: u64,
    pub concurrency: Option<u32>,
    pub cache_ttl_ms: Option<u64>,
    pub fallback: Option<String>,
    pub priority: i32,
    /// A JSON pointer into the input: tasks with the same value there share
    /// `concurrency_per_key`, and dispatch takes turns between the values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// At most this many tasks of one concurrency key run at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency_per_key: Option<u32>,
    /// How fast its tasks may start, across the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<switchyard_core::flow::RateLimit>,
    /// Built-in agents exist on every install and cannot be deleted.
    pub builtin: bool,
    /// JSON pointers of the secrets that are set (each shown as `"***"`), e.g.
    /// `/config/headers/Authorization`.
    pub secrets: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Agent> for AgentView {
    fn from(agent: Agent) -> Self {
        let secrets = agent.spec.secret_pointers();
        let spec = agent.spec.redacted();
        AgentView {
            name: spec.name,
            kind: spec.kind,
            description: spec.description,
            version: spec.version,
            input_schema: spec.input_schema,
            output_schema: spec.output_schema,
            config: spec.config,
            retry: spec.retry,
            timeout_ms: spec.timeout_ms,
            concurrency: spec.concurrency,
            cache_ttl_ms: spec.cache_ttl_ms,
            fallback: spec.fallback,
            priority: spec.priority,
            concurrency_key: spec.concurrency_key,
            concurrency_per_key: spec.concurrency_per_key,
            rate_limit: spec.rate_limit,
            builtin: agent.builtin,
            secrets,
            created_at: agent.created_at,
            updated_at: agent.updated_at,
        }
    }
}
