//! `MonitoringStore`: metric rollups, alert rules and events, reports, task-log queries and
//! retention, and the entry of the search indexer (`search.rs`).

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_core::event::LogLevel;
use switchyard_core::monitoring::*;
use switchyard_core::store::{MonitoringStore, PoolStats, TaskLogLine};
use switchyard_core::{Error, Result, Timestamp};
use uuid::Uuid;

use super::SqlStore;
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{self, Col, db_err};
use crate::sql::sql;

pub(crate) fn points_json(points: &[MetricPoint]) -> String {
    Value::Array(
        points
            .iter()
            .map(|p| {
                json!({"metric": p.metric, "agent": p.agent, "bucket": p.bucket, "value": p.value})
            })
            .collect(),
    )
    .to_string()
}

/// `LIKE` pattern matching `text` anywhere, with the wildcards in it escaped.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Keeps `report_latency.sql` honest: its bounds must be the histogram's.
#[cfg(test)]
pub(crate) fn report_latency_bounds_match() -> bool {
    use switchyard_core::monitoring::LATENCY_BUCKETS_MS;
    let sql = include_str!("../../sql/common/report_latency.sql");
    let found: Vec<u64> = sql
        .lines()
        .filter_map(|l| l.split("<= ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|n| n.parse().ok())
        .collect();
    found == LATENCY_BUCKETS_MS
}

fn rule<R: Col>(r: &R) -> Result<AlertRule> {
    let spec: AlertRuleSpec = serde_json::from_str(&r.string("spec")?)
        .map_err(|e| Error::internal("unreadable alert rule", e))?;
    let state: AlertState = serde_json::from_str(&r.string("state")?)
        .map_err(|e| Error::internal("unreadable alert state", e))?;
    Ok(AlertRule {
        id: r.uuid("id")?,
        spec,
        state,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

fn event<R: Col>(r: &R) -> Result<AlertEvent> {
    let kind: AlertKind = serde_json::from_value(json!(r.string("kind")?))
        .map_err(|e| Error::internal("unreadable alert kind", e))?;
    Ok(AlertEvent {
        id: r.uuid("id")?,
        rule_id: r.uuid("rule_id")?,
        rule_name: r.string("rule_name")?,
        kind,
        agent: r.opt_string("agent")?,
        state: r.parsed("state")?,
        value: r.f64("value")?,
        threshold: r.f64("threshold")?,
        at: r.ts("at")?,
        message: r.string("message")?,
        webhook_url: r.opt_string("webhook_url")?,
        notify_status: r.parsed("notify_status")?,
        notify_attempts: r.u32("notify_attempts")?,
        next_notify_at: r.opt_ts("next_notify_at")?,
        notify_error: r.opt_string("notify_error")?,
    })
}

const EVENT_COLUMNS: &str = "id, rule_id, rule_name, kind, agent, state, value, threshold, at, \
    message, webhook_url, notify_status, notify_attempts, next_notify_at, notify_error";

impl<D: Dialect> SqlStore<D> {
    /// One bucket's metric points through `sql` (added to counters, or set as gauges).
    async fn write_points(
        &self,
        sql: &'static str,
        bucket_start: Timestamp,
        points: &[MetricPoint],
        context: &'static str,
    ) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        Query::new(sql)
            .bind(points_json(points))
            .bind(bucket_start.millis())
            .execute(self.writer())
            .await
            .map_err(db_err(context))?;
        Ok(())
    }
}

#[async_trait]
impl<D: Dialect> MonitoringStore for SqlStore<D> {
    async fn add_metric_points(
        &self,
        bucket_start: Timestamp,
        points: &[MetricPoint],
    ) -> Result<()> {
        self.write_points(
            D::SQL.add_metric_points,
            bucket_start,
            points,
            "add metric points",
        )
        .await
    }

    async fn set_metric_gauges(
        &self,
        bucket_start: Timestamp,
        points: &[MetricPoint],
    ) -> Result<()> {
        self.write_points(
            D::SQL.set_metric_gauges,
            bucket_start,
            points,
            "set metric gauges",
        )
        .await
    }

    async fn metric_rows(&self, q: &MetricRowQuery) -> Result<Vec<MetricRow>> {
        if q.metrics.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = Query::new(
            "SELECT bucket_start, metric, agent, bucket, value FROM metric_rollups \
             WHERE resolution_s = ",
        );
        query.push_bind(i64::from(q.resolution_s));
        query
            .push(" AND bucket_start >= ")
            .push_bind(q.from.millis());
        query.push(" AND bucket_start < ").push_bind(q.to.millis());
        query.push(" AND metric IN ");
        query.push_list(&q.metrics);
        if let Some(agent) = &q.agent {
            query.push(" AND agent = ").push_bind(agent);
        }
        query.push(" ORDER BY bucket_start, metric, agent, bucket");
        let rows = query
            .fetch_all(self.reader())
            .await
            .map_err(db_err("metric rows"))?;
        rows.iter()
            .map(|r| {
                Ok(MetricRow {
                    bucket_start: r.ts("bucket_start")?,
                    metric: r.string("metric")?,
                    agent: r.string("agent")?,
                    bucket: i32::try_from(r.i64("bucket")?).unwrap_or(-1),
                    value: r.f64("value")?,
                })
            })
            .collect()
    }

    async fn downsample_metrics(&self, before: Timestamp) -> Result<u64> {
        let gauges = Value::from(series::GAUGES.to_vec()).to_string();
        let mut tx = self.begin_writer("begin downsample").await?;
        Query::new(D::SQL.downsample_metrics)
            .bind(before.millis())
            .bind(gauges)
            .execute(tx.on())
            .await
            .map_err(db_err("downsample metrics"))?;
        let dropped = Query::new(sql!("common", "prune_metrics"))
            .bind(60_i64)
            .bind(before.millis())
            .execute(tx.on())
            .await
            .map_err(db_err("drop folded metrics"))?;
        tx.commit().await.map_err(db_err("commit downsample"))?;
        Ok(dropped)
    }

    async fn prune_metrics(&self, resolution_s: u32, before: Timestamp) -> Result<u64> {
        Query::new(sql!("common", "prune_metrics"))
            .bind(i64::from(resolution_s))
            .bind(before.millis())
            .execute(self.writer())
            .await
            .map_err(db_err("prune metrics"))
    }

    async fn put_alert_rule(&self, r: &AlertRule) -> Result<()> {
        let spec = serde_json::to_string(&r.spec).map_err(|e| Error::internal("encode rule", e))?;
        let state =
            serde_json::to_string(&r.state).map_err(|e| Error::internal("encode rule state", e))?;
        Query::new(sql!("common", "put_alert_rule"))
            .bind(r.id)
            .bind(spec)
            .bind(state)
            .bind(r.created_at.millis())
            .bind(r.updated_at.millis())
            .execute(self.writer())
            .await
            .map_err(db_err("put alert rule"))?;
        Ok(())
    }

    async fn get_alert_rule(&self, id: Uuid) -> Result<Option<AlertRule>> {
        let row = Query::new(sql!("common", "get_alert_rule"))
            .bind(id)
            .fetch_optional(self.writer())
            .await
            .map_err(db_err("get alert rule"))?;
        row.as_ref().map(rule).transpose()
    }

    async fn list_alert_rules(&self) -> Result<Vec<AlertRule>> {
        let rows = Query::new(sql!("common", "list_alert_rules"))
            .fetch_all(self.writer())
            .await
            .map_err(db_err("list alert rules"))?;
        rows.iter().map(rule).collect()
    }

    async fn delete_alert_rule(&self, id: Uuid) -> Result<bool> {
        let deleted = Query::new(sql!("common", "delete_alert_rule"))
            .bind(id)
            .execute(self.writer())
            .await
            .map_err(db_err("delete alert rule"))?;
        Ok(deleted > 0)
    }

    async fn save_alert_state(&self, id: Uuid, state: &AlertState) -> Result<()> {
        let state =
            serde_json::to_string(state).map_err(|e| Error::internal("encode rule state", e))?;
        Query::new(sql!("common", "save_alert_state"))
            .bind(id)
            .bind(state)
            .execute(self.writer())
            .await
            .map_err(db_err("save alert state"))?;
        Ok(())
    }

    async fn insert_alert_event(&self, e: &AlertEvent) -> Result<()> {
        Query::new(sql!("common", "insert_alert_event"))
            .bind(e.id)
            .bind(e.rule_id)
            .bind(&e.rule_name)
            .bind(e.kind.as_str())
            .bind(e.agent.as_deref())
            .bind(e.state.as_str())
            .bind(e.value)
            .bind(e.threshold)
            .bind(e.at.millis())
            .bind(&e.message)
            .bind(e.webhook_url.as_deref())
            .bind(e.notify_status.as_str())
            .bind(i64::from(e.notify_attempts))
            .bind(e.next_notify_at.map(Timestamp::millis))
            .bind(e.notify_error.as_deref())
            .execute(self.writer())
            .await
            .map_err(db_err("insert alert event"))?;
        Ok(())
    }

    async fn list_alert_events(&self, q: &AlertEventQuery) -> Result<Vec<AlertEvent>> {
        let mut query = Query::new("SELECT ");
        query
            .push(EVENT_COLUMNS)
            .push(" FROM alert_events WHERE true");
        if let Some(rule_id) = q.rule_id {
            query.push(" AND rule_id = ").push_bind(rule_id);
        }
        if let Some(before) = q.before_id {
            query.push(" AND id < ").push_bind(before);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(q.limit.max(1)));
        let rows = query
            .fetch_all(self.writer())
            .await
            .map_err(db_err("list alert events"))?;
        rows.iter().map(event).collect()
    }

    async fn due_notifications(&self, now: Timestamp, limit: u32) -> Result<Vec<AlertEvent>> {
        let rows = Query::new(sql!("common", "due_notifications"))
            .bind(now.millis())
            .bind(i64::from(limit))
            .fetch_all(self.writer())
            .await
            .map_err(db_err("due notifications"))?;
        rows.iter().map(event).collect()
    }

    async fn record_notification(&self, u: &NotifyUpdate) -> Result<()> {
        Query::new(sql!("common", "record_notification"))
            .bind(u.event_id)
            .bind(u.status.as_str())
            .bind(i64::from(u.attempts))
            .bind(u.next_at.map(Timestamp::millis))
            .bind(u.error.as_deref())
            .execute(self.writer())
            .await
            .map_err(db_err("record notification"))?;
        Ok(())
    }

    async fn prune_alert_events(&self, before: Timestamp) -> Result<u64> {
        Query::new(sql!("common", "prune_alert_events"))
            .bind(before.millis())
            .execute(self.writer())
            .await
            .map_err(db_err("prune alert events"))
    }

    async fn agent_report(&self, from: Timestamp, to: Timestamp) -> Result<Vec<AgentReportRow>> {
        let (lo, hi) = (task_id_floor(from).0, task_id_floor(to).0);
        let rows = Query::new(sql!("common", "report_agents"))
            .bind(lo)
            .bind(hi)
            .fetch_all(self.reader())
            .await
            .map_err(db_err("agent report"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let n = |c: &str| r.opt_i64(c).map(|v| v.unwrap_or(0).max(0) as u64);
            out.push(AgentReportRow {
                agent: r.string("agent")?,
                tasks: n("tasks")?,
                succeeded: n("succeeded")?,
                failed: n("failed")?,
                dead: n("dead")?,
                cancelled: n("cancelled")?,
                retries: n("retries")?,
                fallbacks: n("fallbacks")?,
                cached: n("cached")?,
                latency_buckets: vec![0; HISTOGRAM_BUCKETS],
                usage: None,
            });
        }
        let usage = Query::new(D::SQL.report_usage)
            .bind(lo)
            .bind(hi)
            .fetch_all(self.reader())
            .await
            .map_err(db_err("agent usage report"))?;
        for r in &usage {
            let agent = r.string("agent")?;
            let n = |c: &str| r.opt_i64(c).map(|v| v.unwrap_or(0).max(0) as u64);
            let totals = UsageTotals {
                tasks: n("tasks")?,
                prompt_tokens: n("prompt_tokens")?,
                completion_tokens: n("completion_tokens")?,
                cost: r.opt_f64("cost")?,
            };
            if let Some(row) = out.iter_mut().find(|row| row.agent == agent) {
                row.usage = Some(totals);
            }
        }
        let buckets = Query::new(sql!("common", "report_latency"))
            .bind(lo)
            .bind(hi)
            .fetch_all(self.reader())
            .await
            .map_err(db_err("agent latency report"))?;
        for r in &buckets {
            let agent = r.string("agent")?;
            let bucket = usize::try_from(r.i64("bucket")?)
                .unwrap_or(0)
                .min(HISTOGRAM_BUCKETS - 1);
            if let Some(row) = out.iter_mut().find(|row| row.agent == agent) {
                row.latency_buckets[bucket] += r.i64("n")?.max(0) as u64;
            }
        }
        Ok(out)
    }

    async fn query_task_logs(&self, q: &LogQuery) -> Result<Vec<TaskLogLine>> {
        let mut query = Query::new(
            "SELECT task_id, seq, attempt, at, level, message FROM task_logs WHERE task_id = ",
        );
        query.push_bind(q.task_id.0);
        query
            .push(" AND seq > ")
            .push_bind(i64::try_from(q.after_seq).unwrap_or(i64::MAX));
        if let Some(min) = q.min_level {
            let levels = [
                LogLevel::Debug,
                LogLevel::Info,
                LogLevel::Warn,
                LogLevel::Error,
            ];
            query.push(" AND level IN ");
            query.push_list(
                levels
                    .into_iter()
                    .filter(|l| *l >= min)
                    .map(LogLevel::as_str),
            );
        }
        if let Some(text) = q.contains.as_deref().filter(|t| !t.is_empty()) {
            query
                .push(" AND lower(message) LIKE ")
                .push_bind(contains_pattern(&crate::content::escape_str(text)))
                .push(" ESCAPE '\\'");
        }
        query
            .push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(q.limit.max(1)));
        let rows = query
            .fetch_all(self.reader())
            .await
            .map_err(db_err("query task logs"))?;
        rows.iter().map(rows::log_line).collect()
    }

    async fn prune_task_logs(&self, before: Timestamp) -> Result<u64> {
        let floor = task_id_floor(before).0;
        let stream = Query::new(sql!("common", "prune_task_stream"))
            .bind(floor)
            .execute(self.writer())
            .await
            .map_err(db_err("prune task streams"))?;
        let logs = Query::new(sql!("common", "prune_task_logs"))
            .bind(floor)
            .execute(self.writer())
            .await
            .map_err(db_err("prune task logs"))?;
        Ok(logs + stream)
    }

    async fn index_tasks(&self, limit: u32) -> Result<u64> {
        self.index_tasks_now(i64::from(limit.max(1))).await
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.dialect.pools()
    }

    fn database_calls(&self) -> u64 {
        self.dialect.calls().get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_sql_uses_the_histogram_bounds() {
        assert!(report_latency_bounds_match());
    }
}
