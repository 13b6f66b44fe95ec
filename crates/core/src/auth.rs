//! Identity and permissions: users, roles, API keys, sessions, and who may do what.
//!
//! Authorization is decided here, in one place: the API's extractor turns a token into
//! a [`Principal`], and every service call asks the principal for a [`Permission`] and,
//! for tasks, whether the task is visible to it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{ApiKeyId, SessionId, UserId};
use crate::time::Timestamp;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads its own tasks, agents and system status.
    Viewer,
    /// A viewer that also submits, cancels and retries its own tasks.
    Operator,
    /// Everything: all tasks, agents, users, keys.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role {s:?}; expected admin, operator or viewer"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API key may be used for.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Submit, cancel and retry tasks (and read the tasks it submitted).
    Submit,
    /// Read tasks, agents and system status.
    Read,
    /// Connect as a worker: receive and report work, nothing else.
    Worker,
    /// Everything the key's owner may do.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Submit => "submit",
            Scope::Read => "read",
            Scope::Worker => "worker",
            Scope::Admin => "admin",
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "submit" => Ok(Scope::Submit),
            "read" => Ok(Scope::Read),
            "worker" => Ok(Scope::Worker),
            "admin" => Ok(Scope::Admin),
            _ => Err(format!(
                "unknown scope {s:?}; expected submit, read, worker or admin"
            )),
        }
    }
}

/// A single capability checked at the edge of every route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    ReadTasks,
    SubmitTasks,
    /// Cancel and retry tasks.
    ManageTasks,
    ReadAgents,
    ManageAgents,
    /// Create, change or delete `command` agents, which run programs on the server's
    /// machine (admins).
    ManageCommandAgents,
    /// Workers, queue depth, metrics, alerts, reports.
    ReadSystem,
    /// Alert rules and backups (admins).
    ManageSystem,
    ManageUsers,
    /// Create, list and revoke one's own API keys.
    ManageOwnKeys,
    /// Take part in the worker protocol.
    Work,
    /// Read the audit log (admins, with a session or an `admin` key).
    ReadAudit,
}

impl Permission {
    /// What the permission lets a credential do, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::ReadTasks => "read tasks",
            Permission::SubmitTasks => "submit tasks",
            Permission::ManageTasks => "cancel or retry tasks",
            Permission::ReadAgents => "read agents",
            Permission::ManageAgents => "manage agents",
            Permission::ManageCommandAgents => "create, change or delete command agents",
            Permission::ReadSystem => "read system status",
            Permission::ManageSystem => "manage alert rules and backups",
            Permission::ManageUsers => "manage users",
            Permission::ManageOwnKeys => "manage API keys",
            Permission::Work => "act as a worker",
            Permission::ReadAudit => "read the audit log",
        }
    }

    fn granted_by_role(self, role: Role) -> bool {
        use Permission::*;
        match role {
            Role::Admin => true,
            Role::Operator => matches!(
                self,
                ReadTasks | SubmitTasks | ManageTasks | ReadAgents | ReadSystem | ManageOwnKeys
            ),
            Role::Viewer => matches!(self, ReadTasks | ReadAgents | ReadSystem | ManageOwnKeys),
        }
    }

    fn granted_by_scope(self, scope: Scope) -> bool {
        use Permission::*;
        match scope {
            Scope::Admin => self != Work,
            Scope::Read => matches!(self, ReadTasks | ReadAgents | ReadSystem),
            Scope::Submit => matches!(self, ReadTasks | SubmitTasks | ManageTasks | ReadAgents),
            Scope::Worker => matches!(self, Work | ReadAgents),
        }
    }
}

/// How the caller proved who it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Credential {
    Session { session_id: SessionId },
    ApiKey { id: ApiKeyId, scopes: Vec<Scope> },
}

/// The authenticated caller of one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    pub credential: Credential,
}

impl Principal {
    /// `forbidden`, naming what the credential may not do, unless it [`allows`](Self::allows) it.
    pub fn require(&self, permission: Permission) -> crate::Result<()> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(crate::Error::forbidden(format!(
                "this credential is not allowed to {}",
                permission.describe()
            )))
        }
    }

    pub fn allows(&self, permission: Permission) -> bool {
        if !permission.granted_by_role(self.role) {
            return false;
        }
        match &self.credential {
            Credential::Session { .. } => permission != Permission::Work,
            Credential::ApiKey { scopes, .. } => {
                scopes.iter().any(|s| permission.granted_by_scope(*s))
            }
        }
    }

    /// Admins see every task; everyone else only the tasks they own.
    pub fn sees_all_tasks(&self) -> bool {
        self.role == Role::Admin
            && match &self.credential {
                Credential::Session { .. } => true,
                Credential::ApiKey { scopes, .. } => scopes
                    .iter()
                    .any(|s| matches!(s, Scope::Admin | Scope::Read)),
            }
    }

    pub fn can_see_task(&self, owner: Option<UserId>) -> bool {
        self.sees_all_tasks() || owner == Some(self.user_id)
    }

    /// The owner filter to apply to task queries: `None` means all tasks.
    pub fn task_scope(&self) -> Option<UserId> {
        (!self.sees_all_tasks()).then_some(self.user_id)
    }

    pub fn session_id(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session { session_id } => Some(session_id),
            Credential::ApiKey { .. } => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Normalises an email for storage and lookup; `None` if it cannot be an address.
pub fn normalize_email(email: &str) -> Option<String> {
    let e = email.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@');
    ok.then_some(e)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    /// The first characters of the secret, shown so a key can be recognised.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

impl ApiKey {
    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A login session. Lives in the cache so that revocation is seen by every server at once.
/// Clients see it as `switchyard_api::views::SessionView` (without the token hashes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: Timestamp,
    /// When the refresh token stops working (sliding: renewed on each refresh).
    pub expires_at: Timestamp,
    pub last_refreshed_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// SHA-256 of the refresh token that may be used next.
    #[serde(default)]
    pub refresh_hash: String,
    /// SHA-256 of refresh tokens already used; presenting one of these again means the
    /// family leaked, and the whole session is revoked.
    #[serde(default)]
    pub used_hashes: Vec<String>,
    /// The current refresh token sealed under a key derived from the token it replaced
    /// (the last of `used_hashes`), so that a repeat of that refresh within the grace
    /// window is answered with the same token. Useless without the spent token itself.
    #[serde(default)]
    pub sealed_next: String,
}

/// One refresh-token rotation as the session backends see it: hashes and a sealed copy
/// of the new token, never a token itself.
#[derive(Clone, Debug)]
pub struct Rotation<'a> {
    /// SHA-256 of the presented refresh token.
    pub presented_hash: &'a str,
    /// SHA-256 of the refresh token that replaces it.
    pub new_hash: &'a str,
    /// The new token, sealed under a key only the presented token yields (kept in
    /// [`Session::sealed_next`]).
    pub sealed_next: &'a str,
    pub new_expiry: Timestamp,
    pub now: Timestamp,
    /// For this long after a rotation, presenting the token it spent again (a retried or
    /// concurrent request) is answered with the same new token instead of revoking.
    pub grace_ms: u64,
}

/// Result of presenting a refresh token to the session store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Rotated(Session),
    /// The token spent by the last rotation, presented again within the grace window:
    /// nothing changed, and the session's `sealed_next` holds the token that rotation
    /// issued.
    Repeated(Session),
    /// The token was used before: the session has been revoked.
    Reused,
    /// Unknown session, expired, or a token that never belonged to it.
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, credential: Credential) -> Principal {
        Principal {
            user_id: UserId::new(),
            role,
            credential,
        }
    }

    fn key(scopes: &[Scope]) -> Credential {
        Credential::ApiKey {
            id: ApiKeyId::new(),
            scopes: scopes.to_vec(),
        }
    }

    #[test]
    fn roles_grant_what_they_say() {
        let s = Credential::Session {
            session_id: SessionId::new(),
        };
        let viewer = principal(Role::Viewer, s.clone());
        assert!(viewer.allows(Permission::ReadTasks));
        assert!(!viewer.allows(Permission::SubmitTasks));
        assert!(!viewer.allows(Permission::ManageTasks));
        let op = principal(Role::Operator, s.clone());
        assert!(op.allows(Permission::SubmitTasks) && op.allows(Permission::ManageTasks));
        assert!(!op.allows(Permission::ManageAgents) && !op.allows(Permission::ManageUsers));
        assert!(!op.allows(Permission::ManageCommandAgents));
        assert!(!viewer.allows(Permission::ReadAudit) && !op.allows(Permission::ReadAudit));
        let admin = principal(Role::Admin, s);
        assert!(admin.allows(Permission::ManageUsers));
        assert!(admin.allows(Permission::ReadAudit));
        assert!(principal(Role::Admin, key(&[Scope::Admin])).allows(Permission::ReadAudit));
        for scope in [Scope::Read, Scope::Submit, Scope::Worker] {
            assert!(
                !principal(Role::Admin, key(&[scope])).allows(Permission::ReadAudit),
                "{scope:?}"
            );
        }
        assert!(admin.allows(Permission::ManageCommandAgents));
        for scope in [Scope::Read, Scope::Submit, Scope::Worker] {
            let narrowed = principal(Role::Admin, key(&[scope]));
            assert!(
                !narrowed.allows(Permission::ManageCommandAgents),
                "{scope:?}"
            );
        }
        assert!(
            principal(Role::Admin, key(&[Scope::Admin])).allows(Permission::ManageCommandAgents)
        );
        assert!(
            !admin.allows(Permission::Work),
            "sessions never act as workers"
        );
    }

    #[test]
    fn key_scopes_narrow_the_owner_role() {
        let read = principal(Role::Admin, key(&[Scope::Read]));
        assert!(read.allows(Permission::ReadTasks));
        assert!(
            !read.allows(Permission::SubmitTasks),
            "a read key cannot submit"
        );
        let worker = principal(Role::Admin, key(&[Scope::Worker]));
        assert!(worker.allows(Permission::Work));
        assert!(!worker.allows(Permission::ReadTasks) && !worker.allows(Permission::SubmitTasks));
        let viewer_admin_key = principal(Role::Viewer, key(&[Scope::Admin]));
        assert!(
            !viewer_admin_key.allows(Permission::SubmitTasks),
            "scope never exceeds the role"
        );
    }

    #[test]
    fn only_admins_see_other_peoples_tasks() {
        let other = Some(UserId::new());
        let op = principal(
            Role::Operator,
            Credential::Session {
                session_id: SessionId::new(),
            },
        );
        assert!(!op.can_see_task(other));
        assert!(op.can_see_task(Some(op.user_id)));
        assert_eq!(op.task_scope(), Some(op.user_id));
        let admin = principal(
            Role::Admin,
            Credential::Session {
                session_id: SessionId::new(),
            },
        );
        assert!(admin.can_see_task(other) && admin.task_scope().is_none());
        let admin_submit_key = principal(Role::Admin, key(&[Scope::Submit]));
        assert!(
            !admin_submit_key.can_see_task(other),
            "a submit key sees only its own tasks"
        );
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            normalize_email("  Admin@LocalHost "),
            Some("admin@localhost".into())
        );
        for bad in ["", "no-at", "@x", "x@", "a b@c", "a@b@c"] {
            assert_eq!(normalize_email(bad), None, "{bad:?}");
        }
    }
}
