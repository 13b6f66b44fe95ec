//! `/api/v1/audit`: reading the audit log (admins), and [`AuditTrail`], what every
//! handler records its security-relevant actions through.

pub mod list;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::Value;
use switchyard_core::Result;
use switchyard_core::audit::{AuditAction, AuditEntry, Origin, Target};
use switchyard_core::auth::Principal;

use crate::AppState;
use crate::client_addr::ClientAddr;
use crate::request_id::current_request_id;

/// The audit log as a handler sees it: the engine's [`Audit`] with the request's id and
/// client address filled in. Taken as an extractor; recording is one line:
///
/// ```ignore
/// trail.on(&auth, AuditAction::AgentDelete, TargetKind::Agent.id(&name), &result).await;
/// ```
///
/// Recording never fails the request (see `switchyard_core::audit`).
///
/// [`Audit`]: switchyard_core::audit::Audit
pub struct AuditTrail {
    state: AppState,
    origin: Origin,
}

impl FromRequestParts<AppState> for AuditTrail {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state).await?;
        let request_id = current_request_id();
        Ok(AuditTrail {
            state: state.clone(),
            origin: Origin {
                request_id: (request_id != "-").then_some(request_id),
                client_addr: addr.map(|a| a.ip().to_string()),
            },
        })
    }
}

impl AuditTrail {
    /// The request's id and client address.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// A successful `action` by `principal` in this request, to complete (target, detail,
    /// outcome) and [`record`](Self::record).
    pub async fn by(&self, principal: &Principal, action: AuditAction) -> AuditEntry {
        let actor = self.state.engine.audit().actor(principal).await;
        AuditEntry::new(actor, action).origin(&self.origin)
    }

    /// Records `entry`, with this request's origin where it has none.
    pub async fn record(&self, mut entry: AuditEntry) {
        if entry.request_id.is_none() && entry.client_addr.is_none() {
            entry = entry.origin(&self.origin);
        }
        self.state.engine.audit().record(entry).await;
    }

    /// Records `action` by `principal` on `target`, succeeded or failed as `result` says.
    pub async fn on<T>(
        &self,
        principal: &Principal,
        action: AuditAction,
        target: Target,
        result: &Result<T>,
    ) {
        self.on_with(principal, action, target, None, result).await;
    }

    /// [`on`](Self::on) with a few facts about the change (never a secret).
    pub async fn on_with<T>(
        &self,
        principal: &Principal,
        action: AuditAction,
        target: Target,
        detail: Option<Value>,
        result: &Result<T>,
    ) {
        let mut entry = self.by(principal, action).await;
        entry.target = Some(target);
        entry.detail = detail;
        if let Err(e) = result {
            entry = entry.failed(e);
        }
        self.record(entry).await;
    }
}
