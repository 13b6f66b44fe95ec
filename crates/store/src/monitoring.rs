//! `MonitoringStore`, written once for both backends like `common.rs`: metric rollups,
//! alert rules and events, reports, task-log queries and retention, and the full-text
//! search indexer. Instantiated per backend by [`impl_monitoring_store!`].

use serde_json::{Value, json};
use switchyard_core::monitoring::{MetricPoint, search_terms, search_words};

/// The settings key of the search indexer's cursor (the last task id it indexed).
pub(crate) const SEARCH_CURSOR_KEY: &str = "search.cursor";
/// Most bytes of text indexed per task.
const MAX_DOC_BYTES: usize = 64 * 1024;

pub(crate) fn points_json(points: &[MetricPoint]) -> String {
    Value::Array(
        points
            .iter()
            .map(|p| json!({"metric": p.metric, "agent": p.agent, "bucket": p.bucket, "value": p.value}))
            .collect(),
    )
    .to_string()
}

/// The subquery selecting the ids of tasks matching a full-text query (bound right after).
pub(crate) fn search_filter(dialect: &str) -> (&'static str, &'static str) {
    if dialect == "sqlite" {
        (
            "SELECT d.task_id FROM task_search JOIN task_search_docs AS d ON d.doc = task_search.rowid \
             WHERE task_search MATCH ",
            "",
        )
    } else {
        (
            "SELECT task_id FROM task_search WHERE doc @@ to_tsquery('simple', ",
            ")",
        )
    }
}

/// A full-text query in the dialect's syntax; `None` when the text has no words.
/// Terms are letters and digits only, so nothing in them is query syntax.
pub(crate) fn search_query(dialect: &str, text: &str) -> Option<String> {
    let terms = search_terms(text);
    if terms.is_empty() {
        return None;
    }
    Some(if dialect == "sqlite" {
        terms
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        terms.join(" & ")
    })
}

/// Appends the words of a JSON value (keys and values) to a document.
fn push_json_words(doc: &mut String, value: &Value) {
    match value {
        Value::Null => {}
        Value::Bool(b) => push_words(doc, if *b { "true" } else { "false" }),
        Value::Number(n) => {
            // Numbers are short: formatted on the stack, not into a fresh String.
            let mut buf = NumberText::default();
            let _ = std::fmt::Write::write_fmt(&mut buf, format_args!("{n}"));
            push_words(doc, buf.as_str());
        }
        Value::String(s) => push_words(doc, s),
        Value::Array(items) => items.iter().for_each(|v| push_json_words(doc, v)),
        Value::Object(map) => {
            for (k, v) in map {
                push_words(doc, k);
                push_json_words(doc, v);
            }
        }
    }
}

/// A JSON number's text (at most a few dozen characters; longer ones are cut, which
/// only shortens what is indexed of a number nobody searches by its 40th digit).
struct NumberText {
    buf: [u8; 40],
    len: usize,
}

impl Default for NumberText {
    fn default() -> Self {
        NumberText {
            buf: [0; 40],
            len: 0,
        }
    }
}

impl NumberText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for NumberText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Appends text reduced to lowercase words separated by spaces: both backends then
/// tokenize it identically. The same words as [`search_terms`] makes of a query.
pub(crate) fn push_words(doc: &mut String, text: &str) {
    for word in search_words(text) {
        // Most words are ASCII: lowercased in place, with no String of their own.
        let lower;
        let word = if word.is_ascii() {
            word
        } else {
            lower = word.to_lowercase();
            &lower
        };
        if doc.len() + word.len() + 1 > MAX_DOC_BYTES {
            return;
        }
        if !doc.is_empty() {
            doc.push(' ');
        }
        let start = doc.len();
        doc.push_str(word);
        // Changes ASCII letters only (a non-ASCII word is lowercase already).
        doc[start..].make_ascii_lowercase();
    }
}

/// The document of one task: agent, input, output, error and log lines.
pub(crate) fn task_document(
    agent: &str,
    input: &Value,
    output: Option<&Value>,
    error: Option<&Value>,
    logs: &[String],
) -> String {
    let mut doc = String::new();
    push_words(&mut doc, agent);
    push_json_words(&mut doc, input);
    if let Some(o) = output {
        push_json_words(&mut doc, o);
    }
    if let Some(e) = error {
        push_json_words(&mut doc, e);
    }
    for line in logs {
        push_words(&mut doc, line);
    }
    doc
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
    let sql = include_str!("../sql/common/report_latency.sql");
    let found: Vec<u64> = sql
        .lines()
        .filter_map(|l| l.split("<= ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|n| n.parse().ok())
        .collect();
    found == LATENCY_BUCKETS_MS
}

macro_rules! impl_monitoring_store {
    ($store:ident, $dialect:literal) => {
        mod monitoring_impl {
            use async_trait::async_trait;
            use serde_json::json;
            use switchyard_core::event::LogLevel;
            use switchyard_core::monitoring::*;
            use switchyard_core::store::{MonitoringStore, PoolStats, TaskLogLine};
            use switchyard_core::task::TaskStatus;
            use switchyard_core::{Error, Result, TaskId, Timestamp};
            use uuid::Uuid;

            use crate::batch::hex_id;
            use crate::common::sql;
            use crate::monitoring as m;
            use crate::rows::{Col, db_err};

            type Store = super::$store;
            type Db = crate::common::DbOf<super::$store>;
            type Row = <Db as sqlx::Database>::Row;

            fn rule(r: &Row) -> Result<AlertRule> {
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

            fn event(r: &Row) -> Result<AlertEvent> {
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

            impl Store {
                /// Reads tasks' log lines and writes their search documents.
                async fn write_documents(
                    &self,
                    rows: &[Row],
                    conn: &mut <Db as sqlx::Database>::Connection,
                ) -> Result<u64> {
                    if rows.is_empty() {
                        return Ok(0);
                    }
                    let mut tasks = Vec::with_capacity(rows.len());
                    for r in rows {
                        let status: TaskStatus = r.parsed("status")?;
                        tasks.push((
                            TaskId(r.uuid("id")?),
                            status.is_terminal(),
                            m::task_document(
                                &r.string("agent")?,
                                &r.content("input")?,
                                r.opt_content("output")?.as_ref(),
                                r.opt_content("error")?.as_ref(),
                                &[],
                            ),
                        ));
                    }
                    // Log lines count for finished tasks only (running ones are re-indexed
                    // when they finish).
                    let finished: Vec<serde_json::Value> = tasks
                        .iter()
                        .filter(|(_, complete, _)| *complete)
                        .map(|(id, _, _)| hex_id(&id.0).into())
                        .collect();
                    if !finished.is_empty() {
                        let logs = sqlx::query(sql!($dialect, "search_logs"))
                            .bind(serde_json::Value::Array(finished).to_string())
                            .fetch_all(&mut *conn)
                            .await
                            .map_err(db_err("search logs"))?;
                        let mut by_task: std::collections::HashMap<Uuid, Vec<String>> =
                            std::collections::HashMap::new();
                        for l in &logs {
                            by_task
                                .entry(l.uuid("task_id")?)
                                .or_default()
                                .push(crate::content::unescape_str(&l.string("message")?).into_owned());
                        }
                        for (id, _, doc) in tasks.iter_mut() {
                            if let Some(lines) = by_task.get(&id.0) {
                                for line in lines {
                                    m::push_words(doc, line);
                                }
                            }
                        }
                    }
                    let n = tasks.len() as u64;
                    if $dialect == "sqlite" {
                        let ids = serde_json::Value::Array(
                            tasks.iter().map(|(id, _, _)| hex_id(&id.0).into()).collect(),
                        )
                        .to_string();
                        sqlx::query(sql!("sqlite", "search_forget"))
                            .bind(&ids)
                            .execute(&mut *conn)
                            .await
                            .map_err(db_err("search forget"))?;
                        let docs = serde_json::Value::Array(
                            tasks
                                .iter()
                                .map(|(id, complete, _)| json!({"id": hex_id(&id.0), "complete": i32::from(*complete)}))
                                .collect(),
                        )
                        .to_string();
                        sqlx::query(sql!("sqlite", "search_docs"))
                            .bind(docs)
                            .execute(&mut *conn)
                            .await
                            .map_err(db_err("search docs"))?;
                        let bodies = serde_json::Value::Array(
                            tasks
                                .iter()
                                .map(|(id, _, body)| json!({"id": hex_id(&id.0), "body": body}))
                                .collect(),
                        )
                        .to_string();
                        sqlx::query(sql!("sqlite", "search_write"))
                            .bind(bodies)
                            .execute(&mut *conn)
                            .await
                            .map_err(db_err("search write"))?;
                    } else {
                        let docs = serde_json::Value::Array(
                            tasks
                                .iter()
                                .map(|(id, complete, body)| {
                                    json!({"id": hex_id(&id.0), "complete": complete, "body": body})
                                })
                                .collect(),
                        )
                        .to_string();
                        sqlx::query(sql!("postgres", "search_write"))
                            .bind(docs)
                            .execute(&mut *conn)
                            .await
                            .map_err(db_err("search write"))?;
                    }
                    Ok(n)
                }
            }

            #[async_trait]
            impl MonitoringStore for Store {
                async fn add_metric_points(&self, bucket_start: Timestamp, points: &[MetricPoint]) -> Result<()> {
                    if points.is_empty() {
                        return Ok(());
                    }
                    sqlx::query(sql!($dialect, "add_metric_points"))
                        .bind(m::points_json(points))
                        .bind(bucket_start.millis())
                        .execute(self.writer())
                        .await
                        .map_err(db_err("add metric points"))?;
                    Ok(())
                }

                async fn set_metric_gauges(&self, bucket_start: Timestamp, points: &[MetricPoint]) -> Result<()> {
                    if points.is_empty() {
                        return Ok(());
                    }
                    sqlx::query(sql!($dialect, "set_metric_gauges"))
                        .bind(m::points_json(points))
                        .bind(bucket_start.millis())
                        .execute(self.writer())
                        .await
                        .map_err(db_err("set metric gauges"))?;
                    Ok(())
                }

                async fn metric_rows(&self, q: &MetricRowQuery) -> Result<Vec<MetricRow>> {
                    if q.metrics.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut qb = sqlx::QueryBuilder::<Db>::new(
                        "SELECT bucket_start, metric, agent, bucket, value FROM metric_rollups WHERE resolution_s = ",
                    );
                    qb.push_bind(i64::from(q.resolution_s));
                    qb.push(" AND bucket_start >= ").push_bind(q.from.millis());
                    qb.push(" AND bucket_start < ").push_bind(q.to.millis());
                    qb.push(" AND metric IN (");
                    let mut list = qb.separated(", ");
                    for metric in &q.metrics {
                        list.push_bind(metric.clone());
                    }
                    list.push_unseparated(")");
                    if let Some(agent) = &q.agent {
                        qb.push(" AND agent = ").push_bind(agent.clone());
                    }
                    qb.push(" ORDER BY bucket_start, metric, agent, bucket");
                    let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err("metric rows"))?;
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
                    let gauges = serde_json::Value::from(series::GAUGES.to_vec()).to_string();
                    let mut tx = self.writer().begin().await.map_err(db_err("begin downsample"))?;
                    sqlx::query(sql!($dialect, "downsample_metrics"))
                        .bind(before.millis())
                        .bind(gauges)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err("downsample metrics"))?;
                    let done = sqlx::query(sql!("common", "prune_metrics"))
                        .bind(60i64)
                        .bind(before.millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err("drop folded metrics"))?;
                    tx.commit().await.map_err(db_err("commit downsample"))?;
                    Ok(done.rows_affected())
                }

                async fn prune_metrics(&self, resolution_s: u32, before: Timestamp) -> Result<u64> {
                    let done = sqlx::query(sql!("common", "prune_metrics"))
                        .bind(i64::from(resolution_s))
                        .bind(before.millis())
                        .execute(self.writer())
                        .await
                        .map_err(db_err("prune metrics"))?;
                    Ok(done.rows_affected())
                }

                async fn put_alert_rule(&self, r: &AlertRule) -> Result<()> {
                    let spec = serde_json::to_string(&r.spec).map_err(|e| Error::internal("encode rule", e))?;
                    let state = serde_json::to_string(&r.state).map_err(|e| Error::internal("encode rule state", e))?;
                    sqlx::query(sql!("common", "put_alert_rule"))
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
                    let row = sqlx::query(sql!("common", "get_alert_rule"))
                        .bind(id)
                        .fetch_optional(self.writer())
                        .await
                        .map_err(db_err("get alert rule"))?;
                    row.as_ref().map(rule).transpose()
                }

                async fn list_alert_rules(&self) -> Result<Vec<AlertRule>> {
                    let rows = sqlx::query(sql!("common", "list_alert_rules"))
                        .fetch_all(self.writer())
                        .await
                        .map_err(db_err("list alert rules"))?;
                    rows.iter().map(rule).collect()
                }

                async fn delete_alert_rule(&self, id: Uuid) -> Result<bool> {
                    let done = sqlx::query(sql!("common", "delete_alert_rule"))
                        .bind(id)
                        .execute(self.writer())
                        .await
                        .map_err(db_err("delete alert rule"))?;
                    Ok(done.rows_affected() > 0)
                }

                async fn save_alert_state(&self, id: Uuid, state: &AlertState) -> Result<()> {
                    let state = serde_json::to_string(state).map_err(|e| Error::internal("encode rule state", e))?;
                    sqlx::query(sql!("common", "save_alert_state"))
                        .bind(id)
                        .bind(state)
                        .execute(self.writer())
                        .await
                        .map_err(db_err("save alert state"))?;
                    Ok(())
                }

                async fn insert_alert_event(&self, e: &AlertEvent) -> Result<()> {
                    sqlx::query(sql!("common", "insert_alert_event"))
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
                    let mut qb = sqlx::QueryBuilder::<Db>::new("SELECT ");
                    qb.push(EVENT_COLUMNS).push(" FROM alert_events WHERE true");
                    if let Some(rule_id) = q.rule_id {
                        qb.push(" AND rule_id = ").push_bind(rule_id);
                    }
                    if let Some(before) = q.before_id {
                        qb.push(" AND id < ").push_bind(before);
                    }
                    qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(q.limit.max(1)));
                    let rows = qb.build().fetch_all(self.writer()).await.map_err(db_err("list alert events"))?;
                    rows.iter().map(event).collect()
                }

                async fn due_notifications(&self, now: Timestamp, limit: u32) -> Result<Vec<AlertEvent>> {
                    let rows = sqlx::query(sql!("common", "due_notifications"))
                        .bind(now.millis())
                        .bind(i64::from(limit))
                        .fetch_all(self.writer())
                        .await
                        .map_err(db_err("due notifications"))?;
                    rows.iter().map(event).collect()
                }

                async fn record_notification(&self, u: &NotifyUpdate) -> Result<()> {
                    sqlx::query(sql!("common", "record_notification"))
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
                    let done = sqlx::query(sql!("common", "prune_alert_events"))
                        .bind(before.millis())
                        .execute(self.writer())
                        .await
                        .map_err(db_err("prune alert events"))?;
                    Ok(done.rows_affected())
                }

                async fn agent_report(&self, from: Timestamp, to: Timestamp) -> Result<Vec<AgentReportRow>> {
                    let (lo, hi) = (task_id_floor(from).0, task_id_floor(to).0);
                    let rows = sqlx::query(sql!("common", "report_agents"))
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
                        });
                    }
                    let buckets = sqlx::query(sql!("common", "report_latency"))
                        .bind(lo)
                        .bind(hi)
                        .fetch_all(self.reader())
                        .await
                        .map_err(db_err("agent latency report"))?;
                    for r in &buckets {
                        let agent = r.string("agent")?;
                        let bucket = usize::try_from(r.i64("bucket")?).unwrap_or(0).min(HISTOGRAM_BUCKETS - 1);
                        if let Some(row) = out.iter_mut().find(|row| row.agent == agent) {
                            row.latency_buckets[bucket] += r.i64("n")?.max(0) as u64;
                        }
                    }
                    Ok(out)
                }

                async fn query_task_logs(&self, q: &LogQuery) -> Result<Vec<TaskLogLine>> {
                    let mut qb = sqlx::QueryBuilder::<Db>::new(
                        "SELECT task_id, seq, attempt, at, level, message FROM task_logs WHERE task_id = ",
                    );
                    qb.push_bind(q.task_id.0);
                    qb.push(" AND seq > ").push_bind(i64::try_from(q.after_seq).unwrap_or(i64::MAX));
                    if let Some(min) = q.min_level {
                        let levels: Vec<&str> = [LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error]
                            .into_iter()
                            .filter(|l| *l >= min)
                            .map(LogLevel::as_str)
                            .collect();
                        qb.push(" AND level IN (");
                        let mut list = qb.separated(", ");
                        for l in levels {
                            list.push_bind(l);
                        }
                        list.push_unseparated(")");
                    }
                    if let Some(text) = q.contains.as_deref().filter(|t| !t.is_empty()) {
                        qb.push(" AND lower(message) LIKE ")
                            .push_bind(m::contains_pattern(&crate::content::escape_str(text)))
                            .push(" ESCAPE '\\'");
                    }
                    qb.push(" ORDER BY seq LIMIT ").push_bind(i64::from(q.limit.max(1)));
                    let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err("query task logs"))?;
                    rows.iter()
                        .map(|r| {
                            Ok(TaskLogLine {
                                task_id: TaskId(r.uuid("task_id")?),
                                seq: r.i64("seq")? as u64,
                                attempt: r.u32("attempt")?,
                                at: r.ts("at")?,
                                level: r.parsed("level")?,
                                message: crate::content::unescape_str(&r.string("message")?).into_owned(),
                            })
                        })
                        .collect()
                }

                async fn prune_task_logs(&self, before: Timestamp) -> Result<u64> {
                    let done = sqlx::query(sql!("common", "prune_task_logs"))
                        .bind(task_id_floor(before).0)
                        .execute(self.writer())
                        .await
                        .map_err(db_err("prune task logs"))?;
                    Ok(done.rows_affected())
                }

                async fn index_tasks(&self, limit: u32) -> Result<u64> {
                    let limit = i64::from(limit.max(1));
                    let mut tx = self.writer().begin().await.map_err(db_err("begin search index"))?;
                    let cursor: Option<String> = sqlx::query_scalar(sql!("common", "get_setting"))
                        .bind(m::SEARCH_CURSOR_KEY)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err("search cursor"))?;
                    let cursor = cursor
                        .and_then(|c| Uuid::parse_str(&c).ok())
                        .unwrap_or(Uuid::nil());
                    let fresh = sqlx::query(sql!("common", "search_new_tasks"))
                        .bind(cursor)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_err("search new tasks"))?;
                    let mut written = self.write_documents(&fresh, &mut *tx).await?;
                    if let Some(last) = fresh.last() {
                        sqlx::query(sql!("common", "put_setting"))
                            .bind(m::SEARCH_CURSOR_KEY)
                            .bind(last.uuid("id")?.to_string())
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err("search cursor"))?;
                    }
                    let finished = sqlx::query(sql!($dialect, "search_finished"))
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_err("search finished tasks"))?;
                    written += self.write_documents(&finished, &mut *tx).await?;
                    tx.commit().await.map_err(db_err("commit search index"))?;
                    Ok(written)
                }

                fn pool_stats(&self) -> Vec<PoolStats> {
                    self.pools()
                }

                fn database_calls(&self) -> u64 {
                    self.calls.get()
                }
            }
        }
    };
}
pub(crate) use impl_monitoring_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_sql_uses_the_histogram_bounds() {
        assert!(report_latency_bounds_match());
    }

    #[test]
    fn documents_are_lowercase_words() {
        let doc = task_document(
            "echo",
            &json!({"Text": "Héllo, World!", "n": 42}),
            Some(&json!("done")),
            None,
            &["a log-line".to_owned()],
        );
        assert_eq!(doc, "echo text héllo world n 42 done a log line");
    }

    /// A document holds exactly the words a query of the same text looks for, whatever
    /// the script, case or word length.
    #[test]
    fn document_words_are_query_terms() {
        let long = "Ab".repeat(50);
        for text in [
            "Hello, wörld! a-b \"x",
            "ΟΔΥΣΣΕΥΣ und STRAẞE, İstanbul",
            long.as_str(),
            "ǅemal 12345 -3.5e21 TÜRKÇE",
        ] {
            let mut doc = String::new();
            push_words(&mut doc, text);
            let terms: Vec<String> = text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| w.chars().take(64).collect::<String>().to_lowercase())
                .collect();
            assert_eq!(doc, terms.join(" "), "{text}");
            assert!(
                search_terms(text)
                    .iter()
                    .all(|t| doc.split(' ').any(|w| w == t))
            );
        }
        let mut doc = String::new();
        push_json_words(
            &mut doc,
            &json!([1.5, -20, 12345678901234567890u64, true, null]),
        );
        assert_eq!(doc, "1 5 20 12345678901234567890 true");
    }

    #[test]
    fn queries_quote_terms_per_dialect() {
        assert_eq!(
            search_query("sqlite", "foo \"bar").as_deref(),
            Some("\"foo\" \"bar\"")
        );
        assert_eq!(
            search_query("postgres", "foo bar").as_deref(),
            Some("foo & bar")
        );
        assert_eq!(search_query("sqlite", "!!"), None);
        assert_eq!(contains_pattern("50%_x"), "%50\\%\\_x%");
    }
}
