//! The `llm` kind's settings: a chat-completions call to an OpenAI-compatible provider
//! (docs/agents.md). The API key is not among them: `api_key_env` names the variable of
//! the server's environment it is read from when a task runs, so it is never stored,
//! returned by the API or logged.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::agent::validate_name;
use crate::error::{Error, ErrorCode};

/// Model turns a run may take when `max_turns` is left out (a turn that asks for tools
/// is followed by another).
pub const DEFAULT_MAX_TURNS: u32 = 8;
pub const MAX_TURNS: u32 = 50;
/// The highest `max_tokens` accepted (no provider's model answers with more).
pub const MAX_COMPLETION_TOKENS: u32 = 1_000_000;
/// Most agents one `llm` agent may offer as tools (OpenAI's limit).
pub const MAX_TOOLS: usize = 128;
/// Longest `model` and `system`, in bytes.
pub const MAX_MODEL_BYTES: usize = 256;
pub const MAX_SYSTEM_BYTES: usize = crate::template::MAX_TEMPLATE_BYTES;
/// Names of variables `api_key_env` may not name: the server's own settings
/// (`SWITCHYARD__DATABASE__URL`, the signing secret, …), which an agent definition must
/// not be able to send to a URL of its choosing.
pub const RESERVED_ENV_PREFIX: &str = "SWITCHYARD";
/// Where an `llm` agent's `$id`-less output schema is placed when it is checked against
/// `content` (see [`content_output_schema`]).
const CONTENT_SCHEMA_ID: &str = "urn:switchyard:llm-content";

/// Configuration of an `llm` agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmAgentConfig {
    /// The provider's API root, e.g. `https://api.openai.com/v1`; requests go to
    /// `<base_url>/chat/completions`.
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key (`OPENAI_API_KEY`), sent as
    /// `Authorization: Bearer <key>`.
    pub api_key_env: String,
    /// A system message put before the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// A template (see [`crate::template`]) rendered with `input` into the user message,
    /// used when the input has no `messages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// A JSON Schema the answer must follow: sent as the structured-output format, and
    /// the answer (`content`) is parsed as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// Agents the model may call, by name; each call runs as a child task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Most model turns of one task. Default [`DEFAULT_MAX_TURNS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// Prices per 1,000 tokens, for the `cost` in the output's `usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_per_1k_tokens: Option<TokenPrices>,
}

/// What 1,000 tokens cost, in whatever currency the operator counts in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPrices {
    #[serde(default)]
    pub prompt: f64,
    #[serde(default)]
    pub completion: f64,
}

/// Tokens a run used, as the provider counted them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl TokenUsage {
    pub fn add(&mut self, other: TokenUsage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
    }
}

impl TokenPrices {
    /// `tokens / 1000 * price`, prompt plus completion.
    pub fn cost(&self, usage: TokenUsage) -> f64 {
        usage.prompt_tokens as f64 / 1000.0 * self.prompt
            + usage.completion_tokens as f64 / 1000.0 * self.completion
    }
}

impl LlmAgentConfig {
    pub fn max_turns(&self) -> u32 {
        self.max_turns.unwrap_or(DEFAULT_MAX_TURNS)
    }

    /// Where the chat completions are requested.
    pub fn chat_url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }

    /// The output's `usage`: the tokens, and their `cost` when prices are set.
    pub fn usage_json(&self, usage: TokenUsage) -> Value {
        let mut out = json!({
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        });
        if let Some(prices) = &self.price_per_1k_tokens {
            out["cost"] = json!(prices.cost(usage));
        }
        out
    }

    /// Checks what registration can: the URL, the names, the numbers in range, the
    /// template parses, the response format is a JSON Schema.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::new(ErrorCode::InvalidAgent, m));
        match url::Url::parse(&self.base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => {
                return bad(format!(
                    "config.base_url must be an http or https URL with a host (e.g. https://api.openai.com/v1), got {:?}",
                    self.base_url
                ));
            }
        }
        if self.model.trim().is_empty() || self.model.len() > MAX_MODEL_BYTES {
            return bad(format!(
                "config.model must name the model (1-{MAX_MODEL_BYTES} bytes)"
            ));
        }
        if !is_key_env_name(&self.api_key_env) {
            return bad(format!(
                "config.api_key_env must be an environment variable name of A-Z, 0-9 and '_', not starting with a digit, got {:?}",
                self.api_key_env
            ));
        }
        if self.api_key_env.starts_with(RESERVED_ENV_PREFIX) {
            return bad(format!(
                "config.api_key_env may not name {}: variables starting with {RESERVED_ENV_PREFIX} hold the server's own settings",
                self.api_key_env
            ));
        }
        if self
            .system
            .as_ref()
            .is_some_and(|s| s.len() > MAX_SYSTEM_BYTES)
        {
            return bad(format!(
                "config.system must be at most {MAX_SYSTEM_BYTES} bytes"
            ));
        }
        if let Some(prompt) = &self.prompt {
            crate::template::check("config.prompt", prompt)
                .map_err(|e| Error::new(ErrorCode::InvalidAgent, e.to_string()))?;
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return bad(format!(
                "config.temperature must be between 0 and 2, got {t}"
            ));
        }
        if let Some(max) = self.max_tokens
            && !(1..=MAX_COMPLETION_TOKENS).contains(&max)
        {
            return bad(format!(
                "config.max_tokens must be between 1 and {MAX_COMPLETION_TOKENS}, got {max}"
            ));
        }
        if let Some(schema) = &self.response_format {
            if !schema.is_object() {
                return bad(
                    "config.response_format must be a JSON Schema object (the answer's format)"
                        .into(),
                );
            }
            crate::schema::CompiledSchema::compile(schema, "config.response_format")?;
        }
        if self.tools.len() > MAX_TOOLS {
            return bad(format!(
                "config.tools names {} agents; the most is {MAX_TOOLS}",
                self.tools.len()
            ));
        }
        for (i, tool) in self.tools.iter().enumerate() {
            validate_name(tool).map_err(|e| {
                Error::new(
                    ErrorCode::InvalidAgent,
                    format!("config.tools[{i}]: {}", e.message),
                )
            })?;
            // Providers take function names of [a-zA-Z0-9_-] only.
            if tool.contains('.') {
                return bad(format!(
                    "config.tools[{i}]: {tool:?} cannot be offered to a model: function names may not contain '.'"
                ));
            }
            if self.tools[..i].contains(tool) {
                return bad(format!("config.tools[{i}]: {tool:?} is listed twice"));
            }
        }
        if let Some(turns) = self.max_turns
            && !(1..=MAX_TURNS).contains(&turns)
        {
            return bad(format!(
                "config.max_turns must be between 1 and {MAX_TURNS}, got {turns}"
            ));
        }
        if let Some(prices) = &self.price_per_1k_tokens {
            for (name, price) in [("prompt", prices.prompt), ("completion", prices.completion)] {
                if !price.is_finite() || price < 0.0 {
                    return bad(format!(
                        "config.price_per_1k_tokens.{name} must be a number of at least 0, got {price}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `[A-Z_][A-Z0-9_]*`, at most 256 bytes.
fn is_key_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 256
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The schema an `llm` agent's whole output is checked against: its `output_schema`
/// describes the answer, `content` (for an agent with `response_format`, the parsed
/// JSON), so the output must be an object whose `content` satisfies it. The agent's
/// schema is embedded as a resource of its own (`$id`), so its local `$ref`s
/// (`#/$defs/…`) keep resolving against it.
pub fn content_output_schema(schema: &Value) -> Value {
    let mut content = schema.clone();
    if let Value::Object(map) = &mut content
        && !map.contains_key("$id")
    {
        map.insert("$id".into(), Value::String(CONTENT_SCHEMA_ID.into()));
    }
    json!({
        "type": "object",
        "required": ["content"],
        "properties": { "content": content },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::CompiledSchema;

    fn config(v: Value) -> LlmAgentConfig {
        let mut base = json!({
            "base_url": "https://api.example.com/v1",
            "model": "gpt-test",
            "api_key_env": "OPENAI_API_KEY",
        });
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_full_config_is_accepted_and_defaults_apply() {
        let c = config(json!({
            "system": "Be brief.",
            "prompt": "Summarize: {{ input.text }}",
            "temperature": 0.2,
            "max_tokens": 256,
            "response_format": {"type": "object", "properties": {"a": {"type": "integer"}}},
            "tools": ["echo", "search-web"],
            "max_turns": 4,
            "price_per_1k_tokens": {"prompt": 0.5, "completion": 1.5}
        }));
        c.validate().unwrap();
        assert_eq!(c.max_turns(), 4);
        assert_eq!(config(json!({})).max_turns(), DEFAULT_MAX_TURNS);
        assert_eq!(
            config(json!({"base_url": "http://h:1/v1/"})).chat_url(),
            "http://h:1/v1/chat/completions"
        );
    }

    #[test]
    fn bad_settings_name_their_field() {
        let cases = [
            (json!({"base_url": "ftp://x/v1"}), "config.base_url"),
            (json!({"base_url": "not a url"}), "config.base_url"),
            (json!({"model": " "}), "config.model"),
            (json!({"api_key_env": "openai_key"}), "config.api_key_env"),
            (json!({"api_key_env": "1KEY"}), "config.api_key_env"),
            (json!({"api_key_env": ""}), "config.api_key_env"),
            (
                json!({"api_key_env": "SWITCHYARD__AUTH__JWT_SECRET"}),
                "SWITCHYARD",
            ),
            (json!({"temperature": 2.5}), "config.temperature"),
            (json!({"temperature": -0.1}), "config.temperature"),
            (json!({"max_tokens": 0}), "config.max_tokens"),
            (json!({"prompt": "{{ input.x "}), "config.prompt"),
            (json!({"response_format": "json"}), "config.response_format"),
            (
                json!({"response_format": {"type": "nonsense"}}),
                "config.response_format",
            ),
            (json!({"tools": ["Bad Name"]}), "config.tools[0]"),
            (json!({"tools": ["ok", "a.b"]}), "config.tools[1]"),
            (json!({"tools": ["ok", "ok"]}), "twice"),
            (json!({"max_turns": 0}), "config.max_turns"),
            (json!({"max_turns": 51}), "config.max_turns"),
            (
                json!({"price_per_1k_tokens": {"prompt": -1.0}}),
                "price_per_1k_tokens.prompt",
            ),
        ];
        for (v, needle) in cases {
            let e = config(v.clone()).validate().unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidAgent);
            assert!(e.message.contains(needle), "{v}: {}", e.message);
        }
    }

    #[test]
    fn cost_is_tokens_per_thousand_times_price() {
        let c = config(json!({"price_per_1k_tokens": {"prompt": 0.5, "completion": 2.0}}));
        let usage = TokenUsage {
            prompt_tokens: 2000,
            completion_tokens: 500,
        };
        assert_eq!(
            c.usage_json(usage),
            json!({"prompt_tokens": 2000, "completion_tokens": 500, "cost": 2.0})
        );
        assert_eq!(
            config(json!({})).usage_json(usage),
            json!({"prompt_tokens": 2000, "completion_tokens": 500})
        );
    }

    #[test]
    fn the_output_schema_applies_to_content_with_local_refs() {
        let schema = json!({
            "type": "object",
            "properties": {"answer": {"$ref": "#/$defs/answer"}},
            "required": ["answer"],
            "$defs": {"answer": {"type": "integer"}}
        });
        let wrapped =
            CompiledSchema::compile(&content_output_schema(&schema), "output_schema").unwrap();
        assert!(
            wrapped
                .check(&json!({"content": {"answer": 42}, "usage": {}}))
                .is_ok()
        );
        let v = wrapped
            .check(&json!({"content": {"answer": "many"}}))
            .unwrap_err();
        assert_eq!(v[0].path, "/content/answer", "{v:?}");
        assert!(wrapped.check(&json!({"finish_reason": "stop"})).is_err());
        // Boolean schemas and schemas with an `$id` of their own are embedded as they are.
        for schema in [
            json!(true),
            json!({"$id": "https://example.com/s", "type": "string"}),
        ] {
            let wrapped = content_output_schema(&schema);
            assert_eq!(wrapped["properties"]["content"], schema);
            CompiledSchema::compile(&wrapped, "output_schema").unwrap();
        }
    }
}
