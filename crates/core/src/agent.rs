//! Agents: named, versioned kinds of work, and how they are configured.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};
use crate::retry::RetryPolicy;
use crate::schema::CompiledSchema;
use crate::task::ErrorClass;
use crate::time::Timestamp;

pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
pub const MAX_TIMEOUT_MS: u64 = 24 * 3_600_000;
pub const MAX_NAME_LEN: usize = 64;
pub const MAX_FALLBACK_CHAIN: usize = 16;
pub const MAX_PRIORITY: i32 = 1_000_000;

/// How an agent's work is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Returns its input as output.
    Echo,
    /// Waits `input.ms` milliseconds (cooperatively cancellable), then returns `{"slept_ms": N}`.
    Sleep,
    /// Fails the first `input.times` attempts with `input.class`, then succeeds.
    Fail,
    /// POSTs the input JSON to `config.url`; a 2xx body is the output.
    Http,
    /// Runs `config.program` on the server's machine with the input JSON on its stdin;
    /// its stdout is the output (admins only; see `agents.allow_command`).
    Command,
    /// Asks an OpenAI-compatible chat-completions API (`config.base_url`, `config.model`),
    /// streaming the answer's tokens as `partial` events; the output is the answer with
    /// its token usage.
    Llm,
    /// Runs in remote workers that connect over the worker protocol and declare it.
    Remote,
}

impl AgentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Echo => "echo",
            AgentKind::Sleep => "sleep",
            AgentKind::Fail => "fail",
            AgentKind::Http => "http",
            AgentKind::Command => "command",
            AgentKind::Llm => "llm",
            AgentKind::Remote => "remote",
        }
    }

    /// Whether Switchyard's own worker runtime runs this kind (all but `remote`).
    pub fn is_builtin(self) -> bool {
        self != AgentKind::Remote
    }

    /// Where this kind keeps secrets in its `config`: values that are write-only (never
    /// returned by the API, never logged) and reach only the worker running its tasks.
    /// A new kind with credentials declares them here and the API, logs and update
    /// semantics follow.
    pub fn secret_fields(self) -> &'static [SecretField] {
        match self {
            AgentKind::Http => &[SecretField::MapValues("headers")],
            AgentKind::Command => &[SecretField::MapValues("env")],
            // An `llm` agent's API key stays in the server's environment: only the
            // variable's name is in its config.
            AgentKind::Llm
            | AgentKind::Echo
            | AgentKind::Sleep
            | AgentKind::Fail
            | AgentKind::Remote => &[],
        }
    }
}

/// What clients see instead of a secret's value. Sending it back in an update keeps the
/// stored value.
pub const SECRET_MASK: &str = "***";

/// A secret place in an agent's `config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretField {
    /// `config.<field>` is a secret string.
    Value(&'static str),
    /// Every value of the object `config.<field>` is a secret string (its keys are not),
    /// e.g. `http`'s request headers or an environment map.
    MapValues(&'static str),
}

/// A JSON pointer (RFC 6901) reference token.
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Configuration of an `http` agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAgentConfig {
    /// The http(s) URL the input is POSTed to.
    pub url: String,
    /// Extra request headers (e.g. an authorization header for the webhook).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The exit status a `command` agent's program returns to ask for a retry by default
/// (`EX_TEMPFAIL` of sysexits.h).
pub const EXIT_TEMPFAIL: i32 = 75;
/// What a `command` agent reads of its program's stdout unless `max_output_bytes` says
/// otherwise: the same as an `http` agent's response limit.
pub const DEFAULT_COMMAND_OUTPUT_BYTES: u64 = 8 << 20;
/// The highest `max_output_bytes` (the output is stored with the task).
pub const MAX_COMMAND_OUTPUT_BYTES: u64 = 64 << 20;
/// Most arguments, `env` entries and `pass_env` names of a `command` agent.
pub const MAX_COMMAND_ARGS: usize = 1_024;
pub const MAX_COMMAND_ENV: usize = 256;
/// Variables a `command` agent's program always gets; `env` may not set them.
pub const COMMAND_TASK_ID_ENV: &str = "SWITCHYARD_TASK_ID";
pub const COMMAND_ATTEMPT_ENV: &str = "SWITCHYARD_ATTEMPT";

/// Configuration of a `command` agent: a program on the server's machine (docs/agents.md).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandAgentConfig {
    /// Absolute path of the program. It is run directly: no shell, no `PATH` lookup.
    pub program: String,
    /// Its arguments, each a template (see [`crate::template`]) rendered with `input`
    /// (the task input), `task_id` and `attempt`: `["convert.py", "{{ input.path }}"]`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Absolute working directory. Unset: the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Variables set in its environment. The values are secrets (write-only).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables copied from the server's environment (e.g. `PATH`, `HOME`); no other
    /// variable of the server's reaches the program.
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Most bytes read from its stdout; more fails the attempt permanently
    /// (`output_too_large`). Default [`DEFAULT_COMMAND_OUTPUT_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    /// How non-zero exit statuses are classified, e.g. `{"3": "retryable", "75":
    /// "permanent"}`. A status left out: 75 is retryable, any other permanent.
    #[serde(default)]
    pub exit_codes: BTreeMap<String, ErrorClass>,
}

// `env` values are secrets: never printed.
impl std::fmt::Debug for CommandAgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: BTreeMap<&str, &str> =
            self.env.keys().map(|k| (k.as_str(), SECRET_MASK)).collect();
        f.debug_struct("CommandAgentConfig")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .field("env", &env)
            .field("pass_env", &self.pass_env)
            .field("max_output_bytes", &self.max_output_bytes)
            .field("exit_codes", &self.exit_codes)
            .finish()
    }
}

impl CommandAgentConfig {
    pub fn max_output_bytes(&self) -> u64 {
        self.max_output_bytes
            .unwrap_or(DEFAULT_COMMAND_OUTPUT_BYTES)
    }

    /// How a failed run that exited with `status` (not 0) is classified.
    pub fn exit_class(&self, status: i32) -> ErrorClass {
        match self.exit_codes.get(&status.to_string()) {
            Some(class) => *class,
            None if status == EXIT_TEMPFAIL => ErrorClass::Retryable,
            None => ErrorClass::Permanent,
        }
    }

    /// Checks what registration can: the templates parse, the names are variable names,
    /// the paths are absolute, the numbers in range.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::new(ErrorCode::InvalidAgent, m));
        if self.program.is_empty() {
            return bad("config.program must name the program to run".into());
        }
        if !self.program.starts_with('/') {
            return bad(format!(
                "config.program must be an absolute path (it is run without a shell or PATH lookup), got {:?}",
                self.program
            ));
        }
        if let Some(cwd) = &self.cwd
            && !cwd.starts_with('/')
        {
            return bad(format!("config.cwd must be an absolute path, got {cwd:?}"));
        }
        for (name, value) in [("program", Some(&self.program)), ("cwd", self.cwd.as_ref())] {
            if value.is_some_and(|v| v.contains('\0')) {
                return bad(format!("config.{name} must not contain U+0000"));
            }
        }
        if self.args.len() > MAX_COMMAND_ARGS {
            return bad(format!(
                "config.args has {} arguments; the most is {MAX_COMMAND_ARGS}",
                self.args.len()
            ));
        }
        for (i, arg) in self.args.iter().enumerate() {
            crate::template::check(&format!("config.args[{i}]"), arg)
                .map_err(|e| Error::new(ErrorCode::InvalidAgent, e.to_string()))?;
        }
        if self.env.len() > MAX_COMMAND_ENV || self.pass_env.len() > MAX_COMMAND_ENV {
            return bad(format!(
                "config.env and config.pass_env may have at most {MAX_COMMAND_ENV} entries each"
            ));
        }
        for (field, name) in self
            .env
            .keys()
            .map(|k| ("env", k))
            .chain(self.pass_env.iter().map(|k| ("pass_env", k)))
        {
            if !is_env_name(name) {
                return bad(format!(
                    "config.{field}: {name:?} is not a valid variable name (letters, digits and '_', not starting with a digit)"
                ));
            }
            if name == COMMAND_TASK_ID_ENV || name == COMMAND_ATTEMPT_ENV {
                return bad(format!(
                    "config.{field}: {name} is set by Switchyard for every run"
                ));
            }
        }
        if let Some(max) = self.max_output_bytes
            && !(1..=MAX_COMMAND_OUTPUT_BYTES).contains(&max)
        {
            return bad(format!(
                "config.max_output_bytes must be between 1 and {MAX_COMMAND_OUTPUT_BYTES}, got {max}"
            ));
        }
        for status in self.exit_codes.keys() {
            let canonical = status
                .parse::<u8>()
                .is_ok_and(|s| s != 0 && s.to_string() == *status);
            if !canonical {
                return bad(format!(
                    "config.exit_codes: {status:?} is not an exit status (1-255; 0 is success)"
                ));
            }
        }
        Ok(())
    }
}

/// A portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most 256 bytes.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 256
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An agent definition as registered (`POST /api/v1/agents`). Secret config values (an
/// `http` agent's header values, a `command` agent's `env` values) are write-only: a
/// secret sent as `"***"` keeps the stored value.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Unique name: 1–64 of `a-z 0-9 _ - .`, starting with a letter or digit.
    pub name: String,
    pub kind: AgentKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    /// JSON Schema (2020-12) the task input must satisfy; its `default`s are applied.
    #[serde(default)]
    #[schema(value_type = Option<crate::schema::JsonSchemaValue>)]
    pub input_schema: Option<Value>,
    /// JSON Schema the output must satisfy; a non-conforming output fails the attempt permanently.
    #[serde(default)]
    #[schema(value_type = Option<crate::schema::JsonSchemaValue>)]
    pub output_schema: Option<Value>,
    /// Kind-specific settings (`http`: `{"url", "headers"}`; `command`: `{"program",
    /// "args", "cwd", "env", "pass_env", "max_output_bytes", "exit_codes"}`; `llm`:
    /// `{"base_url", "model", "api_key_env", "system", "prompt", "temperature",
    /// "max_tokens", "response_format", "tools", "max_turns", "price_per_1k_tokens"}`).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: Value,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Per-attempt timeout.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// At most this many tasks of this agent run at once, across all workers.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Identical canonical inputs that succeeded within this window are answered from cache.
    #[serde(default)]
    pub cache_ttl_ms: Option<u64>,
    /// The agent that takes over when this one fails for good.
    #[serde(default)]
    pub fallback: Option<String>,
    /// Default priority of its tasks (higher runs first).
    #[serde(default)]
    pub priority: i32,
    /// A JSON pointer into the input (`"/customer_id"`): tasks with the same value there
    /// share `concurrency_per_key`, and dispatch takes turns between the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// At most this many tasks of one concurrency key run at once, across all workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_per_key: Option<u32>,
    /// How fast its tasks may start, across the whole cluster (per agent, or per key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<crate::flow::RateLimit>,
}

impl AgentSpec {
    /// A definition with every optional setting at its default.
    pub fn new(name: impl Into<String>, kind: AgentKind) -> Self {
        AgentSpec {
            name: name.into(),
            kind,
            description: None,
            version: default_version(),
            input_schema: None,
            output_schema: None,
            config: empty_object(),
            retry: RetryPolicy::default(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            concurrency: None,
            cache_ttl_ms: None,
            fallback: None,
            priority: 0,
            concurrency_key: None,
            concurrency_per_key: None,
            rate_limit: None,
        }
    }
}

// Secrets (see `AgentKind::secret_fields`) print masked, so a definition can be logged.
impl std::fmt::Debug for AgentSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.redacted();
        f.debug_struct("AgentSpec")
            .field("name", &shown.name)
            .field("kind", &shown.kind)
            .field("description", &shown.description)
            .field("version", &shown.version)
            .field("input_schema", &shown.input_schema)
            .field("output_schema", &shown.output_schema)
            .field("config", &shown.config)
            .field("retry", &shown.retry)
            .field("timeout_ms", &shown.timeout_ms)
            .field("concurrency", &shown.concurrency)
            .field("cache_ttl_ms", &shown.cache_ttl_ms)
            .field("fallback", &shown.fallback)
            .field("priority", &shown.priority)
            .field("concurrency_key", &shown.concurrency_key)
            .field("concurrency_per_key", &shown.concurrency_per_key)
            .field("rate_limit", &shown.rate_limit)
            .finish()
    }
}

impl AgentSpec {
    /// The JSON pointer a task's flow key is read from: `concurrency_key`, else the
    /// rate limit's `key`.
    pub fn flow_key_pointer(&self) -> Option<&str> {
        self.concurrency_key
            .as_deref()
            .or_else(|| self.rate_limit.as_ref().and_then(|r| r.key.as_deref()))
    }

    /// Whether only a claim can start this agent's tasks: it counts running tasks (per
    /// agent or per key) or rations starts per key, which no task may skip the queue past.
    /// An agent-wide rate limit alone does not: direct claims take its starts too.
    pub fn counts_starts(&self) -> bool {
        self.concurrency.is_some()
            || self.concurrency_per_key.is_some()
            || self.rate_limit.as_ref().is_some_and(|l| l.key.is_some())
    }
}

impl AgentSpec {
    /// Visits every secret value that is set in `config` with its JSON pointer from the
    /// agent's root (e.g. `/config/headers/Authorization`).
    fn visit_secrets(&mut self, mut visit: impl FnMut(String, &mut Value)) {
        let Some(config) = self.config.as_object_mut() else {
            return;
        };
        for field in self.kind.secret_fields() {
            match *field {
                SecretField::Value(name) => {
                    if let Some(v) = config.get_mut(name) {
                        visit(format!("/config/{}", pointer_token(name)), v);
                    }
                }
                SecretField::MapValues(name) => {
                    if let Some(Value::Object(map)) = config.get_mut(name) {
                        for (key, v) in map.iter_mut() {
                            let pointer =
                                format!("/config/{}/{}", pointer_token(name), pointer_token(key));
                            visit(pointer, v);
                        }
                    }
                }
            }
        }
    }

    /// The JSON pointers of the secrets that are set, in a stable order.
    pub fn secret_pointers(&self) -> Vec<String> {
        let mut pointers = Vec::new();
        self.clone().visit_secrets(|p, _| pointers.push(p));
        pointers
    }

    /// This definition with every secret value replaced by [`SECRET_MASK`]: what the API
    /// returns and logs show.
    pub fn redacted(&self) -> AgentSpec {
        let mut shown = self.clone();
        shown.visit_secrets(|_, v| *v = Value::String(SECRET_MASK.to_owned()));
        shown
    }

    /// Write-only secrets: a secret sent as [`SECRET_MASK`] (as a client got it from the
    /// API) keeps the value `stored` has at the same place. A mask with nothing stored
    /// there is refused, so the mask itself is never saved as a credential.
    pub fn keep_secrets(&mut self, stored: Option<&AgentSpec>) -> Result<(), Error> {
        let mut missing = None;
        self.visit_secrets(|pointer, v| {
            if v.as_str() != Some(SECRET_MASK) {
                return;
            }
            match stored
                .and_then(|s| s.config.pointer(pointer.trim_start_matches("/config")))
                .filter(|old| old.as_str() != Some(SECRET_MASK))
            {
                Some(old) => *v = old.clone(),
                None => {
                    missing.get_or_insert(pointer);
                }
            }
        });
        match missing {
            None => Ok(()),
            Some(pointer) => Err(Error::new(
                ErrorCode::InvalidAgent,
                format!(
                    "{pointer} is {SECRET_MASK:?}, which keeps a stored secret, but none is stored there; send the value"
                ),
            )
            .with_details(json!({ "pointer": pointer }))),
        }
    }
}

fn default_version() -> String {
    "1".to_owned()
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A registered agent. Clients see it as `switchyard_api::views::AgentView` (secrets masked).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    #[serde(flatten)]
    pub spec: AgentSpec,
    /// Built-in agents exist on every install and cannot be deleted.
    pub builtin: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn validate_name(name: &str) -> Result<(), Error> {
    let ok_len = !name.is_empty() && name.len() <= MAX_NAME_LEN;
    let mut chars = name.chars();
    let ok_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
    if ok_len && ok_first && ok_rest {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidAgent,
            format!(
                "invalid agent name {name:?}: use 1-{MAX_NAME_LEN} characters of a-z, 0-9, '_', '-', '.', starting with a letter or digit"
            ),
        ))
    }
}

impl AgentSpec {
    /// Checks everything that can be checked without looking at other agents, and
    /// returns the compiled input schema.
    pub fn validate(&self) -> Result<Option<CompiledSchema>, Error> {
        let bad = |m: String| Err(Error::new(ErrorCode::InvalidAgent, m));
        validate_name(&self.name)?;
        // A definition names things and holds settings: no U+0000 anywhere in it.
        if let Ok(tree) = serde_json::to_value(self) {
            crate::text::refuse_nul_in(&tree, &[])?;
        }
        self.retry.validate()?;
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return bad(format!(
                "timeout_ms must be between 1 and {MAX_TIMEOUT_MS}, got {}",
                self.timeout_ms
            ));
        }
        if self.concurrency == Some(0) {
            return bad("concurrency must be at least 1 (omit it for no limit)".into());
        }
        if self.concurrency_per_key == Some(0) {
            return bad("concurrency_per_key must be at least 1 (omit it for no limit)".into());
        }
        if let Some(pointer) = &self.concurrency_key {
            crate::flow::check_pointer("concurrency_key", pointer)?;
        }
        if let Some(limit) = &self.rate_limit {
            limit.validate()?;
            if let (Some(a), Some(b)) = (&self.concurrency_key, &limit.key)
                && a != b
            {
                return bad(format!(
                    "rate_limit.key {b:?} must be the same pointer as concurrency_key {a:?}: a task has one flow key"
                ));
            }
        }
        if self.priority.abs() > MAX_PRIORITY {
            return bad(format!(
                "priority must be between -{MAX_PRIORITY} and {MAX_PRIORITY}"
            ));
        }
        if self.version.is_empty() || self.version.len() > 64 {
            return bad("version must be 1-64 characters".into());
        }
        if self.description.as_ref().is_some_and(|d| d.len() > 4_096) {
            return bad("description must be at most 4096 characters".into());
        }
        if let Some(fallback) = &self.fallback {
            validate_name(fallback)?;
            if fallback == &self.name {
                return Err(Error::new(
                    ErrorCode::FallbackCycle,
                    format!("agent {:?} cannot fall back to itself", self.name),
                ));
            }
        }
        if !self.config.is_object() {
            return bad("config must be a JSON object".into());
        }
        match self.kind {
            AgentKind::Http => {
                let cfg = self.http_config()?;
                let url = url::Url::parse(&cfg.url).map_err(|e| {
                    Error::new(
                        ErrorCode::InvalidAgent,
                        format!("config.url {:?} is not a valid URL: {e}", cfg.url),
                    )
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return bad(format!(
                        "config.url must be an http or https URL with a host, got {:?}",
                        cfg.url
                    ));
                }
            }
            AgentKind::Command => self.command_config()?.validate()?,
            AgentKind::Llm => {
                let llm = self.llm_config()?;
                llm.validate()?;
                if llm.tools.contains(&self.name) {
                    return bad(format!(
                        "config.tools: agent {:?} cannot offer itself as a tool",
                        self.name
                    ));
                }
            }
            AgentKind::Echo | AgentKind::Sleep | AgentKind::Fail | AgentKind::Remote => {
                if self.config.as_object().is_some_and(|o| !o.is_empty()) {
                    return bad(format!(
                        "agents of kind {} take no config",
                        self.kind.as_str()
                    ));
                }
            }
        }
        if let Some(schema) = self.output_check_schema() {
            CompiledSchema::compile(&schema, "output_schema")?;
        }
        self.input_schema
            .as_ref()
            .map(|s| CompiledSchema::compile(s, "input_schema"))
            .transpose()
    }

    pub fn http_config(&self) -> Result<HttpAgentConfig, Error> {
        serde_json::from_value(self.config.clone()).map_err(|e| {
            Error::new(
                ErrorCode::InvalidAgent,
                format!("invalid config for an http agent: {e}"),
            )
        })
    }

    pub fn llm_config(&self) -> Result<crate::llm::LlmAgentConfig, Error> {
        serde_json::from_value(self.config.clone()).map_err(|e| {
            Error::new(
                ErrorCode::InvalidAgent,
                format!("invalid config for an llm agent: {e}"),
            )
        })
    }

    /// The JSON Schema a successful output is checked against: `output_schema`, except
    /// for `llm` agents, whose `output_schema` (or, without one, `config.response_format`)
    /// describes the answer, the output's `content` (see
    /// [`crate::llm::content_output_schema`]).
    pub fn output_check_schema(&self) -> Option<Value> {
        if self.kind != AgentKind::Llm {
            return self.output_schema.clone();
        }
        let content = self
            .output_schema
            .as_ref()
            .or_else(|| self.config.get("response_format").filter(|f| !f.is_null()))?;
        Some(crate::llm::content_output_schema(content))
    }

    pub fn command_config(&self) -> Result<CommandAgentConfig, Error> {
        serde_json::from_value(self.config.clone()).map_err(|e| {
            Error::new(
                ErrorCode::InvalidAgent,
                format!("invalid config for a command agent: {e}"),
            )
        })
    }
}

/// Rejects a fallback that does not exist or that leads back to `name`.
///
/// `fallback_of` looks up an agent's own fallback: `None` if the agent does not exist,
/// `Some(None)` if it has no fallback.
pub fn check_fallback_chain(
    name: &str,
    fallback: Option<&str>,
    fallback_of: impl Fn(&str) -> Option<Option<String>>,
) -> Result<(), Error> {
    let mut chain = vec![name.to_owned()];
    let mut next = fallback.map(str::to_owned);
    while let Some(current) = next {
        if chain.contains(&current) {
            chain.push(current);
            return Err(Error::new(
                ErrorCode::FallbackCycle,
                format!("fallback chain forms a cycle: {}", chain.join(" -> ")),
            ));
        }
        if chain.len() > MAX_FALLBACK_CHAIN {
            return Err(Error::new(
                ErrorCode::FallbackCycle,
                format!("fallback chain is longer than {MAX_FALLBACK_CHAIN} agents"),
            ));
        }
        next = match fallback_of(&current) {
            Some(next) => next,
            None => {
                return Err(Error::new(
                    ErrorCode::InvalidAgent,
                    format!("fallback agent {current:?} does not exist"),
                ));
            }
        };
        chain.push(current);
    }
    Ok(())
}

/// The agents every install has.
pub fn builtin_agents() -> Vec<AgentSpec> {
    let base = |name: &str, kind, description: &str, schema: Value| AgentSpec {
        description: Some(description.to_owned()),
        input_schema: Some(schema),
        ..AgentSpec::new(name, kind)
    };
    vec![
        base(
            "echo",
            AgentKind::Echo,
            "Returns its input as its output.",
            json!({}),
        ),
        base(
            "sleep",
            AgentKind::Sleep,
            "Waits `ms` milliseconds, then succeeds. Cancellable.",
            json!({
                "type": "object",
                "properties": { "ms": { "type": "integer", "minimum": 0, "maximum": 3_600_000 } },
                "required": ["ms"]
            }),
        ),
        base(
            "fail",
            AgentKind::Fail,
            "Fails its first `times` attempts with error class `class`, then succeeds.",
            json!({
                "type": "object",
                "properties": {
                    "times": { "type": "integer", "minimum": 0, "default": 1 },
                    "class": { "enum": ["retryable", "permanent", "rate_limited"], "default": "retryable" },
                    "retry_after_ms": { "type": "integer", "minimum": 0 },
                    "message": { "type": "string", "maxLength": 1000 }
                }
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spec(v: Value) -> Result<AgentSpec, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn registration_body_defaults_match_the_contract() {
        let s = spec(json!({"name": "summarize", "kind": "echo"})).unwrap();
        assert_eq!(s.retry, RetryPolicy::default());
        assert_eq!(s.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(s.priority, 0);
        assert!(s.validate().unwrap().is_none());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = spec(json!({"name": "a", "kind": "echo", "retries": 3})).unwrap_err();
        assert!(err.to_string().contains("retries"), "{err}");
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "Upper", "-x", "with space", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "summarize-v2", "team.agent_1", "0x"] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn http_agents_need_a_valid_url() {
        let s =
            spec(json!({"name": "hook", "kind": "http", "config": {"url": "ftp://x"}})).unwrap();
        assert!(s.validate().unwrap_err().message.contains("http or https"));
        let s = spec(json!({"name": "hook", "kind": "http"})).unwrap();
        assert!(s.validate().unwrap_err().message.contains("url"));
        let s = spec(
            json!({"name": "hook", "kind": "http", "config": {"url": "http://127.0.0.1:9/x"}}),
        )
        .unwrap();
        assert!(s.validate().is_ok());
    }

    fn hook(headers: Value) -> AgentSpec {
        spec(json!({"name": "hook", "kind": "http",
            "config": {"url": "http://127.0.0.1:9/x", "headers": headers}}))
        .unwrap()
    }

    #[test]
    fn http_header_values_are_secrets_masked_in_views_and_debug() {
        let s = hook(json!({"Authorization": "Bearer s3cret", "a/b~c": "also-secret"}));
        assert_eq!(
            s.secret_pointers(),
            ["/config/headers/Authorization", "/config/headers/a~1b~0c"]
        );
        let shown = s.redacted();
        assert_eq!(
            shown.config["headers"],
            json!({"Authorization": "***", "a/b~c": "***"})
        );
        assert_eq!(shown.config["url"], "http://127.0.0.1:9/x");
        let debug = format!("{:?}", s);
        assert!(
            !debug.contains("s3cret") && !debug.contains("also-secret"),
            "{debug}"
        );
        assert!(debug.contains("***"), "{debug}");
        assert!(
            spec(json!({"name": "e", "kind": "echo"}))
                .unwrap()
                .secret_pointers()
                .is_empty()
        );
    }

    #[test]
    fn a_masked_secret_keeps_the_stored_value_and_a_new_one_replaces_it() {
        let stored = hook(json!({"Authorization": "Bearer old", "X-Team": "a"}));
        let mut update = hook(json!({"Authorization": "***", "X-Team": "b", "X-New": "n"}));
        update.keep_secrets(Some(&stored)).unwrap();
        assert_eq!(
            update.config["headers"],
            json!({"Authorization": "Bearer old", "X-Team": "b", "X-New": "n"})
        );
        // Left out: gone (the body replaces the definition).
        let mut update = hook(json!({}));
        update.keep_secrets(Some(&stored)).unwrap();
        assert_eq!(update.config["headers"], json!({}));
        // A mask with nothing stored is refused rather than saved as the credential.
        for stored in [None, Some(&stored)] {
            let mut update = hook(json!({"X-Other": "***"}));
            let e = update.keep_secrets(stored).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidAgent);
            assert!(
                e.message.contains("/config/headers/X-Other"),
                "{}",
                e.message
            );
        }
    }

    fn command(config: Value) -> AgentSpec {
        spec(json!({"name": "run", "kind": "command", "config": config})).unwrap()
    }

    fn command_error(config: Value) -> String {
        let e = command(config).validate().unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidAgent);
        e.message
    }

    #[test]
    fn command_agents_are_checked_at_registration() {
        let ok = command(json!({
            "program": "/usr/bin/python3",
            "args": ["script.py", "{{ input.path }}"],
            "cwd": "/srv/jobs",
            "env": {"API_TOKEN": "t0ken", "_X1": ""},
            "pass_env": ["PATH", "HOME"],
            "max_output_bytes": 1024,
            "exit_codes": {"3": "retryable", "75": "permanent", "255": "rate_limited"}
        }));
        ok.validate().unwrap();
        let cfg = ok.command_config().unwrap();
        assert_eq!(cfg.max_output_bytes(), 1024);
        assert_eq!(cfg.exit_class(3), ErrorClass::Retryable);
        assert_eq!(cfg.exit_class(75), ErrorClass::Permanent);
        assert_eq!(cfg.exit_class(1), ErrorClass::Permanent);
        // Defaults: 75 (EX_TEMPFAIL) retryable, the rest permanent, 8 MiB of output.
        let plain = command(json!({"program": "/bin/true"}));
        plain.validate().unwrap();
        let cfg = plain.command_config().unwrap();
        assert_eq!(cfg.exit_class(EXIT_TEMPFAIL), ErrorClass::Retryable);
        assert_eq!(cfg.exit_class(2), ErrorClass::Permanent);
        assert_eq!(cfg.max_output_bytes(), DEFAULT_COMMAND_OUTPUT_BYTES);

        let cases = [
            (json!({}), "program"),
            (json!({"program": ""}), "config.program"),
            (json!({"program": "python3"}), "absolute path"),
            (json!({"program": "/bin/x", "cwd": "rel/dir"}), "config.cwd"),
            (
                json!({"program": "/bin/x", "args": ["{{ input.path "]}),
                "config.args[0]",
            ),
            (
                json!({"program": "/bin/x", "args": ["ok", "{% if %}"]}),
                "config.args[1]",
            ),
            (json!({"program": "/bin/x", "args": [1]}), "invalid config"),
            (json!({"program": "/bin/x", "env": {"1BAD": "v"}}), "1BAD"),
            (json!({"program": "/bin/x", "env": {"A=B": "v"}}), "A=B"),
            (
                json!({"program": "/bin/x", "pass_env": ["PA TH"]}),
                "config.pass_env",
            ),
            (
                json!({"program": "/bin/x", "env": {"SWITCHYARD_TASK_ID": "x"}}),
                "set by Switchyard",
            ),
            (
                json!({"program": "/bin/x", "max_output_bytes": 0}),
                "max_output_bytes",
            ),
            (
                json!({"program": "/bin/x", "max_output_bytes": MAX_COMMAND_OUTPUT_BYTES + 1}),
                "max_output_bytes",
            ),
            (
                json!({"program": "/bin/x", "exit_codes": {"0": "retryable"}}),
                "exit status",
            ),
            (
                json!({"program": "/bin/x", "exit_codes": {"256": "retryable"}}),
                "exit status",
            ),
            (
                json!({"program": "/bin/x", "exit_codes": {"03": "retryable"}}),
                "exit status",
            ),
            (
                json!({"program": "/bin/x", "exit_codes": {"3": "sometimes"}}),
                "invalid config",
            ),
            (json!({"program": "/bin/x", "shell": true}), "shell"),
        ];
        for (config, needle) in cases {
            let message = command_error(config.clone());
            assert!(message.contains(needle), "{config}: {message}");
        }
        let many: Vec<String> = (0..=MAX_COMMAND_ARGS).map(|i| i.to_string()).collect();
        assert!(command_error(json!({"program": "/bin/x", "args": many})).contains("most"));
    }

    #[test]
    fn command_env_values_are_secrets() {
        let s =
            command(json!({"program": "/bin/x", "env": {"TOKEN": "s3cret"}, "pass_env": ["PATH"]}));
        assert_eq!(s.secret_pointers(), ["/config/env/TOKEN"]);
        assert_eq!(s.redacted().config["env"], json!({"TOKEN": "***"}));
        assert_eq!(s.redacted().config["pass_env"], json!(["PATH"]));
        let debug = format!("{:?} {:?}", s, s.command_config().unwrap());
        assert!(!debug.contains("s3cret"), "{debug}");
        let mut update = command(json!({"program": "/bin/y", "env": {"TOKEN": "***"}}));
        update.keep_secrets(Some(&s)).unwrap();
        assert_eq!(update.config["env"]["TOKEN"], "s3cret");
        assert!(
            command(json!({"program": "/bin/x", "env": {"NEW": "***"}}))
                .keep_secrets(Some(&s))
                .is_err()
        );
    }

    #[test]
    fn only_command_and_http_agents_take_config() {
        let s =
            spec(json!({"name": "e", "kind": "echo", "config": {"program": "/bin/x"}})).unwrap();
        assert!(s.validate().unwrap_err().message.contains("take no config"));
        assert_eq!(AgentKind::Command.as_str(), "command");
        assert!(AgentKind::Command.is_builtin());
    }

    #[test]
    fn invalid_schemas_are_rejected_at_registration() {
        let s = spec(json!({"name": "a", "kind": "echo", "input_schema": {"type": "nonsense"}}))
            .unwrap();
        let e = s.validate().unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidAgent);
        assert!(e.message.contains("input_schema"), "{}", e.message);
    }

    #[test]
    fn fallback_cycles_are_rejected() {
        let agents: HashMap<&str, Option<&str>> =
            HashMap::from([("b", Some("c")), ("c", Some("a")), ("d", None)]);
        let lookup = |n: &str| agents.get(n).map(|f| f.map(str::to_owned));
        let e = check_fallback_chain("a", Some("b"), lookup).unwrap_err();
        assert_eq!(e.code, ErrorCode::FallbackCycle);
        assert!(e.message.contains("a -> b -> c -> a"), "{}", e.message);
        assert!(check_fallback_chain("a", Some("d"), lookup).is_ok());
        assert_eq!(
            check_fallback_chain("a", Some("zzz"), lookup)
                .unwrap_err()
                .code,
            ErrorCode::InvalidAgent
        );
        assert!(check_fallback_chain("a", None, lookup).is_ok());
    }

    #[test]
    fn builtin_agents_are_valid() {
        for a in builtin_agents() {
            a.validate().unwrap();
        }
    }
}
