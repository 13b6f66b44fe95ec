//! `IdentityStore`: users and API keys.

use async_trait::async_trait;
use switchyard_core::auth::{ApiKey, User};
use switchyard_core::error::ErrorCode;
use switchyard_core::store::{IdentityStore, NewApiKey, NewUser, UserPatch};
use switchyard_core::{ApiKeyId, Error, Result, Timestamp, UserId};

use super::SqlStore;
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{self, Col, db_err, is_unique_violation};
use crate::sql::sql;

impl<D: Dialect> SqlStore<D> {
    /// A new user; with `oidc` (issuer, subject), one a single sign-on identity signs in as.
    async fn insert_user(&self, user: NewUser, oidc: Option<(&str, &str)>) -> Result<User> {
        let mut tx = self.begin_write(true).await?;
        let statement = match oidc {
            None => sql!("common", "create_user"),
            Some(_) => sql!("common", "create_oidc_user"),
        };
        let mut query = Query::new(statement)
            .bind(user.id.0)
            .bind(&user.email)
            .bind(&user.password_hash)
            .bind(user.role.as_str())
            .bind(user.created_at.millis());
        if let Some((issuer, subject)) = oidc {
            query = query.bind(issuer).bind(subject);
        }
        match query.execute(tx.on()).await {
            Ok(_) => {
                tx.commit().await.map_err(db_err("commit user"))?;
                Ok(User {
                    id: user.id,
                    email: user.email,
                    role: user.role,
                    disabled: false,
                    created_at: user.created_at,
                    updated_at: user.created_at,
                })
            }
            Err(e) if is_unique_violation(&e) => Err(Error::new(
                ErrorCode::EmailTaken,
                match oidc {
                    None => format!("a user with email {} already exists", user.email),
                    Some(_) => format!(
                        "a user with email {} or this single sign-on identity already exists",
                        user.email
                    ),
                },
            )),
            Err(e) => Err(db_err("create user")(e)),
        }
    }
}

#[async_trait]
impl<D: Dialect> IdentityStore for SqlStore<D> {
    async fn create_user(&self, user: NewUser) -> Result<User> {
        self.insert_user(user, None).await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        let row = Query::new(sql!("common", "get_user"))
            .bind(id.0)
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("get user"))?;
        Ok(row.as_ref().map(rows::user).transpose()?.map(|(u, _)| u))
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>> {
        let row = Query::new(sql!("common", "user_by_email"))
            .bind(email)
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("user by email"))?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = Query::new(sql!("common", "list_users"))
            .fetch_all(self.reader())
            .await
            .map_err(db_err("list users"))?;
        rows.iter().map(|r| rows::user(r).map(|(u, _)| u)).collect()
    }

    async fn update_user(
        &self,
        id: UserId,
        patch: UserPatch,
        now: Timestamp,
    ) -> Result<Option<User>> {
        let mut tx = self.begin_write(true).await?;
        let row = Query::new(sql!("common", "update_user"))
            .bind(id.0)
            .bind(patch.role.map(|r| r.as_str()))
            .bind(patch.disabled)
            .bind(patch.password_hash)
            .bind(now.millis())
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("update user"))?;
        tx.commit().await.map_err(db_err("commit user"))?;
        Ok(row.as_ref().map(rows::user).transpose()?.map(|(u, _)| u))
    }

    async fn count_users(&self) -> Result<u64> {
        let n = Query::new(sql!("common", "count_users"))
            .fetch_one(self.fresh_reader())
            .await
            .map_err(db_err("count users"))?
            .i64_at(0)?;
        Ok(n as u64)
    }

    async fn user_by_oidc_subject(&self, issuer: &str, subject: &str) -> Result<Option<User>> {
        let row = Query::new(sql!("common", "user_by_oidc_subject"))
            .bind(issuer)
            .bind(subject)
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("user by oidc subject"))?;
        Ok(row.as_ref().map(rows::user).transpose()?.map(|(u, _)| u))
    }

    async fn create_oidc_user(&self, user: NewUser, issuer: &str, subject: &str) -> Result<User> {
        self.insert_user(user, Some((issuer, subject))).await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<()> {
        let scopes = serde_json::to_string(&key.key.scopes)
            .map_err(|e| Error::internal("encode scopes", e))?;
        let mut tx = self.begin_write(true).await?;
        Query::new(sql!("common", "create_api_key"))
            .bind(key.key.id.0)
            .bind(key.key.user_id.0)
            .bind(&key.key.name)
            .bind(&key.key.prefix)
            .bind(&key.secret_hash)
            .bind(scopes)
            .bind(key.key.created_at.millis())
            .bind(key.key.expires_at.map(Timestamp::millis))
            .execute(tx.on())
            .await
            .map_err(db_err("create api key"))?;
        tx.commit().await.map_err(db_err("commit"))?;
        Ok(())
    }

    async fn api_key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKey>> {
        let row = Query::new(sql!("common", "api_key_by_hash"))
            .bind(secret_hash)
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("api key by hash"))?;
        row.as_ref().map(rows::api_key).transpose()
    }

    async fn list_api_keys(&self, user: Option<UserId>) -> Result<Vec<ApiKey>> {
        let rows = Query::new(sql!("common", "list_api_keys"))
            .bind(user.map(|u| u.0))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("list api keys"))?;
        rows.iter().map(rows::api_key).collect()
    }

    async fn revoke_api_key(
        &self,
        id: ApiKeyId,
        user: Option<UserId>,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin_write(true).await?;
        let revoked = Query::new(sql!("common", "revoke_api_key"))
            .bind(id.0)
            .bind(user.map(|u| u.0))
            .bind(now.millis())
            .execute(tx.on())
            .await
            .map_err(db_err("revoke api key"))?;
        tx.commit().await.map_err(db_err("commit"))?;
        Ok(revoked > 0)
    }

    async fn touch_api_key(&self, id: ApiKeyId, now: Timestamp) -> Result<()> {
        Query::new(sql!("common", "touch_api_key"))
            .bind(id.0)
            .bind(now.millis())
            .execute(self.writer())
            .await
            .map_err(db_err("touch api key"))?;
        Ok(())
    }
}
