//! What a run reports: the figures of one run, the summary of several, as JSON or tables.

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::BenchArgs;
use super::target::Target;

pub(super) fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |q: f64| (h.value_at_quantile(q) as f64) / 1_000.0;
    json!({ "p50": ms(0.50), "p95": ms(0.95), "p99": ms(0.99), "max": h.max() as f64 / 1_000.0 })
}

pub(super) fn base_report(
    target: &Target,
    args: &BenchArgs,
    mode: &str,
) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("mode".into(), mode.into());
    m.insert("backend".into(), target.backend.clone().into());
    m.insert(
        "cores".into(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .into(),
    );
    m.insert("tasks".into(), args.tasks.into());
    m.insert(
        "concurrency".into(),
        if args.latency {
            1.into()
        } else {
            args.concurrency.into()
        },
    );
    m.insert(
        "batch".into(),
        if args.latency {
            1.into()
        } else {
            args.batch.into()
        },
    );
    m.insert("agent".into(), args.agent.clone().into());
    m
}

pub(super) fn mb(bytes: u64) -> f64 {
    (bytes as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0
}

/// Median and min–max of each figure over the runs.
pub(super) fn summarize(reports: &[Value]) -> Value {
    let stat = |f: &dyn Fn(&Value) -> f64| {
        let mut v: Vec<f64> = reports.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        json!({ "median": v[v.len() / 2], "min": v[0], "max": v[v.len() - 1] })
    };
    let mut m = reports[0].as_object().cloned().unwrap_or_default();
    for k in ["seconds", "throughput_per_s", "submit_per_s", "latency_ms"] {
        m.remove(k);
    }
    m.insert(
        "mode".into(),
        format!("{} summary", reports[0]["mode"].as_str().unwrap_or("?")).into(),
    );
    m.insert("runs".into(), reports.len().into());
    m.insert(
        "throughput_per_s".into(),
        stat(&|r| r["throughput_per_s"].as_f64().unwrap_or(0.0)),
    );
    m.insert(
        "submit_per_s".into(),
        stat(&|r| r["submit_per_s"].as_f64().unwrap_or(0.0)),
    );
    m.insert(
        "latency_p50_ms".into(),
        stat(&|r| r["latency_ms"]["p50"].as_f64().unwrap_or(0.0)),
    );
    m.insert(
        "latency_p99_ms".into(),
        stat(&|r| r["latency_ms"]["p99"].as_f64().unwrap_or(0.0)),
    );
    Value::Object(m)
}

pub(super) fn print_summary(s: &Value) {
    println!("switchyard bench — median of {} runs (min–max)", s["runs"]);
    for (label, key, digits) in [
        ("throughput tasks/s", "throughput_per_s", 0),
        ("submit rate tasks/s", "submit_per_s", 0),
        ("latency p50 ms", "latency_p50_ms", 3),
        ("latency p99 ms", "latency_p99_ms", 3),
    ] {
        let f = |k: &str| s[key][k].as_f64().unwrap_or(0.0);
        println!(
            "  {label:<20} {:.digits$}   ({:.digits$} – {:.digits$})",
            f("median"),
            f("min"),
            f("max")
        );
    }
}

pub(super) fn print_table(report: &Value) {
    let lat = &report["latency_ms"];
    println!(
        "switchyard bench — {} mode",
        report["mode"].as_str().unwrap_or("?")
    );
    println!(
        "  backend           {}",
        report["backend"].as_str().unwrap_or("?")
    );
    println!("  cores             {}", report["cores"]);
    println!("  tasks             {}", report["tasks"]);
    println!("  concurrency       {}", report["concurrency"]);
    println!("  batch             {}", report["batch"]);
    println!(
        "  seconds           {:.3}",
        report["seconds"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  throughput        {:.0} tasks/s (submit → completion, end to end)",
        report["throughput_per_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  submit rate       {:.0} tasks/s",
        report["submit_per_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  latency (ms)      p50 {:.3}   p95 {:.3}   p99 {:.3}   max {:.3}",
        lat["p50"].as_f64().unwrap_or(0.0),
        lat["p95"].as_f64().unwrap_or(0.0),
        lat["p99"].as_f64().unwrap_or(0.0),
        lat["max"].as_f64().unwrap_or(0.0)
    );
}
