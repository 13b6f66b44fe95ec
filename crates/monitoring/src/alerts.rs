//! Alert rules: evaluated by the process that holds the cluster duties, with a
//! for-duration, firing and resolved events stored and published, and webhook
//! notifications (Slack-compatible JSON) delivered from an outbox with retries.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::monitoring::{
    AlertEvent, AlertEventQuery, AlertEventState, AlertKind, AlertRule, AlertRuleSpec, AlertState,
    AlertStatus, NotifyStatus, NotifyUpdate,
};
use switchyard_core::store::{AgentQueueStats, WorkerInfo};
use switchyard_core::{Error, ErrorCode, Result, Timestamp};
use uuid::Uuid;

use super::Monitoring;
use switchyard_core::event::BusMessage;

/// Longest backoff between webhook attempts.
const MAX_BACKOFF_MS: u64 = 300_000;

pub fn rule_not_found(id: Uuid) -> Error {
    Error::new(
        ErrorCode::AlertRuleNotFound,
        format!("alert rule {id} not found"),
    )
}

impl Monitoring {
    pub async fn create_rule(&self, spec: AlertRuleSpec) -> Result<AlertRule> {
        spec.validate()?;
        let now = Timestamp::now();
        let rule = AlertRule {
            id: Uuid::now_v7(),
            spec: normalized(spec),
            state: AlertState::default(),
            created_at: now,
            updated_at: now,
        };
        self.store.put_alert_rule(&rule).await?;
        Ok(rule)
    }

    /// Replaces a rule's definition; its state carries over.
    pub async fn update_rule(&self, id: Uuid, spec: AlertRuleSpec) -> Result<AlertRule> {
        spec.validate()?;
        let mut rule = self
            .store
            .get_alert_rule(id)
            .await?
            .ok_or_else(|| rule_not_found(id))?;
        rule.spec = normalized(spec);
        rule.updated_at = Timestamp::now();
        self.store.put_alert_rule(&rule).await?;
        Ok(rule)
    }

    pub async fn delete_rule(&self, id: Uuid) -> Result<()> {
        if self.store.delete_alert_rule(id).await? {
            Ok(())
        } else {
            Err(rule_not_found(id))
        }
    }

    pub async fn list_rules(&self) -> Result<Vec<AlertRule>> {
        self.store.list_alert_rules().await
    }

    /// Alert events, newest first, a page at a time.
    pub async fn alert_events(&self, query: &AlertEventQuery) -> Result<Vec<AlertEvent>> {
        self.store.list_alert_events(query).await
    }

    pub async fn get_rule(&self, id: Uuid) -> Result<AlertRule> {
        self.store
            .get_alert_rule(id)
            .await?
            .ok_or_else(|| rule_not_found(id))
    }

    /// Evaluates every rule once.
    pub async fn evaluate_alerts(&self, now: Timestamp) -> Result<()> {
        let rules = self.store.list_alert_rules().await?;
        if rules.is_empty() {
            return Ok(());
        }
        let mut queues: Option<Vec<AgentQueueStats>> = None;
        for rule in rules {
            let value = match self.rule_value(&rule, now, &mut queues).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(rule = %rule.spec.name, error = %e, "could not evaluate an alert rule");
                    continue;
                }
            };
            if let Err(e) = self.advance(rule, value, now).await {
                tracing::warn!(error = %e, "could not record an alert rule's state");
            }
        }
        Ok(())
    }

    async fn rule_value(
        &self,
        rule: &AlertRule,
        now: Timestamp,
        queues: &mut Option<Vec<AgentQueueStats>>,
    ) -> Result<f64> {
        let spec = &rule.spec;
        let agent = spec.agent.as_deref();
        if matches!(spec.kind, AlertKind::QueueDepth | AlertKind::OldestTaskAge) && queues.is_none()
        {
            *queues = Some(self.store.queue_stats(now).await?);
        }
        let matching = || {
            queues
                .iter()
                .flatten()
                .filter(move |q| agent.is_none_or(|a| q.agent == a))
        };
        Ok(match spec.kind {
            AlertKind::FailureRate => {
                super::rollup::failure_rate(&*self.store, agent, spec.window_s, now)
                    .await?
                    .unwrap_or(0.0)
            }
            AlertKind::QueueDepth => matching().map(|q| (q.ready + q.scheduled) as f64).sum(),
            AlertKind::OldestTaskAge => matching()
                .filter_map(|q| q.oldest_ready_at)
                .map(|t| now.since(t) as f64 / 1_000.0)
                .fold(0.0, f64::max),
            AlertKind::NoWorker => {
                self.workers_serving(agent.unwrap_or_default(), now).await? as f64
            }
            AlertKind::BackupAge => {
                let last = self.last_backup().await?.and_then(|b| b.finished_at);
                now.since(last.unwrap_or(rule.created_at)) as f64 / 1_000.0
            }
        })
    }

    /// Live workers that take tasks of `agent`: built-in runtimes for built-in kinds,
    /// remote workers that declared it otherwise.
    pub async fn workers_serving(&self, agent: &str, now: Timestamp) -> Result<usize> {
        let Some(builtin) = self.watched.runs_builtin(agent).await? else {
            return Ok(0);
        };
        let workers = self.store.list_workers(self.alive_since(now)).await?;
        Ok(workers
            .iter()
            .filter(|w| {
                if builtin {
                    w.kind == "builtin"
                } else {
                    w.agents.iter().any(|a| a == agent)
                }
            })
            .count())
    }

    /// Workers whose last heartbeat is recent enough to count them as alive.
    pub async fn live_workers(&self) -> Result<Vec<WorkerInfo>> {
        self.store
            .list_workers(self.alive_since(Timestamp::now()))
            .await
    }

    /// Queue depth per agent, read now (`/metrics` reuses a reading for up to a second).
    pub async fn queues(&self) -> Result<Vec<AgentQueueStats>> {
        self.store.queue_stats(Timestamp::now()).await
    }

    fn alive_since(&self, now: Timestamp) -> Timestamp {
        now.minus_ms(self.heartbeat_ms.saturating_mul(3).max(15_000))
    }

    /// Moves a rule through ok → pending → firing → ok, recording events.
    async fn advance(&self, rule: AlertRule, value: f64, now: Timestamp) -> Result<()> {
        let spec = &rule.spec;
        let breached = spec.kind.breached(value, spec.threshold);
        let mut state = rule.state.clone();
        state.value = Some(value);
        state.evaluated_at = Some(now);
        let mut event = None;
        match (state.status, breached) {
            (AlertStatus::Ok, true) => {
                state.since = Some(now);
                state.status = AlertStatus::Pending;
            }
            (AlertStatus::Pending | AlertStatus::Firing, false) => {
                if state.status == AlertStatus::Firing {
                    event = Some(AlertEventState::Resolved);
                }
                state.status = AlertStatus::Ok;
                state.since = None;
            }
            _ => {}
        }
        if state.status == AlertStatus::Pending {
            let since = state.since.unwrap_or(now);
            if now.since(since) >= spec.for_s.saturating_mul(1_000) {
                state.status = AlertStatus::Firing;
                event = Some(AlertEventState::Firing);
            }
        }
        self.store.save_alert_state(rule.id, &state).await?;
        if let Some(kind) = event {
            let e = self.new_event(&rule, kind, value, now);
            self.store.insert_alert_event(&e).await?;
            tracing::warn!(rule = %spec.name, state = kind.as_str(), value, message = %e.message, "alert");
            self.bus
                .send(BusMessage::Alert { event: Box::new(e) })
                .await;
        }
        Ok(())
    }

    fn new_event(
        &self,
        rule: &AlertRule,
        state: AlertEventState,
        value: f64,
        now: Timestamp,
    ) -> AlertEvent {
        let webhook = rule.spec.webhook_url.clone();
        AlertEvent {
            id: Uuid::now_v7(),
            rule_id: rule.id,
            rule_name: rule.spec.name.clone(),
            kind: rule.spec.kind,
            agent: rule.spec.agent.clone(),
            state,
            value,
            threshold: rule.spec.threshold,
            at: now,
            message: describe(&rule.spec, value),
            notify_status: if webhook.is_some() {
                NotifyStatus::Pending
            } else {
                NotifyStatus::None
            },
            next_notify_at: webhook.is_some().then_some(now),
            webhook_url: webhook,
            notify_attempts: 0,
            notify_error: None,
        }
    }

    /// Delivers the webhook notifications that are due; failures are retried with
    /// exponential backoff up to `webhook_max_attempts`.
    pub async fn deliver_notifications(&self, now: Timestamp) -> Result<usize> {
        let due = self.store.due_notifications(now, 50).await?;
        let n = due.len();
        for e in due {
            let Some(url) = e.webhook_url.clone() else {
                continue;
            };
            let attempts = e.notify_attempts + 1;
            let update = match self.post_json(&url, &notification_body(&e)).await {
                Ok(()) => NotifyUpdate {
                    event_id: e.id,
                    status: NotifyStatus::Sent,
                    attempts,
                    next_at: None,
                    error: None,
                },
                Err(failure) => {
                    let give_up =
                        failure.permanent || attempts >= self.config.webhook_max_attempts.max(1);
                    let backoff = self
                        .config
                        .webhook_backoff_ms
                        .saturating_mul(1u64 << (attempts - 1).min(20))
                        .min(MAX_BACKOFF_MS);
                    tracing::warn!(rule = %e.rule_name, attempts, error = %failure.message, give_up, "alert webhook failed");
                    NotifyUpdate {
                        event_id: e.id,
                        status: if give_up {
                            NotifyStatus::Failed
                        } else {
                            NotifyStatus::Pending
                        },
                        attempts,
                        next_at: (!give_up).then(|| Timestamp::now().plus_ms(backoff)),
                        error: Some(failure.message),
                    }
                }
            };
            self.store.record_notification(&update).await?;
        }
        Ok(n)
    }

    /// POSTs JSON; 2xx is success, other 4xx (but 408 and 429) are permanent failures.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        body: &Value,
    ) -> std::result::Result<(), PostFailure> {
        let response = self
            .http
            .post(url)
            .timeout(Duration::from_millis(
                self.config.webhook_timeout_ms.max(100),
            ))
            .json(body)
            .send()
            .await
            .map_err(|e| PostFailure {
                permanent: false,
                message: format!("request failed: {}", without_url(&e)),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(PostFailure {
            permanent: status.is_client_error() && !matches!(status.as_u16(), 408 | 429),
            message: format!("HTTP {}", status.as_u16()),
        })
    }
}

pub(crate) struct PostFailure {
    pub permanent: bool,
    pub message: String,
}

/// A reqwest error without the URL (which may hold a token).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "error"
    };
    kind.to_owned()
}

fn normalized(mut spec: AlertRuleSpec) -> AlertRuleSpec {
    spec.name = spec.name.trim().to_owned();
    spec.agent = spec.agent.map(|a| a.trim().to_owned());
    spec
}

fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// One line saying what the rule sees.
pub fn describe(spec: &AlertRuleSpec, value: f64) -> String {
    let of = match &spec.agent {
        Some(a) => format!("agent {a}"),
        None => "all agents".to_owned(),
    };
    match spec.kind {
        AlertKind::FailureRate => format!(
            "failure rate of {of} is {} over the last {} s (threshold {})",
            percent(value),
            spec.window_s,
            percent(spec.threshold)
        ),
        AlertKind::QueueDepth => format!(
            "queue depth of {of} is {value} (threshold {})",
            spec.threshold
        ),
        AlertKind::OldestTaskAge => format!(
            "the oldest runnable task of {of} is {value:.0} s old (threshold {} s)",
            spec.threshold
        ),
        AlertKind::NoWorker => format!(
            "{of} has {value} live worker(s) (fires at {} or fewer)",
            spec.threshold
        ),
        AlertKind::BackupAge => format!(
            "the last successful backup is {value:.0} s old (threshold {} s)",
            spec.threshold
        ),
    }
}

/// Slack-compatible (`text`) with the structured event under `alert`.
pub fn notification_body(e: &AlertEvent) -> Value {
    let text = match e.state {
        AlertEventState::Firing => format!("🔥 FIRING: {} — {}", e.rule_name, e.message),
        AlertEventState::Resolved => format!("✅ RESOLVED: {} — {}", e.rule_name, e.message),
    };
    json!({ "text": text, "alert": e })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: AlertKind, threshold: f64) -> AlertRuleSpec {
        AlertRuleSpec {
            name: "r".into(),
            kind,
            agent: Some("fail".into()),
            threshold,
            window_s: 60,
            for_s: 0,
            webhook_url: None,
        }
    }

    #[test]
    fn descriptions_name_the_value_and_threshold() {
        assert_eq!(
            describe(&spec(AlertKind::FailureRate, 0.05), 0.5),
            "failure rate of agent fail is 50.0% over the last 60 s (threshold 5.0%)"
        );
        assert!(describe(&spec(AlertKind::NoWorker, 0.0), 0.0).contains("0 live worker"));
    }

    #[test]
    fn bodies_are_slack_compatible() {
        let e = AlertEvent {
            id: Uuid::nil(),
            rule_id: Uuid::nil(),
            rule_name: "fails".into(),
            kind: AlertKind::FailureRate,
            agent: Some("fail".into()),
            state: AlertEventState::Firing,
            value: 1.0,
            threshold: 0.5,
            at: Timestamp::from_millis(0),
            message: "m".into(),
            webhook_url: Some("http://secret-token@x".into()),
            notify_status: NotifyStatus::Pending,
            notify_attempts: 0,
            next_notify_at: None,
            notify_error: None,
        };
        let body = notification_body(&e);
        assert_eq!(body["text"], "🔥 FIRING: fails — m");
        assert_eq!(body["alert"]["state"], "firing");
        assert!(
            !body.to_string().contains("secret"),
            "the webhook URL is not sent"
        );
    }
}
