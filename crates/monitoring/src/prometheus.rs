//! The Prometheus text exposition format (version 0.0.4), written by hand: a handful of
//! families, each with HELP and TYPE, counters ending in `_total`, latencies in seconds.

use std::fmt::Write;

use switchyard_core::monitoring::LATENCY_BUCKETS_MS;
use switchyard_core::store::{AgentQueueStats, PoolStats};

use super::metrics::{HistogramSnapshot, METHODS, Metrics, OUTCOMES};
use super::process::ProcessStats;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let mut cumulative = 0u64;
        let bucket = format!("{name}_bucket");
        for (i, count) in h.counts.iter().enumerate() {
            cumulative += count;
            let le = match LATENCY_BUCKETS_MS.get(i) {
                Some(ms) => number(*ms as f64 / 1_000.0),
                None => "+Inf".to_owned(),
            };
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum_ms as f64 / 1_000.0);
        self.sample(&format!("{name}_count"), labels, cumulative as f64);
    }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// What `/metrics` shows beyond the in-process counters.
pub struct Scrape<'a> {
    pub metrics: &'a Metrics,
    pub queues: &'a [AgentQueueStats],
    pub now_ms: i64,
    pub pools: &'a [PoolStats],
    pub process: &'a ProcessStats,
    pub builtin_workers: i64,
    pub event_subscribers: usize,
    pub alerts_firing: usize,
    /// The newest successful backup, if any.
    pub last_backup: Option<&'a switchyard_core::backup::BackupRecord>,
    pub version: &'a str,
}

pub fn render(s: &Scrape<'_>) -> String {
    let mut w = Writer {
        out: String::with_capacity(16 * 1024),
    };
    let agents = s.metrics.agent_snapshots();

    w.family(
        "switchyard_build_info",
        "gauge",
        "Always 1; the version as a label.",
    );
    w.sample("switchyard_build_info", &[("version", s.version)], 1.0);

    type Counter = fn(&super::metrics::AgentSnapshot) -> u64;
    let counters: [(&str, &str, Counter); 6] = [
        (
            "switchyard_tasks_submitted_total",
            "Tasks created (submitted, fallbacks, cache hits), by agent.",
            |a| a.submitted,
        ),
        (
            "switchyard_tasks_started_total",
            "Attempts started (claimed by a worker), by agent.",
            |a| a.started,
        ),
        (
            "switchyard_task_retries_total",
            "Failed attempts that were retried after a backoff, by agent.",
            |a| a.retries,
        ),
        (
            "switchyard_task_fallbacks_total",
            "Tasks that failed for good and were handed to their fallback agent, by agent.",
            |a| a.fallbacks,
        ),
        (
            "switchyard_cache_hits_total",
            "Submissions answered from the result cache, by agent.",
            |a| a.cache_hits,
        ),
        (
            "switchyard_cache_misses_total",
            "Result-cache lookups that found nothing, by agent.",
            |a| a.cache_misses,
        ),
    ];
    for (name, help, get) in counters {
        w.family(name, "counter", help);
        for (agent, a) in &agents {
            w.sample(name, &[("agent", agent)], get(a) as f64);
        }
    }
    w.family(
        "switchyard_tasks_finished_total",
        "counter",
        "Tasks that reached a final state, by agent and outcome (failed: handed to a fallback).",
    );
    for (agent, a) in &agents {
        for (i, outcome) in OUTCOMES.iter().enumerate() {
            w.sample(
                "switchyard_tasks_finished_total",
                &[("agent", agent), ("outcome", outcome.as_str())],
                a.finished[i] as f64,
            );
        }
    }
    type Hist = fn(&super::metrics::AgentSnapshot) -> &HistogramSnapshot;
    let histograms: [(&str, &str, Hist); 3] = [
        (
            "switchyard_task_wait_seconds",
            "Time from runnable to claimed, per attempt, by agent.",
            |a| &a.wait,
        ),
        (
            "switchyard_task_run_seconds",
            "Time from claim to the attempt's result, by agent.",
            |a| &a.run,
        ),
        (
            "switchyard_task_latency_seconds",
            "End to end: submission to final state, by agent.",
            |a| &a.e2e,
        ),
    ];
    for (name, help, get) in histograms {
        w.family(name, "histogram", help);
        for (agent, a) in &agents {
            w.histogram(name, &[("agent", agent)], get(a));
        }
    }

    w.family(
        "switchyard_queue_depth",
        "gauge",
        "Tasks waiting, by agent and state (ready: runnable now; scheduled: delayed or backing off). The same on every server.",
    );
    for q in s.queues {
        w.sample(
            "switchyard_queue_depth",
            &[("agent", &q.agent), ("state", "ready")],
            q.ready as f64,
        );
        w.sample(
            "switchyard_queue_depth",
            &[("agent", &q.agent), ("state", "scheduled")],
            q.scheduled as f64,
        );
    }
    w.family(
        "switchyard_tasks_running",
        "gauge",
        "Tasks running now, by agent. The same on every server.",
    );
    for q in s.queues {
        w.sample(
            "switchyard_tasks_running",
            &[("agent", &q.agent)],
            q.running as f64,
        );
    }
    w.family(
        "switchyard_queue_oldest_task_age_seconds",
        "gauge",
        "Age of the oldest runnable task, by agent (0 when none waits).",
    );
    for q in s.queues {
        let age = q
            .oldest_ready_at
            .map_or(0.0, |t| (s.now_ms - t.millis()).max(0) as f64 / 1_000.0);
        w.sample(
            "switchyard_queue_oldest_task_age_seconds",
            &[("agent", &q.agent)],
            age,
        );
    }

    let routes = s.metrics.routes();
    w.family(
        "switchyard_http_requests_total",
        "counter",
        "HTTP requests, by route template, method and status.",
    );
    for (route, r) in &routes {
        for (i, m) in r.methods.iter().enumerate() {
            for (status, n) in m.statuses() {
                w.sample(
                    "switchyard_http_requests_total",
                    &[
                        ("route", route),
                        ("method", METHODS[i]),
                        ("status", &status.to_string()),
                    ],
                    n as f64,
                );
            }
        }
    }
    w.family(
        "switchyard_http_request_duration_seconds",
        "histogram",
        "HTTP request latency until the response head, by route template and method.",
    );
    for (route, r) in &routes {
        for (i, m) in r.methods.iter().enumerate() {
            let h = m.latency.snapshot();
            if h.count() > 0 {
                w.histogram(
                    "switchyard_http_request_duration_seconds",
                    &[("route", route), ("method", METHODS[i])],
                    &h,
                );
            }
        }
    }

    use std::sync::atomic::Ordering::Relaxed;
    w.family(
        "switchyard_http_connections",
        "gauge",
        "Open HTTP connections to this server, upgraded WebSockets included.",
    );
    w.sample(
        "switchyard_http_connections",
        &[],
        s.metrics.http_connections.load(Relaxed) as f64,
    );
    w.family(
        "switchyard_http_max_connections",
        "gauge",
        "The most HTTP connections this server keeps open (server.max_connections).",
    );
    w.sample(
        "switchyard_http_max_connections",
        &[],
        s.metrics.http_max_connections.load(Relaxed) as f64,
    );
    w.family(
        "switchyard_http_connection_limit_reached_total",
        "counter",
        "Times all server.max_connections connection slots were taken, so new connections waited in the listen backlog.",
    );
    w.sample(
        "switchyard_http_connection_limit_reached_total",
        &[],
        s.metrics.http_connection_limit_reached.load(Relaxed) as f64,
    );
    w.family(
        "switchyard_audit_write_failures_total",
        "counter",
        "Audit entries this server could not write; the actions were done without them (docs/audit.md).",
    );
    w.sample(
        "switchyard_audit_write_failures_total",
        &[],
        s.metrics.audit_write_failures.load(Relaxed) as f64,
    );
    w.family(
        "switchyard_websocket_connections",
        "gauge",
        "Open WebSocket connections to this server, by kind.",
    );
    w.sample(
        "switchyard_websocket_connections",
        &[("kind", "client")],
        s.metrics.ws_clients.load(Relaxed) as f64,
    );
    w.sample(
        "switchyard_websocket_connections",
        &[("kind", "worker")],
        s.metrics.ws_workers.load(Relaxed) as f64,
    );
    w.family(
        "switchyard_sse_streams",
        "gauge",
        "Open Server-Sent Event streams on this server.",
    );
    w.sample(
        "switchyard_sse_streams",
        &[],
        s.metrics.sse_streams.load(Relaxed) as f64,
    );
    w.family(
        "switchyard_event_subscribers",
        "gauge",
        "Live task-event subscribers on this server (SSE, WebSocket, ?wait).",
    );
    w.sample(
        "switchyard_event_subscribers",
        &[],
        s.event_subscribers as f64,
    );
    w.family(
        "switchyard_workers_connected",
        "gauge",
        "Workers taking tasks through this server: its built-in runtime and connected remote workers.",
    );
    w.sample(
        "switchyard_workers_connected",
        &[("kind", "builtin")],
        s.builtin_workers as f64,
    );
    w.sample(
        "switchyard_workers_connected",
        &[("kind", "remote")],
        s.metrics.ws_workers.load(Relaxed) as f64,
    );

    w.family(
        "switchyard_db_pool_connections",
        "gauge",
        "Database connections of this process, by pool and state.",
    );
    for p in s.pools {
        let idle = f64::from(p.idle.min(p.size));
        w.sample(
            "switchyard_db_pool_connections",
            &[("pool", p.pool), ("state", "idle")],
            idle,
        );
        w.sample(
            "switchyard_db_pool_connections",
            &[("pool", p.pool), ("state", "in_use")],
            f64::from(p.size) - idle,
        );
    }
    w.family(
        "switchyard_db_pool_max_connections",
        "gauge",
        "Most connections each pool opens.",
    );
    for p in s.pools {
        w.sample(
            "switchyard_db_pool_max_connections",
            &[("pool", p.pool)],
            f64::from(p.max),
        );
    }
    w.family(
        "switchyard_alerts_firing",
        "gauge",
        "Alert rules firing now.",
    );
    w.sample("switchyard_alerts_firing", &[], s.alerts_firing as f64);

    if let Some(b) = s.last_backup {
        w.family(
            "switchyard_backup_last_success_timestamp_seconds",
            "gauge",
            "When the newest successful backup finished (Unix time).",
        );
        let at = b.finished_at.unwrap_or(b.started_at).millis() as f64 / 1_000.0;
        w.sample("switchyard_backup_last_success_timestamp_seconds", &[], at);
        w.family(
            "switchyard_backup_last_size_bytes",
            "gauge",
            "Size of the newest successful backup's archive.",
        );
        let size = b.size_bytes.unwrap_or(0) as f64;
        w.sample("switchyard_backup_last_size_bytes", &[], size);
    }

    let p = s.process;
    if let Some(rss) = p.resident_bytes {
        w.family(
            "switchyard_process_resident_memory_bytes",
            "gauge",
            "Resident memory of this process.",
        );
        w.sample("switchyard_process_resident_memory_bytes", &[], rss as f64);
    }
    if let Some(vms) = p.virtual_bytes {
        w.family(
            "switchyard_process_virtual_memory_bytes",
            "gauge",
            "Virtual memory of this process.",
        );
        w.sample("switchyard_process_virtual_memory_bytes", &[], vms as f64);
    }
    if let Some(cpu) = p.cpu_seconds {
        w.family(
            "switchyard_process_cpu_seconds_total",
            "counter",
            "CPU time (user and system) of this process.",
        );
        w.sample("switchyard_process_cpu_seconds_total", &[], cpu);
    }
    if let Some(fds) = p.open_fds {
        w.family(
            "switchyard_process_open_fds",
            "gauge",
            "Open file descriptors of this process.",
        );
        w.sample("switchyard_process_open_fds", &[], fds as f64);
    }
    w.family(
        "switchyard_process_start_time_seconds",
        "gauge",
        "Start time of this process, in seconds since the Unix epoch.",
    );
    w.sample(
        "switchyard_process_start_time_seconds",
        &[],
        s.metrics.started_at.millis() as f64 / 1_000.0,
    );
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn numbers_are_prometheus_numbers() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.0025), "0.0025");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}
