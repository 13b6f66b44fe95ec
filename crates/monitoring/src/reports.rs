//! Per-agent reports over a period, computed from the tasks table (exact counts; latency
//! percentiles from the submit → finish histogram), as JSON or CSV, and the daily report
//! delivered by webhook.

use serde::Serialize;
use serde_json::json;
use switchyard_core::monitoring::{AgentReportRow, quantile};
use switchyard_core::{Error, Result, Timestamp};
use utoipa::ToSchema;

use super::Monitoring;

/// Longest period one report covers.
pub const MAX_REPORT_DAYS: u64 = 366;

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AgentReport {
    pub agent: String,
    /// Tasks submitted in the period.
    pub tasks: u64,
    pub succeeded: u64,
    /// Failed for good and handed to a fallback agent.
    pub failed: u64,
    /// Failed for good with no fallback.
    pub dead: u64,
    pub cancelled: u64,
    /// Not finished yet (queued, running, retrying).
    pub unfinished: u64,
    /// Succeeded / finished, 0-1; absent when none finished.
    pub success_rate: Option<f64>,
    /// Submit → finish, milliseconds, over the finished tasks.
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Attempts beyond each task's first.
    pub retries: u64,
    pub fallbacks: u64,
    /// Tasks answered from the result cache.
    pub cached: u64,
    /// Cached / tasks, 0-1; absent when there were no tasks.
    pub cache_hit_rate: Option<f64>,
    /// Language-model tokens used (prompt and completion) by the succeeded tasks whose
    /// output reports `usage` (the `llm` kind); absent when none did.
    pub tokens: Option<u64>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// What those tokens cost, in the currency of the agent's `price_per_1k_tokens`;
    /// absent when no task had prices.
    pub cost: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Report {
    pub from: Timestamp,
    pub to: Timestamp,
    pub agents: Vec<AgentReport>,
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

impl From<AgentReportRow> for AgentReport {
    fn from(r: AgentReportRow) -> Self {
        let finished = r.succeeded + r.failed + r.dead + r.cancelled;
        let ratio = |n: u64, d: u64| (d > 0).then(|| round(n as f64 / d as f64, 4));
        let p = |q: f64| quantile(&r.latency_buckets, q).map(|v| round(v, 1));
        AgentReport {
            unfinished: r.tasks.saturating_sub(finished),
            success_rate: ratio(r.succeeded, finished),
            latency_p50_ms: p(0.50),
            latency_p95_ms: p(0.95),
            latency_p99_ms: p(0.99),
            cache_hit_rate: ratio(r.cached, r.tasks),
            tokens: r
                .usage
                .as_ref()
                .map(|u| u.prompt_tokens + u.completion_tokens),
            prompt_tokens: r.usage.as_ref().map(|u| u.prompt_tokens),
            completion_tokens: r.usage.as_ref().map(|u| u.completion_tokens),
            cost: r.usage.as_ref().and_then(|u| u.cost).map(|c| round(c, 6)),
            agent: r.agent,
            tasks: r.tasks,
            succeeded: r.succeeded,
            failed: r.failed,
            dead: r.dead,
            cancelled: r.cancelled,
            retries: r.retries,
            fallbacks: r.fallbacks,
            cached: r.cached,
        }
    }
}

impl Monitoring {
    pub async fn report(&self, from: Timestamp, to: Timestamp) -> Result<Report> {
        if to <= from {
            return Err(Error::invalid_parameter("`to` must be after `from`"));
        }
        if to.since(from) > MAX_REPORT_DAYS * 86_400_000 {
            return Err(Error::invalid_parameter(format!(
                "a report covers at most {MAX_REPORT_DAYS} days"
            )));
        }
        let rows = self.store.agent_report(from, to).await?;
        Ok(Report {
            from,
            to,
            agents: rows.into_iter().map(AgentReport::from).collect(),
        })
    }

    /// Sends the daily report once per day (UTC) after `daily_report_hour_utc`; the day
    /// sent is remembered in the database, so a failover does not send it twice.
    pub async fn daily_report(&self, now: Timestamp) -> Result<()> {
        let Some(url) = self.config.daily_report_webhook_url.clone() else {
            return Ok(());
        };
        let day = now.millis().div_euclid(86_400_000);
        let hour = now.millis().rem_euclid(86_400_000) / 3_600_000;
        if hour < i64::from(self.config.daily_report_hour_utc) {
            return Ok(());
        }
        const KEY: &str = "monitoring.daily_report_day";
        let sent = self.store.get_setting(KEY).await?;
        if sent.as_deref() == Some(day.to_string().as_str()) {
            return Ok(());
        }
        let report = self.report(now.minus_ms(86_400_000), now).await?;
        let mut text = format!(
            "📊 Switchyard daily report ({} → {})",
            report.from, report.to
        );
        for a in &report.agents {
            text.push_str(&format!(
                "\n• {}: {} tasks, {} succeeded, p95 {} ms, {} retries, {} fallbacks",
                a.agent,
                a.tasks,
                a.success_rate
                    .map_or("n/a".to_owned(), |r| format!("{:.1}%", r * 100.0)),
                a.latency_p95_ms
                    .map_or("n/a".to_owned(), |v| format!("{v:.0}")),
                a.retries,
                a.fallbacks
            ));
        }
        match self
            .post_json(&url, &json!({ "text": text, "report": report }))
            .await
        {
            Ok(()) => self.store.put_setting(KEY, &day.to_string()).await,
            Err(f) => {
                tracing::warn!(error = %f.message, "could not deliver the daily report; retrying later");
                Ok(())
            }
        }
    }
}

/// A CSV field, quoted when it needs to be.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

pub fn csv(report: &Report) -> String {
    let mut out = String::from(
        "agent,tasks,succeeded,failed,dead,cancelled,unfinished,success_rate,latency_p50_ms,\
         latency_p95_ms,latency_p99_ms,retries,fallbacks,cached,cache_hit_rate,tokens,\
         prompt_tokens,completion_tokens,cost\n",
    );
    for a in &report.agents {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            field(&a.agent),
            a.tasks,
            a.succeeded,
            a.failed,
            a.dead,
            a.cancelled,
            a.unfinished,
            opt(a.success_rate),
            opt(a.latency_p50_ms),
            opt(a.latency_p95_ms),
            opt(a.latency_p99_ms),
            a.retries,
            a.fallbacks,
            a.cached,
            opt(a.cache_hit_rate),
            a.tokens.map(|t| t.to_string()).unwrap_or_default(),
            a.prompt_tokens.map(|t| t.to_string()).unwrap_or_default(),
            a.completion_tokens
                .map(|t| t.to_string())
                .unwrap_or_default(),
            opt(a.cost),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::monitoring::{HISTOGRAM_BUCKETS, UsageTotals, latency_bucket};

    #[test]
    fn rates_and_percentiles_from_rows() {
        let mut buckets = vec![0; HISTOGRAM_BUCKETS];
        buckets[latency_bucket(80)] = 4;
        let r = AgentReport::from(AgentReportRow {
            agent: "a,b".into(),
            tasks: 5,
            succeeded: 3,
            dead: 1,
            cached: 1,
            latency_buckets: buckets,
            usage: Some(UsageTotals {
                tasks: 3,
                prompt_tokens: 30,
                completion_tokens: 12,
                cost: Some(0.123_456_789),
            }),
            ..Default::default()
        });
        assert_eq!(r.unfinished, 1);
        assert_eq!(
            (r.tokens, r.prompt_tokens, r.completion_tokens, r.cost),
            (Some(42), Some(30), Some(12), Some(0.123457))
        );
        assert_eq!(r.success_rate, Some(0.75));
        assert_eq!(r.cache_hit_rate, Some(0.2));
        assert_eq!(r.latency_p50_ms, Some(75.0));
        let text = csv(&Report {
            from: Timestamp::from_millis(0),
            to: Timestamp::from_millis(1),
            agents: vec![r],
        });
        let line = text.lines().nth(1).unwrap();
        assert!(line.starts_with("\"a,b\",5,3,0,1,0,1,0.75,75,"), "{line}");
        assert_eq!(
            text.lines().next().unwrap().split(',').count(),
            line.split(',').count() - 1
        );
    }
}
