//! `switchyard agent …`: list and show agents, and agents as code: `apply` makes the
//! server's agents what a file (TOML, YAML or JSON) says, `export` writes such a file.
//!
//! A file agent is compared with the server's field by field, both read as an agent
//! definition (so a field left out equals its default). Secret config values (an `http`
//! agent's header values, a `command` agent's `env` values) are write-only: the server
//! shows them as `"***"`, so apply compares only whether each is set. A secret that was
//! added or removed is a change; a new value for one that is set is not seen, and is sent
//! only with `--update-secrets` (or with any other change of the agent). A value of
//! `"***"` in the file keeps the one stored (what `export` writes).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde::Serialize;
use serde_json::{Map, Value, json};
use switchyard_core::agent::{AgentSpec, SECRET_MASK};
use switchyard_sdk::{Agent, Client};

use super::output::{self, OutputFormat, Table};
use super::{ClientFlags, EXIT_FAILED, Exit, profile};

/// The fields of an agent definition (`POST /api/v1/agents`): what apply compares and
/// export writes.
const SPEC_FIELDS: [&str; 16] = [
    "name",
    "kind",
    "description",
    "version",
    "input_schema",
    "output_schema",
    "config",
    "retry",
    "timeout_ms",
    "concurrency",
    "cache_ttl_ms",
    "fallback",
    "priority",
    "concurrency_key",
    "concurrency_per_key",
    "rate_limit",
];

/// Most agents one file may hold.
const MAX_AGENTS: usize = 10_000;

#[derive(Subcommand)]
pub enum AgentCommand {
    /// List the agents.
    List,
    /// Show one agent.
    Get { name: String },
    /// Delete an agent (not a built-in one, nor another agent's fallback); its past
    /// tasks stay.
    Delete { name: String },
    /// Create or update every agent in a file (.toml, .yaml/.yml or .json) and print
    /// the plan: create, update (which fields) or unchanged, per agent.
    Apply {
        /// The file: an `[[agents]]` table per agent, with the fields of POST /api/v1/agents.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        /// Also delete the agents the file does not name (built-in agents stay).
        #[arg(long)]
        prune: bool,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also send the agents whose file gives secret values when nothing else changed
        /// (the server never shows secrets, so a new value cannot be detected).
        #[arg(long)]
        update_secrets: bool,
    },
    /// Write the agents (all but the built-in ones) as a file `agent apply` takes: TOML,
    /// or JSON with --output json.
    Export,
}

pub async fn run(flags: &ClientFlags, command: AgentCommand) -> Result<(), Exit> {
    let format = flags.output;
    // A bad file is a usage error, before any connection.
    let desired = match &command {
        AgentCommand::Apply { file, .. } => read_file(file)?,
        _ => Vec::new(),
    };
    let client = profile::connect(flags).await?;
    match command {
        AgentCommand::List => {
            let agents = client.list_agents().await?;
            match format {
                OutputFormat::Json => output::json(&json!({ "items": agents })),
                OutputFormat::Table => list_table(&agents).print(),
            }
            Ok(())
        }
        AgentCommand::Get { name } => {
            let agent = client.get_agent(&name).await?;
            match format {
                OutputFormat::Json => output::json(&agent),
                OutputFormat::Table => output::text(&describe(&agent)),
            }
            Ok(())
        }
        AgentCommand::Delete { name } => {
            client.delete_agent(&name).await?;
            match format {
                OutputFormat::Json => output::json(&json!({ "deleted": name })),
                OutputFormat::Table => output::line(&format!("Deleted agent {name}")),
            }
            Ok(())
        }
        AgentCommand::Apply {
            prune,
            dry_run,
            update_secrets,
            ..
        } => {
            let current = client.list_agents().await?;
            let changes = plan(&desired, &current, prune, update_secrets)?;
            apply(&client, changes, dry_run, format).await
        }
        AgentCommand::Export => {
            let agents = client.list_agents().await?;
            export(&agents, client.url(), format)
        }
    }
}

fn list_table(agents: &[Agent]) -> Table {
    let mut table = Table::new(&["NAME", "KIND", "VERSION", "BUILTIN", "DESCRIPTION"]);
    for a in agents {
        let description = a
            .description
            .as_deref()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        let short: String = description.chars().take(60).collect();
        table.row(vec![
            a.name.clone(),
            a.kind.clone(),
            a.version.clone(),
            if a.builtin { "yes" } else { "no" }.to_owned(),
            if short.len() < description.len() {
                format!("{short}…")
            } else {
                short
            },
        ]);
    }
    table
}

fn describe(a: &Agent) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let mut fields = vec![
        ("name", a.name.clone()),
        ("kind", a.kind.clone()),
        ("version", a.version.clone()),
        ("description", opt(a.description.clone())),
        ("builtin", a.builtin.to_string()),
        ("timeout_ms", a.timeout_ms.to_string()),
        ("retry", a.retry.to_string()),
        ("concurrency", opt(a.concurrency.map(|c| c.to_string()))),
        ("cache_ttl_ms", opt(a.cache_ttl_ms.map(|c| c.to_string()))),
        ("fallback", opt(a.fallback.clone())),
        ("priority", a.priority.to_string()),
    ];
    if let Some(key) = &a.concurrency_key {
        fields.push(("concurrency_key", key.clone()));
    }
    if let Some(n) = a.concurrency_per_key {
        fields.push(("concurrency_per_key", n.to_string()));
    }
    if let Some(limit) = &a.rate_limit {
        fields.push(("rate_limit", limit.to_string()));
    }
    if !a.secrets.is_empty() {
        fields.push(("secrets", a.secrets.join(", ")));
    }
    fields.push(("created", output::time(&a.created_at)));
    fields.push(("updated", output::time(&a.updated_at)));
    fields.push(("config", output::pretty(&a.config)));
    for (name, schema) in [
        ("input_schema", &a.input_schema),
        ("output_schema", &a.output_schema),
    ] {
        if let Some(schema) = schema {
            fields.push((name, output::pretty(schema)));
        }
    }
    output::fields(&fields)
}

/// The agents of a file, parsed and checked as the server would check each one.
fn read_file(path: &Path) -> Result<Vec<AgentSpec>, Exit> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Exit::usage(format!("cannot read {shown}: {e}")))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let doc: Value = match extension.as_deref() {
        Some("toml") => toml::from_str(&text).map_err(|e| e.to_string()),
        Some("yaml" | "yml") => serde_yaml_ng::from_str(&text).map_err(|e| e.to_string()),
        Some("json") => serde_json::from_str(&text).map_err(|e| e.to_string()),
        _ => {
            return Err(Exit::usage(format!(
                "{shown}: unknown file type; use .toml, .yaml, .yml or .json"
            )));
        }
    }
    .map_err(|e| Exit::usage(format!("{shown} is not valid: {e}")))?;
    parse_agents(doc).map_err(|e| Exit::usage(format!("{shown}: {e}")))
}

fn parse_agents(doc: Value) -> Result<Vec<AgentSpec>, String> {
    let Value::Object(mut doc) = doc else {
        return Err("expected a table with an `agents` list ([[agents]] in TOML)".into());
    };
    let agents = doc
        .remove("agents")
        .ok_or("no `agents` list ([[agents]] tables in TOML); write `agents = []` for none")?;
    if let Some(key) = doc.keys().next() {
        return Err(format!("unknown key {key:?}: the file holds only `agents`"));
    }
    let Value::Array(agents) = agents else {
        return Err("`agents` must be a list of agents".into());
    };
    if agents.len() > MAX_AGENTS {
        return Err(format!(
            "{} agents; a file holds at most {MAX_AGENTS}",
            agents.len()
        ));
    }
    let mut seen = BTreeSet::new();
    let mut specs = Vec::with_capacity(agents.len());
    for (i, agent) in agents.into_iter().enumerate() {
        let label = match agent.get("name").and_then(Value::as_str) {
            Some(name) => format!("agent {name:?} (agents[{i}])"),
            None => format!("agents[{i}]"),
        };
        let spec: AgentSpec = serde_json::from_value(agent).map_err(|e| format!("{label}: {e}"))?;
        spec.validate()
            .map_err(|e| format!("{label}: {}", e.message))?;
        if !seen.insert(spec.name.clone()) {
            return Err(format!("agent {:?} is in the file twice", spec.name));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// The server's agent as a definition: its spec fields only (secrets still masked).
fn server_spec(agent: &Agent) -> Result<AgentSpec, Exit> {
    let value = serde_json::to_value(agent).unwrap_or(Value::Null);
    let fields: Map<String, Value> = value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| SPEC_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::from_value(Value::Object(fields)).map_err(|e| {
        Exit::new(
            EXIT_FAILED,
            format!(
                "the server's agent {:?} is not a definition this client reads: {e}",
                agent.name
            ),
        )
    })
}

/// A definition as compared: every field (defaults included), secrets masked.
fn comparable(spec: &AgentSpec) -> Map<String, Value> {
    match serde_json::to_value(spec.redacted()) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Whether the file gives the value of a secret (rather than `"***"`, keep it).
fn gives_secrets(spec: &AgentSpec) -> bool {
    spec.secret_pointers().iter().any(|pointer| {
        spec.config
            .pointer(pointer.trim_start_matches("/config"))
            .is_some_and(|v| v.as_str() != Some(SECRET_MASK))
    })
}

/// The fields in which `want` differs from `have`.
fn differences(want: &AgentSpec, have: &AgentSpec) -> Vec<String> {
    let (want, have) = (comparable(want), comparable(have));
    SPEC_FIELDS
        .iter()
        .filter(|f| want.get(**f).unwrap_or(&Value::Null) != have.get(**f).unwrap_or(&Value::Null))
        .map(|f| (*f).to_owned())
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Create,
    Update,
    Unchanged,
    Delete,
}

#[derive(Debug, Serialize)]
struct Change {
    agent: String,
    action: Action,
    /// For an update: the fields that change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<String>,
    #[serde(skip)]
    spec: Option<AgentSpec>,
}

impl Change {
    fn line(&self) -> String {
        let action = match self.action {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Delete => "delete",
        };
        if self.fields.is_empty() {
            format!("{action:<9}  {}", self.agent)
        } else {
            format!("{action:<9}  {} ({})", self.agent, self.fields.join(", "))
        }
    }
}

/// What apply does, in the order it does it: creates and updates with each agent after
/// the agent it falls back to, then deletions with each agent before its fallback.
fn plan(
    desired: &[AgentSpec],
    current: &[Agent],
    prune: bool,
    update_secrets: bool,
) -> Result<Vec<Change>, Exit> {
    let on_server: HashMap<&str, &Agent> = current.iter().map(|a| (a.name.as_str(), a)).collect();
    let mut changes = Vec::new();
    for spec in fallbacks_first(desired, |s| (s.name.as_str(), s.fallback.as_deref())) {
        let change = match on_server.get(spec.name.as_str()) {
            None => Change {
                agent: spec.name.clone(),
                action: Action::Create,
                fields: Vec::new(),
                spec: Some(spec.clone()),
            },
            Some(agent) => {
                let mut fields = differences(spec, &server_spec(agent)?);
                if fields.is_empty() && update_secrets && gives_secrets(spec) {
                    fields.push("secrets".to_owned());
                }
                let action = if fields.is_empty() {
                    Action::Unchanged
                } else {
                    Action::Update
                };
                Change {
                    agent: spec.name.clone(),
                    action,
                    fields,
                    spec: Some(spec.clone()),
                }
            }
        };
        changes.push(change);
    }
    if prune {
        let named: BTreeSet<&str> = desired.iter().map(|s| s.name.as_str()).collect();
        let gone: Vec<&Agent> = current
            .iter()
            .filter(|a| !a.builtin && !named.contains(a.name.as_str()))
            .collect();
        let mut order = fallbacks_first(&gone, |a| (a.name.as_str(), a.fallback.as_deref()));
        order.reverse();
        changes.extend(order.into_iter().map(|a| Change {
            agent: a.name.clone(),
            action: Action::Delete,
            fields: Vec::new(),
            spec: None,
        }));
    }
    Ok(changes)
}

/// `items` ordered so that each comes after the one it falls back to (when that one is
/// among them); otherwise in the given order. A cycle is broken where it closes (the
/// server refuses it anyway, naming it).
fn fallbacks_first<'a, T>(
    items: &'a [T],
    link: impl Fn(&'a T) -> (&'a str, Option<&'a str>),
) -> Vec<&'a T> {
    let index: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, t)| (link(t).0, i))
        .collect();
    let mut placed = vec![false; items.len()];
    let mut order = Vec::with_capacity(items.len());
    for start in 0..items.len() {
        // The chain from `start` to the first placed (or outside) agent, placed deepest first.
        let mut chain = Vec::new();
        let mut at = Some(start);
        while let Some(i) = at {
            if placed[i] || chain.contains(&i) {
                break;
            }
            chain.push(i);
            at = link(&items[i]).1.and_then(|f| index.get(f).copied());
        }
        for &i in chain.iter().rev() {
            placed[i] = true;
            order.push(&items[i]);
        }
    }
    order
}

async fn apply(
    client: &Client,
    changes: Vec<Change>,
    dry_run: bool,
    format: OutputFormat,
) -> Result<(), Exit> {
    let mut done = Vec::with_capacity(changes.len());
    let mut failure = None;
    for change in changes {
        if !dry_run {
            let result = match (change.action, &change.spec) {
                (Action::Create, Some(spec)) => client.create_agent(spec).await.map(drop),
                (Action::Update, Some(spec)) => {
                    client.update_agent(&change.agent, spec).await.map(drop)
                }
                (Action::Delete, _) => client.delete_agent(&change.agent).await,
                _ => Ok(()),
            };
            if let Err(e) = result {
                failure = Some(Exit::from(e).with_context(&format!("agent {:?}", change.agent)));
                break;
            }
        }
        if format == OutputFormat::Table {
            output::line(&change.line());
        }
        done.push(change);
    }
    let count = |action| done.iter().filter(|c| c.action == action).count();
    match format {
        OutputFormat::Json => output::json(&json!({ "dry_run": dry_run, "changes": done })),
        OutputFormat::Table => {
            let summary = format!(
                "{} to create, {} to update, {} unchanged, {} to delete",
                count(Action::Create),
                count(Action::Update),
                count(Action::Unchanged),
                count(Action::Delete)
            );
            if dry_run {
                output::note(&format!("dry run: {summary}; nothing was changed"));
            } else if failure.is_none() {
                output::note(
                    &summary
                        .replace("to create", "created")
                        .replace("to update", "updated")
                        .replace("to delete", "deleted"),
                );
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

impl Exit {
    fn with_context(self, what: &str) -> Exit {
        Exit {
            message: self.message.map(|m| format!("{what}: {m}")),
            ..self
        }
    }
}

/// The agents as a file `apply` takes, by name; built-in agents are left out (every
/// server has them), and so are fields at their default.
fn export(agents: &[Agent], url: &str, format: OutputFormat) -> Result<(), Exit> {
    let mut specs: BTreeMap<&str, Value> = BTreeMap::new();
    for agent in agents.iter().filter(|a| !a.builtin) {
        specs.insert(&agent.name, exported(&server_spec(agent)?));
    }
    let doc = json!({ "agents": specs.values().collect::<Vec<_>>() });
    if format == OutputFormat::Json {
        output::json(&doc);
        return Ok(());
    }
    for (name, spec) in &specs {
        if let Some(at) = null_at(spec, "") {
            return Err(Exit::new(
                EXIT_FAILED,
                format!(
                    "agent {name:?} has a null at {at}, which TOML cannot hold: use --output json"
                ),
            ));
        }
    }
    let body = toml::to_string(&doc)
        .map_err(|e| Exit::new(EXIT_FAILED, format!("cannot write the agents as TOML: {e}")))?;
    output::text(&format!(
        "# Agents of {url}, exported by `switchyard agent export`.\n\
         # Apply with `switchyard agent apply -f FILE`. Secret values read \"***\":\n\
         # applied as they are, they keep the values stored on the server.\n\n{body}"
    ));
    Ok(())
}

/// A definition as a file holds it: its fields in the API's order, those at their
/// default left out.
fn exported(spec: &AgentSpec) -> Value {
    let defaults = comparable(&AgentSpec::new(spec.name.clone(), spec.kind));
    let mut fields = comparable(spec);
    fields.retain(|key, value| {
        matches!(key.as_str(), "name" | "kind")
            || (!value.is_null() && defaults.get(key) != Some(value))
    });
    Value::Object(fields)
}

/// The JSON pointer of the first null in `value` (TOML has none).
fn null_at(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::Null => Some(if at.is_empty() {
            "/".into()
        } else {
            at.to_owned()
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| null_at(v, &format!("{at}/{i}"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            null_at(
                v,
                &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
            )
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(spec: Value) -> Agent {
        let mut view = serde_json::to_value(
            serde_json::from_value::<AgentSpec>(spec)
                .unwrap()
                .redacted(),
        )
        .unwrap();
        let secrets = serde_json::from_value::<AgentSpec>(view.clone())
            .unwrap()
            .secret_pointers();
        view["builtin"] = json!(false);
        view["secrets"] = json!(secrets);
        view["created_at"] = json!("2025-01-01T00:00:00Z");
        view["updated_at"] = json!("2025-01-01T00:00:00Z");
        serde_json::from_value(view).unwrap()
    }

    fn specs(toml_text: &str) -> Vec<AgentSpec> {
        parse_agents(toml::from_str(toml_text).unwrap()).unwrap()
    }

    #[test]
    fn the_spec_fields_are_the_definition_s() {
        let full: AgentSpec = serde_json::from_value(json!({
            "name": "a", "kind": "echo", "description": "d", "concurrency_key": "/k",
            "concurrency_per_key": 1, "rate_limit": {"limit": 1, "period_s": 1},
            "concurrency": 2, "cache_ttl_ms": 3, "fallback": "b"
        }))
        .unwrap();
        let keys: Vec<String> = comparable(&full).keys().cloned().collect();
        let mut expected: Vec<&str> = SPEC_FIELDS.to_vec();
        expected.sort_unstable();
        let mut keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, expected);
    }

    #[test]
    fn the_same_definition_is_unchanged_and_defaults_count_as_given() {
        let file = specs(
            "[[agents]]\nname = \"a\"\nkind = \"echo\"\n[[agents]]\nname = \"b\"\nkind = \"sleep\"\ntimeout_ms = 60000\n",
        );
        let server = [
            agent(json!({"name": "a", "kind": "echo", "version": "1"})),
            agent(json!({"name": "b", "kind": "sleep"})),
        ];
        let changes = plan(&file, &server, false, false).unwrap();
        assert!(
            changes.iter().all(|c| c.action == Action::Unchanged),
            "{changes:?}"
        );
    }

    #[test]
    fn changed_fields_are_named() {
        let file = specs(
            "[[agents]]\nname = \"a\"\nkind = \"echo\"\npriority = 5\ndescription = \"new\"\n[agents.retry]\nmax_attempts = 2\n",
        );
        let server = [agent(
            json!({"name": "a", "kind": "echo", "description": "old"}),
        )];
        let changes = plan(&file, &server, false, false).unwrap();
        assert_eq!(changes[0].action, Action::Update);
        assert_eq!(changes[0].fields, ["description", "retry", "priority"]);
    }

    #[test]
    fn secrets_are_compared_by_presence() {
        let http = |headers: Value| json!({"name": "h", "kind": "http", "config": {"url": "http://x.test/", "headers": headers}});
        let server = [agent(http(json!({"Authorization": "old"})))];
        let same =
            [serde_json::from_value::<AgentSpec>(http(json!({"Authorization": "new"}))).unwrap()];
        assert_eq!(
            plan(&same, &server, false, false).unwrap()[0].action,
            Action::Unchanged
        );
        let forced = plan(&same, &server, false, true).unwrap();
        assert_eq!(
            (forced[0].action, forced[0].fields.clone()),
            (Action::Update, vec!["secrets".to_owned()])
        );
        let masked =
            [serde_json::from_value::<AgentSpec>(http(json!({"Authorization": "***"}))).unwrap()];
        assert_eq!(
            plan(&masked, &server, false, true).unwrap()[0].action,
            Action::Unchanged
        );
        let added = [serde_json::from_value::<AgentSpec>(http(
            json!({"Authorization": "x", "X-Extra": "y"}),
        ))
        .unwrap()];
        assert_eq!(
            plan(&added, &server, false, false).unwrap()[0].fields,
            ["config"]
        );
    }

    #[test]
    fn creates_follow_fallbacks_and_deletes_precede_them() {
        let file = specs(
            "[[agents]]\nname = \"a\"\nkind = \"echo\"\nfallback = \"b\"\n[[agents]]\nname = \"b\"\nkind = \"echo\"\nfallback = \"c\"\n[[agents]]\nname = \"c\"\nkind = \"echo\"\n",
        );
        let order: Vec<String> = plan(&file, &[], false, false)
            .unwrap()
            .into_iter()
            .map(|c| c.agent)
            .collect();
        assert_eq!(order, ["c", "b", "a"]);
        let server = [
            agent(json!({"name": "y", "kind": "echo"})),
            agent(json!({"name": "x", "kind": "echo", "fallback": "y"})),
        ];
        let changes = plan(&[], &server, true, false).unwrap();
        let order: Vec<(&str, Action)> = changes
            .iter()
            .map(|c| (c.agent.as_str(), c.action))
            .collect();
        assert_eq!(order, [("x", Action::Delete), ("y", Action::Delete)]);
        assert!(plan(&[], &server, false, false).unwrap().is_empty());
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let bad = |doc: Value| parse_agents(doc).unwrap_err();
        assert!(bad(json!({"agent": []})).contains("no `agents` list"));
        assert!(bad(json!({"agents": [], "extra": 1})).contains("unknown key \"extra\""));
        assert!(
            bad(json!({"agents": [{"name": "a", "kind": "echo", "colour": 1}]}))
                .contains("agent \"a\" (agents[0]): unknown field `colour`")
        );
        assert!(
            bad(json!({"agents": [{"name": "A!", "kind": "echo"}]})).contains("invalid agent name")
        );
        assert!(
            bad(json!({"agents": [{"name": "a", "kind": "echo"}, {"name": "a", "kind": "echo"}]}))
                .contains("twice")
        );
        assert_eq!(parse_agents(json!({"agents": []})).unwrap().len(), 0);
    }

    #[test]
    fn an_export_is_applied_unchanged() {
        let server = [agent(json!({
            "name": "h", "kind": "http", "description": "hook",
            "config": {"url": "http://x.test/", "headers": {"Authorization": "secret"}},
            "input_schema": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1.5}}},
            "retry": {"max_attempts": 2, "base_ms": 10, "cap_ms": 100}
        }))];
        let doc = json!({ "agents": [exported(&server_spec(&server[0]).unwrap())] });
        let text = toml::to_string(&doc).unwrap();
        assert!(
            text.starts_with("[[agents]]\nname = \"h\"\nkind = \"http\"\n"),
            "{text}"
        );
        assert!(
            !text.contains("secret\"") && !text.contains("priority"),
            "{text}"
        );
        let again = specs(&text);
        let changes = plan(&again, &server, false, false).unwrap();
        assert_eq!(changes[0].action, Action::Unchanged, "{text}");
        assert_eq!(
            null_at(&json!({"a": [1, null]}), ""),
            Some("/a/1".to_owned())
        );
        assert_eq!(null_at(&json!({"a": [1, {"b/c": 2}]}), ""), None);
    }
}
