//! Alerting as the API shows it: a rule's definition beside its state, and events without
//! the webhook address (it may hold a secret token) and the delivery schedule.

use serde::Serialize;
use switchyard_core::Timestamp;
use switchyard_core::monitoring::{
    AlertEvent, AlertEventState, AlertKind, AlertRule, AlertState, NotifyStatus,
};
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

/// A rule started or stopped firing.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertEvent)]
pub struct AlertEventView {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub rule_name: String,
    pub kind: AlertKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub state: AlertEventState,
    pub value: f64,
    pub threshold: f64,
    pub at: Timestamp,
    pub message: String,
    pub notify_status: NotifyStatus,
    pub notify_attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_error: Option<String>,
}

impl From<AlertEvent> for AlertEventView {
    fn from(event: AlertEvent) -> Self {
        AlertEventView {
            id: event.id,
            rule_id: event.rule_id,
            rule_name: event.rule_name,
            kind: event.kind,
            agent: event.agent,
            state: event.state,
            value: event.value,
            threshold: event.threshold,
            at: event.at,
            message: event.message,
            notify_status: event.notify_status,
            notify_attempts: event.notify_attempts,
            notify_error: event.notify_error,
        }
    }
}
