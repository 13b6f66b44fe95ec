//! The audit log: who did what, to what, with which outcome, from where.
//!
//! Every security-relevant action — logins and their failures, logouts, session
//! revocations, changes to users, API keys, agents, alert rules and schedules, cancelling
//! or retrying someone else's task, backups and restores, single sign-on — is recorded
//! as an [`AuditEntry`]. Entries are only ever added: nothing in the API or the [`Store`]
//! changes or deletes one, except the retention prune ([`AuditStore::prune_audit`],
//! `audit.retention_days`). See docs/audit.md.
//!
//! # Recording
//!
//! Callers hold an [`Audit`] (the engine's `audit()`, or one built over a store by the
//! command line) and call [`Audit::record`] after the action. Recording never fails the
//! action: an entry that cannot be written is logged at `error` with the whole entry
//! (which holds no secrets) and counted ([`Audit::failed_writes`], exported as
//! `switchyard_audit_write_failures_total`).
//!
//! The entry is written after the action's own transaction, not inside it. Each store
//! method owns its transaction, so sharing one would mean a second, audited variant of
//! every store method an action uses (and the actions that fail never reach the store).
//! The cost of that choice is a window: if the database fails between the two commits,
//! the action stands without its entry — and the failure is then in the server's log
//! and in the metric, which alerting can watch.
//!
//! [`Store`]: crate::store::Store

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::{Credential, Principal, User};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{AuditId, UserId};
use crate::store::Store;
use crate::{ApiKeyId, Timestamp};

/// Most characters kept of a free-text field of an entry (the actor's name, a target's
/// id, a reason): what a client sends is bounded before it is recorded.
pub const MAX_TEXT_CHARS: usize = 256;

/// Most entries one page of `GET /api/v1/audit` returns.
pub const MAX_PAGE: u32 = 500;

macro_rules! audit_actions {
    ($($(#[$meta:meta])* $variant:ident = $name:literal),* $(,)?) => {
        /// What was done: a stable dotted name (`auth.login`), the resource first, so a
        /// filter on the prefix (`auth.`) finds a whole family.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AuditAction { $($(#[$meta])* $variant),* }

        impl AuditAction {
            /// Every action, in the order of their names' families.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(AuditAction::$variant => $name),* }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some(AuditAction::$variant),)* _ => None }
            }
        }
    };
}

audit_actions! {
    /// A password login: success, or wrong credentials (the email tried as the actor).
    AuthLogin = "auth.login",
    AuthLoginFailed = "auth.login_failed",
    AuthLogout = "auth.logout",
    /// A new access-token signing key (`switchyard auth rotate-key`).
    AuthRotateKey = "auth.rotate_key",
    /// A session ended by its owner from the sessions list, or by the server when a spent
    /// refresh token was presented again.
    SessionRevoke = "session.revoke",
    UserCreate = "user.create",
    /// A role, password or disabled-flag change (the detail says which).
    UserUpdate = "user.update",
    ApiKeyCreate = "api_key.create",
    ApiKeyRevoke = "api_key.revoke",
    AgentCreate = "agent.create",
    AgentUpdate = "agent.update",
    AgentDelete = "agent.delete",
    AlertCreate = "alert.create",
    AlertUpdate = "alert.update",
    AlertDelete = "alert.delete",
    ScheduleCreate = "schedule.create",
    ScheduleUpdate = "schedule.update",
    ScheduleDelete = "schedule.delete",
    /// A schedule fired by hand ("run now").
    ScheduleTrigger = "schedule.trigger",
    /// Cancelling or retrying a task someone else submitted.
    TaskCancel = "task.cancel",
    TaskRetry = "task.retry",
    BackupCreate = "backup.create",
    BackupRestore = "backup.restore",
    SsoLogin = "sso.login",
    SsoLoginFailed = "sso.login_failed",
    SsoConfigure = "sso.configure",
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AuditAction::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown audit action {s:?}")))
    }
}

impl utoipa::PartialSchema for AuditAction {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(AuditAction::ALL.iter().map(|a| a.as_str())))
            .description(Some(
                "A stable dotted name: the resource, then what was done.",
            ))
            .into()
    }
}

impl ToSchema for AuditAction {}

/// How to select actions: one exactly (`auth.login`) or a family by its prefix
/// (`auth.`, ending with the dot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionFilter {
    Exact(AuditAction),
    Prefix(String),
}

impl ActionFilter {
    /// Refuses names and prefixes no action has (`invalid_parameter`).
    pub fn parse(s: &str) -> Result<Self> {
        if s.ends_with('.') && AuditAction::ALL.iter().any(|a| a.as_str().starts_with(s)) {
            return Ok(ActionFilter::Prefix(s.to_owned()));
        }
        AuditAction::parse(s)
            .map(ActionFilter::Exact)
            .ok_or_else(|| {
                Error::invalid_parameter(format!(
                    "action: {s:?} is neither an audit action (auth.login) nor the prefix of one \
                 ending with a dot (auth.)"
                ))
            })
    }
}

/// Whether the action did what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Success,
    /// Tried and failed: wrong credentials, invalid input, a conflict.
    Failure,
    /// Refused for lack of permission.
    Denied,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
            AuditOutcome::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "success" => AuditOutcome::Success,
            "failure" => AuditOutcome::Failure,
            "denied" => AuditOutcome::Denied,
            _ => return None,
        })
    }

    /// The outcome an error stands for: `denied` for a permission refusal, `failure`
    /// otherwise.
    pub fn of_error(e: &Error) -> Self {
        if e.code == ErrorCode::Forbidden {
            AuditOutcome::Denied
        } else {
            AuditOutcome::Failure
        }
    }
}

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Actor {
    /// Who, for people: the user's email (for a failed login, the email tried), or
    /// `system` (the server by itself) or `cli` (an operator's `switchyard` command).
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// Set when the actor used an API key rather than a login session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<ApiKeyId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_name: Option<String>,
}

impl Actor {
    /// The server acting by itself.
    pub fn system() -> Self {
        Actor::named("system")
    }

    /// An operator's administrative command (`switchyard user …`, `backup`, `restore`).
    pub fn cli() -> Self {
        Actor::named("cli")
    }

    /// Someone known only by a name they gave (the email of a failed login), bounded.
    pub fn named(name: &str) -> Self {
        Actor {
            name: bounded(name),
            user_id: None,
            api_key_id: None,
            api_key_name: None,
        }
    }

    /// A user acting through a session.
    pub fn user(user: &User) -> Self {
        Actor {
            name: user.email.clone(),
            user_id: Some(user.id),
            api_key_id: None,
            api_key_name: None,
        }
    }
}

/// What kind of thing an action was done to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    User,
    ApiKey,
    Session,
    Agent,
    AlertRule,
    Schedule,
    Task,
    Backup,
    SigningKey,
    /// The single sign-on provider's configuration (its id: the issuer).
    Sso,
}

impl TargetKind {
    pub const ALL: &'static [TargetKind] = &[
        TargetKind::User,
        TargetKind::ApiKey,
        TargetKind::Session,
        TargetKind::Agent,
        TargetKind::AlertRule,
        TargetKind::Schedule,
        TargetKind::Task,
        TargetKind::Backup,
        TargetKind::SigningKey,
        TargetKind::Sso,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::User => "user",
            TargetKind::ApiKey => "api_key",
            TargetKind::Session => "session",
            TargetKind::Agent => "agent",
            TargetKind::AlertRule => "alert_rule",
            TargetKind::Schedule => "schedule",
            TargetKind::Task => "task",
            TargetKind::Backup => "backup",
            TargetKind::SigningKey => "signing_key",
            TargetKind::Sso => "sso",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        TargetKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// The target of this kind with `id`: `TargetKind::Agent.id(&name)`.
    pub fn id(self, id: impl std::fmt::Display) -> Target {
        Target::new(self, id)
    }
}

/// What an action was done to: a kind and the thing's id (or name, for things named by
/// their users: agents, schedules).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Target {
    pub kind: TargetKind,
    pub id: String,
}

impl Target {
    pub fn new(kind: TargetKind, id: impl std::fmt::Display) -> Self {
        Target {
            kind,
            id: bounded(&id.to_string()),
        }
    }
}

/// How to select targets: a kind (`agent`), or one thing (`agent:translate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetFilter {
    pub kind: TargetKind,
    pub id: Option<String>,
}

impl TargetFilter {
    /// Refuses unknown kinds and empty ids (`invalid_parameter`).
    pub fn parse(s: &str) -> Result<Self> {
        let (kind, id) = match s.split_once(':') {
            Some((kind, id)) => (kind, Some(id)),
            None => (s, None),
        };
        let kinds = || {
            TargetKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let kind = TargetKind::parse(kind).ok_or_else(|| {
            Error::invalid_parameter(format!(
                "target: {kind:?} is not a kind of target; expected KIND or KIND:ID with KIND \
                 one of {}",
                kinds()
            ))
        })?;
        if id.is_some_and(str::is_empty) {
            return Err(Error::invalid_parameter(
                "target: the id after the colon is empty; expected KIND or KIND:ID",
            ));
        }
        Ok(TargetFilter {
            kind,
            id: id.map(str::to_owned),
        })
    }
}

/// Where an action came from: the request it was made in, and the client's address.
/// Empty outside a request (the command line, the server's own duties).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

/// One recorded action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: Timestamp,
    pub actor: Actor,
    pub action: AuditAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    pub outcome: AuditOutcome,
    /// Why it failed or was denied (the error's message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The `x-request-id` of the request that did it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The client's address (see `server.trusted_proxies`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    /// A few facts about the change (a role given, the scopes of a key) — never a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
}

impl AuditEntry {
    /// A successful `action` by `actor` now, without target, origin or detail.
    pub fn new(actor: Actor, action: AuditAction) -> Self {
        AuditEntry {
            id: AuditId::new(),
            at: Timestamp::now(),
            actor,
            action,
            target: None,
            outcome: AuditOutcome::Success,
            reason: None,
            request_id: None,
            client_addr: None,
            detail: None,
        }
    }

    pub fn target(mut self, kind: TargetKind, id: impl std::fmt::Display) -> Self {
        self.target = Some(Target::new(kind, id));
        self
    }

    pub fn origin(mut self, origin: &Origin) -> Self {
        self.request_id.clone_from(&origin.request_id);
        self.client_addr.clone_from(&origin.client_addr);
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Marks it failed or denied, as `error` says, with the error's message as reason.
    pub fn failed(mut self, error: &Error) -> Self {
        self.outcome = AuditOutcome::of_error(error);
        self.reason = Some(bounded(&error.message));
        self
    }

    /// Marks it with `outcome` and `reason`.
    pub fn outcome(mut self, outcome: AuditOutcome, reason: Option<&str>) -> Self {
        self.outcome = outcome;
        self.reason = reason.map(bounded);
        self
    }
}

/// `s`, cut to [`MAX_TEXT_CHARS`].
fn bounded(s: &str) -> String {
    s.chars().take(MAX_TEXT_CHARS).collect()
}

/// Filters for reading the audit log; all optional. Newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// A user or API key id, or an actor's name (an email, `system`, `cli`).
    pub actor: Option<String>,
    pub action: Option<ActionFilter>,
    pub target: Option<TargetFilter>,
    /// Entries at or after this time…
    pub since: Option<Timestamp>,
    /// …and before this one.
    pub until: Option<Timestamp>,
    /// Cursor: only entries after this one in the list's order (older, or as old with a
    /// smaller id).
    pub after: Option<AuditId>,
    pub limit: u32,
}

/// Storage of the audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Adds an entry (durable when it returns).
    async fn insert_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// Entries matching `query`, newest first (ties by id, descending), so a cursor pages
    /// through entries of the same millisecond without skipping or repeating any.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;
    /// Deletes the entries recorded before `before`; returns how many. The only way an
    /// entry ever leaves the log.
    async fn prune_audit(&self, before: Timestamp) -> Result<u64>;
}

/// The audit log's settings (`[audit]`, `SWITCHYARD__AUDIT__*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Days an entry is kept; older ones are deleted by the leader's housekeeping.
    /// 0 keeps every entry forever.
    pub retention_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: 365,
        }
    }
}

impl AuditConfig {
    /// Entries recorded before this are due for deletion at `now`; `None`: kept forever.
    pub fn prune_before(&self, now: Timestamp) -> Option<Timestamp> {
        (self.retention_days > 0)
            .then(|| now.minus_ms(self.retention_days.saturating_mul(86_400_000)))
    }
}

/// Records entries (see the module documentation: after the action, never failing it).
pub struct Audit {
    store: Arc<dyn Store>,
    failed_writes: Arc<AtomicU64>,
}

impl Audit {
    /// Records into `store`, counting the entries it could not write in `failed_writes`
    /// (the server's metric; a fresh counter for one-off commands).
    pub fn new(store: Arc<dyn Store>, failed_writes: Arc<AtomicU64>) -> Self {
        Audit {
            store,
            failed_writes,
        }
    }

    /// Adds `entry` to the log; a failure is logged and counted, never returned.
    pub async fn record(&self, entry: AuditEntry) {
        if let Err(e) = self.store.insert_audit(&entry).await {
            self.failed_writes.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                error = %e,
                id = %entry.id,
                action = %entry.action,
                actor = %entry.actor.name,
                target = ?entry.target,
                outcome = entry.outcome.as_str(),
                request_id = entry.request_id.as_deref().unwrap_or(""),
                "could not write an audit entry; the action was done without it"
            );
        }
    }

    /// Entries that could not be written since the process started.
    pub fn failed_writes(&self) -> u64 {
        self.failed_writes.load(Ordering::Relaxed)
    }

    /// Who `principal` is, for an entry: its user's email, and the API key it used. A
    /// lookup that fails leaves the name as the user's id (the entry is still written).
    pub async fn actor(&self, principal: &Principal) -> Actor {
        let user = self.store.get_user(principal.user_id).await;
        let mut actor = match user {
            Ok(Some(user)) => Actor::user(&user),
            _ => Actor {
                name: principal.user_id.to_string(),
                user_id: Some(principal.user_id),
                api_key_id: None,
                api_key_name: None,
            },
        };
        if let Credential::ApiKey { id, .. } = &principal.credential {
            actor.api_key_id = Some(*id);
            actor.api_key_name = self
                .store
                .list_api_keys(Some(principal.user_id))
                .await
                .ok()
                .and_then(|keys| keys.into_iter().find(|k| k.id == *id))
                .map(|k| k.name);
        }
        actor
    }

    /// Reads the log.
    pub async fn list(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.store.list_audit(query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_unique_dotted_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for a in AuditAction::ALL {
            let name = a.as_str();
            assert!(seen.insert(name), "{name} twice");
            let (family, verb) = name.split_once('.').expect("dotted");
            assert!(!family.is_empty() && !verb.is_empty() && !verb.contains('.'));
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
            );
            assert_eq!(AuditAction::parse(name), Some(*a));
            let json = serde_json::to_value(a).unwrap();
            assert_eq!(json, name);
            assert_eq!(serde_json::from_value::<AuditAction>(json).unwrap(), *a);
        }
    }

    #[test]
    fn action_filters_take_names_and_known_prefixes() {
        assert_eq!(
            ActionFilter::parse("auth.login").unwrap(),
            ActionFilter::Exact(AuditAction::AuthLogin)
        );
        assert_eq!(
            ActionFilter::parse("auth.").unwrap(),
            ActionFilter::Prefix("auth.".into())
        );
        for bad in ["", "auth", "nope.", "auth.login.", "AUTH.LOGIN", "."] {
            let e = ActionFilter::parse(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidParameter, "{bad:?}");
            assert!(e.message.starts_with("action"), "{}", e.message);
        }
    }

    #[test]
    fn target_filters_take_a_kind_and_an_optional_id() {
        assert_eq!(
            TargetFilter::parse("agent").unwrap(),
            TargetFilter {
                kind: TargetKind::Agent,
                id: None
            }
        );
        assert_eq!(
            TargetFilter::parse("agent:a:b").unwrap().id.as_deref(),
            Some("a:b")
        );
        for bad in ["", "robot", "agent:", ":x"] {
            let e = TargetFilter::parse(bad).unwrap_err();
            assert!(e.message.starts_with("target"), "{bad:?}: {}", e.message);
        }
        for k in TargetKind::ALL {
            assert_eq!(TargetKind::parse(k.as_str()), Some(*k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }

    #[test]
    fn outcomes_follow_the_error_and_text_is_bounded() {
        let denied =
            AuditEntry::new(Actor::cli(), AuditAction::UserCreate).failed(&Error::forbidden("no"));
        assert_eq!(denied.outcome, AuditOutcome::Denied);
        assert_eq!(denied.reason.as_deref(), Some("no"));
        let failed = AuditEntry::new(Actor::cli(), AuditAction::UserCreate)
            .failed(&Error::invalid_parameter("x".repeat(10_000)));
        assert_eq!(failed.outcome, AuditOutcome::Failure);
        assert_eq!(failed.reason.unwrap().chars().count(), MAX_TEXT_CHARS);
        assert_eq!(
            Actor::named(&"é".repeat(1_000)).name.chars().count(),
            MAX_TEXT_CHARS
        );
        for o in [
            AuditOutcome::Success,
            AuditOutcome::Failure,
            AuditOutcome::Denied,
        ] {
            assert_eq!(AuditOutcome::parse(o.as_str()), Some(o));
        }
    }

    #[test]
    fn retention_zero_keeps_everything() {
        let now = Timestamp::from_millis(400 * 86_400_000);
        assert_eq!(AuditConfig { retention_days: 0 }.prune_before(now), None);
        assert_eq!(
            AuditConfig::default().prune_before(now),
            Some(Timestamp::from_millis(35 * 86_400_000))
        );
    }
}
