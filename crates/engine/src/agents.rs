//! The agent registry: definitions with their compiled schemas, cached in memory on
//! every server and invalidated across the cluster through the event bus.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;
use switchyard_core::agent::{Agent, AgentKind, AgentSpec, builtin_agents, check_fallback_chain};
use switchyard_core::auth::{Permission, Principal};
use switchyard_core::cache::EventBus;
use switchyard_core::error::ErrorCode;
use switchyard_core::event::BusMessage;
use switchyard_core::retry::RetryPolicy;
use switchyard_core::schema::CompiledSchema;
use switchyard_core::store::Store;
use switchyard_core::{Error, Result, Timestamp};

/// An agent as a remote worker declares it in its `hello`. The version and schemas are the
/// worker's; a policy it leaves out (`None`) keeps the agent's own, or the default for a new one.
#[derive(Clone, Debug, PartialEq)]
pub struct DeclaredAgent {
    pub name: String,
    pub version: String,
    /// Left out, the agent keeps its description.
    pub description: Option<String>,
    pub input_schema: Option<Value>,
    pub output_schema: Option<Value>,
    pub timeout_ms: Option<u64>,
    pub retry: Option<RetryPolicy>,
}

impl DeclaredAgent {
    /// `base` with what this declaration sets.
    fn onto(self, base: AgentSpec) -> AgentSpec {
        AgentSpec {
            version: self.version,
            input_schema: self.input_schema,
            output_schema: self.output_schema,
            description: self.description.or(base.description.clone()),
            timeout_ms: self.timeout_ms.unwrap_or(base.timeout_ms),
            retry: self.retry.unwrap_or(base.retry),
            ..base
        }
    }
}

/// An agent ready for use: its definition and compiled schemas.
#[derive(Debug)]
pub struct AgentEntry {
    pub agent: Agent,
    pub input_schema: Option<CompiledSchema>,
    pub output_schema: Option<CompiledSchema>,
}

impl AgentEntry {
    fn compile(agent: Agent) -> Result<Self> {
        let input_schema = agent
            .spec
            .input_schema
            .as_ref()
            .map(|s| CompiledSchema::compile(s, "input_schema"))
            .transpose()?;
        // For `llm` agents it describes the answer, `content` (see `output_check_schema`).
        let output_schema = agent
            .spec
            .output_check_schema()
            .map(|s| CompiledSchema::compile(&s, "output_schema"))
            .transpose()?;
        Ok(AgentEntry {
            agent,
            input_schema,
            output_schema,
        })
    }

    pub fn spec(&self) -> &AgentSpec {
        &self.agent.spec
    }
}

pub struct AgentRegistry {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    entries: RwLock<HashMap<String, Arc<AgentEntry>>>,
    /// `agents.allow_command`: whether `command` agents may be registered here.
    allow_command: bool,
}

impl AgentRegistry {
    /// A registry that refuses `command` agents until [`allow_command`](Self::allow_command).
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn EventBus>) -> Self {
        AgentRegistry {
            store,
            bus,
            entries: RwLock::new(HashMap::new()),
            allow_command: false,
        }
    }

    /// Whether admins may create `command` agents and change agents into them.
    pub fn allow_command(mut self, allowed: bool) -> Self {
        self.allow_command = allowed;
        self
    }

    /// A `command` agent runs programs on the server's machine: creating one, changing
    /// one (into or out of that kind) and deleting one take an admin, and new definitions
    /// of the kind need `agents.allow_command`. `before` is the stored definition, if any.
    fn check_command(
        &self,
        principal: &Principal,
        before: Option<&AgentSpec>,
        after: Option<&AgentSpec>,
    ) -> Result<()> {
        let is_command = |s: Option<&AgentSpec>| s.is_some_and(|s| s.kind == AgentKind::Command);
        if !is_command(before) && !is_command(after) {
            return Ok(());
        }
        if !principal.allows(Permission::ManageCommandAgents) {
            return Err(Error::forbidden(
                "only admins may create, change or delete command agents: they run programs on the server's machine",
            ));
        }
        if is_command(after) && !self.allow_command {
            return Err(Error::forbidden(
                "command agents are turned off on this server; set agents.allow_command = true to allow them",
            )
            .with_details(serde_json::json!({ "setting": "agents.allow_command" })));
        }
        Ok(())
    }

    /// Creates the built-in agents that are missing, then loads every agent.
    pub async fn init(&self) -> Result<()> {
        let now = Timestamp::now();
        for spec in builtin_agents() {
            if self.store.get_agent(&spec.name).await?.is_none() {
                self.store
                    .put_agent(&Agent {
                        spec,
                        builtin: true,
                        created_at: now,
                        updated_at: now,
                    })
                    .await?;
            }
        }
        let mut map = HashMap::new();
        for agent in self.store.list_agents().await? {
            let name = agent.spec.name.clone();
            match AgentEntry::compile(agent) {
                Ok(entry) => {
                    map.insert(name, Arc::new(entry));
                }
                Err(e) => {
                    tracing::error!(agent = %name, error = %e, "stored agent does not compile; skipping")
                }
            }
        }
        *self.entries.write() = map;
        Ok(())
    }

    /// The agent, from memory or (if another server just created it) the database.
    pub async fn get(&self, name: &str) -> Result<Option<Arc<AgentEntry>>> {
        if let Some(entry) = self.entries.read().get(name) {
            return Ok(Some(entry.clone()));
        }
        let Some(agent) = self.store.get_agent(name).await? else {
            return Ok(None);
        };
        let entry = Arc::new(AgentEntry::compile(agent)?);
        self.entries.write().insert(name.to_owned(), entry.clone());
        Ok(Some(entry))
    }

    /// The cached agent, without touching the database.
    pub fn cached(&self, name: &str) -> Option<Arc<AgentEntry>> {
        self.entries.read().get(name).cloned()
    }

    pub fn all_cached(&self) -> Vec<Arc<AgentEntry>> {
        self.entries.read().values().cloned().collect()
    }

    /// Drops the cached copy; called when any server changed the agent.
    pub fn invalidate(&self, name: &str) {
        self.entries.write().remove(name);
    }

    /// Reloads one agent after an invalidation, so `cached` sees it again.
    pub async fn refresh(&self, name: &str) -> Result<()> {
        self.invalidate(name);
        self.get(name).await.map(|_| ())
    }

    pub async fn list(&self, principal: &Principal) -> Result<Vec<Agent>> {
        principal.require(Permission::ReadAgents)?;
        self.store.list_agents().await
    }

    pub async fn describe(&self, principal: &Principal, name: &str) -> Result<Agent> {
        principal.require(Permission::ReadAgents)?;
        self.get(name)
            .await?
            .map(|e| e.agent.clone())
            .ok_or_else(|| Error::agent_not_found(name))
    }

    pub async fn create(&self, principal: &Principal, spec: AgentSpec) -> Result<Agent> {
        principal.require(Permission::ManageAgents)?;
        self.check_command(principal, None, Some(&spec))?;
        self.install(spec).await
    }

    /// Registers a new agent without a permission check (bootstrap, demo agents).
    pub async fn install(&self, mut spec: AgentSpec) -> Result<Agent> {
        spec.keep_secrets(None)?;
        spec.validate()?;
        if self.store.get_agent(&spec.name).await?.is_some() {
            return Err(Error::new(
                ErrorCode::AgentExists,
                format!("agent {:?} already exists", spec.name),
            ));
        }
        self.check_fallback(&spec).await?;
        let now = Timestamp::now();
        let agent = Agent {
            spec,
            builtin: false,
            created_at: now,
            updated_at: now,
        };
        self.save(agent).await
    }

    pub async fn update(
        &self,
        principal: &Principal,
        name: &str,
        mut spec: AgentSpec,
    ) -> Result<Agent> {
        principal.require(Permission::ManageAgents)?;
        if spec.name != name {
            return Err(Error::new(
                ErrorCode::InvalidAgent,
                format!(
                    "the body names agent {:?} but the path names {name:?}; agents cannot be renamed",
                    spec.name
                ),
            ));
        }
        spec.validate()?;
        let existing = self
            .store
            .get_agent(name)
            .await?
            .ok_or_else(|| Error::agent_not_found(name))?;
        self.check_command(principal, Some(&existing.spec), Some(&spec))?;
        spec.keep_secrets(Some(&existing.spec))?;
        if existing.builtin && existing.spec.kind != spec.kind {
            return Err(Error::new(
                ErrorCode::AgentBuiltin,
                format!("{name:?} is a built-in agent; its kind cannot change"),
            ));
        }
        self.check_fallback(&spec).await?;
        let agent = Agent {
            spec,
            builtin: existing.builtin,
            created_at: existing.created_at,
            updated_at: Timestamp::now(),
        };
        self.save(agent).await
    }

    pub async fn delete(&self, principal: &Principal, name: &str) -> Result<()> {
        principal.require(Permission::ManageAgents)?;
        let existing = self
            .store
            .get_agent(name)
            .await?
            .ok_or_else(|| Error::agent_not_found(name))?;
        self.check_command(principal, Some(&existing.spec), None)?;
        if existing.builtin {
            return Err(Error::new(
                ErrorCode::AgentBuiltin,
                format!("{name:?} is a built-in agent and cannot be deleted"),
            ));
        }
        let dependents: Vec<String> = self
            .store
            .list_agents()
            .await?
            .into_iter()
            .filter(|a| a.spec.fallback.as_deref() == Some(name))
            .map(|a| a.spec.name)
            .collect();
        if !dependents.is_empty() {
            return Err(Error::new(
                ErrorCode::AgentInUse,
                format!(
                    "agent {name:?} is the fallback of {}; change those first",
                    dependents.join(", ")
                ),
            ));
        }
        self.store.delete_agent(name).await?;
        self.changed(name).await;
        Ok(())
    }

    /// A remote worker declares an agent it serves: registers it as `remote`, or updates an
    /// existing remote agent with what the worker declared (its fallback, concurrency and
    /// cache settings stay as configured).
    pub async fn declare_remote(
        &self,
        principal: &Principal,
        declared: DeclaredAgent,
    ) -> Result<Agent> {
        principal.require(Permission::Work)?;
        match self.store.get_agent(&declared.name).await? {
            // Two workers declaring a new agent at once: the loser updates the winner's row.
            None => match self
                .install(
                    declared
                        .clone()
                        .onto(AgentSpec::new(&declared.name, AgentKind::Remote)),
                )
                .await
            {
                Err(e) if e.code == ErrorCode::AgentExists => {
                    Box::pin(self.declare_remote(principal, declared)).await
                }
                other => other,
            },
            Some(existing) if existing.spec.kind != AgentKind::Remote => Err(Error::new(
                ErrorCode::InvalidAgent,
                format!(
                    "agent {:?} is a built-in {} agent; a remote worker cannot serve it",
                    declared.name,
                    existing.spec.kind.as_str()
                ),
            )),
            Some(existing) => {
                let spec = declared.onto(existing.spec.clone());
                if spec == existing.spec {
                    return Ok(existing);
                }
                spec.validate()?;
                let agent = Agent {
                    spec,
                    builtin: false,
                    created_at: existing.created_at,
                    updated_at: Timestamp::now(),
                };
                self.save(agent).await
            }
        }
    }

    async fn check_fallback(&self, spec: &AgentSpec) -> Result<()> {
        if spec.fallback.is_none() {
            return Ok(());
        }
        let agents: HashMap<String, Option<String>> = self
            .store
            .list_agents()
            .await?
            .into_iter()
            .map(|a| (a.spec.name, a.spec.fallback))
            .collect();
        check_fallback_chain(&spec.name, spec.fallback.as_deref(), |n| {
            agents.get(n).cloned()
        })
    }

    async fn save(&self, agent: Agent) -> Result<Agent> {
        let name = agent.spec.name.clone();
        self.store.put_agent(&agent).await?;
        self.changed(&name).await;
        Ok(agent)
    }

    async fn changed(&self, name: &str) {
        self.invalidate(name);
        if let Err(e) = self
            .bus
            .publish(Arc::new(BusMessage::AgentChanged {
                name: name.to_owned(),
            }))
            .await
        {
            tracing::warn!(agent = name, error = %e, "could not announce agent change; other servers refresh on their next miss");
        }
        if let Err(e) = self.get(name).await {
            tracing::warn!(agent = name, error = %e, "could not reload agent");
        }
    }
}
