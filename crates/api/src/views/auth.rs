//! A login session as the API shows it: without its refresh-token hashes and sealed token,
//! and marked when it is the caller's own.

use serde::Serialize;
use switchyard_core::auth::Session;
use switchyard_core::{SessionId, Timestamp};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub id: SessionId,
    pub created_at: Timestamp,
    pub last_refreshed_at: Timestamp,
    pub expires_at: Timestamp,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session of this request.
    pub current: bool,
}

impl SessionView {
    /// `session` as shown to the caller whose own session is `current` (none for an API key).
    pub fn new(session: Session, current: Option<SessionId>) -> Self {
        SessionView {
            current: Some(session.id) == current,
            id: session.id,
            created_at: session.created_at,
            last_refreshed_at: session.last_refreshed_at,
            expires_at: session.expires_at,
            ip: session.ip,
            user_agent: session.user_agent,
        }
    }
}
