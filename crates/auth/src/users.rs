//! Users and their sessions: creation, listing, role and status changes, password
//! resets. Any change that affects what a user may do ends their sessions and drops
//! cached credentials on every server.

use switchyard_core::auth::{Permission, Principal, Role, Session, User, normalize_email};
use switchyard_core::error::ErrorCode;
use switchyard_core::event::BusMessage;
use switchyard_core::store::{NewUser, UserPatch};
use switchyard_core::{Error, Result, SessionId, Timestamp, UserId};

use super::passwords::{check_password_policy, hash_password};
use super::{AuthService, random_token};

/// A change to a user; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserUpdate {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
}

impl AuthService {
    /// Creates the first admin if there are no users. Returns the generated password
    /// when none was given (to be shown once).
    pub async fn ensure_admin(
        &self,
        email: &str,
        password: Option<String>,
    ) -> Result<Option<String>> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let generated = password.is_none();
        let password = password.unwrap_or_else(|| random_token(18));
        self.create_user_unchecked(email, &password, Role::Admin)
            .await?;
        Ok(generated.then_some(password))
    }

    /// Creates a user without a permission check (CLI, bootstrap).
    pub async fn create_user_unchecked(
        &self,
        email: &str,
        password: &str,
        role: Role,
    ) -> Result<User> {
        let email = normalize_email(email).ok_or_else(|| {
            Error::invalid_parameter(format!("{email:?} is not a valid email address"))
        })?;
        check_password_policy(password)?;
        let password_hash = hash_password(password.to_owned()).await?;
        self.store
            .create_user(NewUser {
                id: UserId::new(),
                email,
                password_hash,
                role,
                created_at: Timestamp::now(),
            })
            .await
    }

    pub async fn create_user(
        &self,
        principal: &Principal,
        email: &str,
        password: &str,
        role: Role,
    ) -> Result<User> {
        principal.require(Permission::ManageUsers)?;
        self.create_user_unchecked(email, password, role).await
    }

    pub async fn list_users(&self, principal: &Principal) -> Result<Vec<User>> {
        principal.require(Permission::ManageUsers)?;
        self.store.list_users().await
    }

    /// Every user, for the operator's command line (no principal to check).
    pub async fn list_users_unchecked(&self) -> Result<Vec<User>> {
        self.store.list_users().await
    }

    /// The user behind an authenticated principal.
    pub async fn me(&self, principal: &Principal) -> Result<User> {
        self.store
            .get_user(principal.user_id)
            .await?
            .ok_or_else(|| Error::unauthorized("the user no longer exists"))
    }

    pub async fn user_by_email(&self, email: &str) -> Result<User> {
        let email = normalize_email(email)
            .ok_or_else(|| Error::invalid_parameter("not a valid email address"))?;
        self.store
            .user_by_email(&email)
            .await?
            .map(|(u, _)| u)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::UserNotFound,
                    format!("no user with email {email}"),
                )
            })
    }

    pub async fn update_user(
        &self,
        principal: &Principal,
        id: UserId,
        update: UserUpdate,
    ) -> Result<User> {
        principal.require(Permission::ManageUsers)?;
        self.update_user_unchecked(id, update).await
    }

    /// Applies a change without a permission check (CLI). Refuses to leave the install
    /// without an active admin.
    pub async fn update_user_unchecked(&self, id: UserId, update: UserUpdate) -> Result<User> {
        let not_found = || Error::new(ErrorCode::UserNotFound, format!("user {id} not found"));
        let current = self.store.get_user(id).await?.ok_or_else(not_found)?;
        let loses_admin = current.role == Role::Admin
            && !current.disabled
            && (update.role.is_some_and(|r| r != Role::Admin) || update.disabled == Some(true));
        if loses_admin {
            let admins = self
                .store
                .list_users()
                .await?
                .into_iter()
                .filter(|u| u.role == Role::Admin && !u.disabled)
                .count();
            if admins <= 1 {
                return Err(Error::invalid_state(
                    "this is the only active admin; make another admin first",
                ));
            }
        }
        let password_hash = match &update.password {
            Some(p) => {
                check_password_policy(p)?;
                Some(hash_password(p.clone()).await?)
            }
            None => None,
        };
        let patch = UserPatch {
            role: update.role,
            disabled: update.disabled,
            password_hash,
        };
        let user = self
            .store
            .update_user(id, patch, Timestamp::now())
            .await?
            .ok_or_else(not_found)?;
        let changed_powers = update.role.is_some_and(|r| r != current.role)
            || update.disabled.is_some_and(|d| d != current.disabled)
            || update.password.is_some();
        if changed_powers {
            self.end_all_sessions(id).await?;
        }
        Ok(user)
    }

    /// Ends every session of a user and drops their cached API-key credentials everywhere.
    pub async fn end_all_sessions(&self, user: UserId) -> Result<usize> {
        let sessions = self.cache.list_sessions(user).await?;
        for s in &sessions {
            self.cache.delete_session(s.id).await?;
        }
        let key = format!("user:{user}");
        self.forget_credential(&key);
        self.bus.send(BusMessage::CredentialRevoked { key }).await;
        Ok(sessions.len())
    }

    /// The caller's own sessions, oldest first.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<Session>> {
        self.cache.list_sessions(principal.user_id).await
    }

    /// Ends one of the caller's own sessions (another user's answers not found).
    pub async fn end_session(&self, principal: &Principal, id: SessionId) -> Result<()> {
        let not_found = || {
            Error::new(
                ErrorCode::SessionNotFound,
                format!("session {id} not found"),
            )
        };
        match self.cache.get_session(id).await? {
            Some(s) if s.user_id == principal.user_id => {
                self.cache.delete_session(id).await?;
                Ok(())
            }
            _ => Err(not_found()),
        }
    }
}
