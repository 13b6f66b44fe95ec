//! An alert rule as the API shows it: its definition's fields beside its state.

use serde::Serialize;
use switchyard_core::Timestamp;
use switchyard_core::monitoring::{AlertKind, AlertRule, AlertState};
use utoipa::ToSchema;
use uuid::Uuid;

/// An alert rule with its current state.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertRule)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleView {
    pub id: Uuid,
    pub name: String,
    pub kind: AlertKind,
    /// Only this agent; absent: all agents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub threshold: f64,
    /// The lookback window in seconds.
    pub window_s: u64,
    /// The condition must hold this long before the rule fires.
    pub for_s: u64,
    /// Where firing and resolved notifications are POSTed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    pub state: AlertState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<AlertRule> for AlertRuleView {
    fn from(rule: AlertRule) -> Self {
        AlertRuleView {
            id: rule.id,
            name: rule.spec.name,
            kind: rule.spec.kind,
            agent: rule.spec.agent,
            threshold: rule.spec.threshold,
            window_s: rule.spec.window_s,
            for_s: rule.spec.for_s,
            webhook_url: rule.spec.webhook_url,
            state: rule.state,
            created_at: rule.created_at,
            updated_at: rule.updated_at,
        }
    }
}
