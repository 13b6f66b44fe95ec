//! Structured logs on stdout (JSON lines by default, human-readable for `dev`; on stderr
//! for commands whose stdout is their result), and
//! optionally the spans (HTTP request → submit → run) exported over OTLP/HTTP.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, filter};

use crate::config::{LogFormat, TelemetryConfig};

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Where the log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTo {
    /// The server's own output.
    Stdout,
    /// Commands whose standard output is their result (`bench --json`, `apikey create`,
    /// …): their logs must not land in it.
    Stderr,
}

pub fn init(config: &TelemetryConfig, to: LogTo) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log_level).map_err(|e| {
        anyhow::anyhow!(
            "telemetry.log_level {:?} is not a valid filter: {e}",
            config.log_level
        )
    })?;
    let logs = match to {
        LogTo::Stdout => log_layer(config.log_format, filter, std::io::stdout),
        LogTo::Stderr => log_layer(config.log_format, filter, std::io::stderr),
    };
    let mut layers = vec![logs];
    if let Some(endpoint) = &config.otlp_endpoint
        && PROVIDER.get().is_none()
    {
        layers.push(otlp_layer(endpoint, &config.service_name)?);
    }
    // A second init (tests, embedded bench) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(())
}

fn log_layer<W>(format: LogFormat, filter: EnvFilter, writer: W) -> BoxedLayer
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    }
}

/// Spans of Switchyard's own crates (including the debug-level task spans) and
/// everything at info or above, batched to `<endpoint>/v1/traces`.
fn otlp_layer(endpoint: &str, service: &str) -> anyhow::Result<BoxedLayer> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()
        .map_err(|e| anyhow::anyhow!("telemetry.otlp_endpoint {endpoint:?}: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let tracer = provider.tracer("switchyard");
    let _ = PROVIDER.set(provider);
    let spans = filter::filter_fn(|m| {
        *m.level() <= Level::INFO || (m.is_span() && m.target().starts_with("switchyard"))
    });
    Ok(tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(spans)
        .boxed())
}

/// Sends the spans still buffered (at shutdown).
pub async fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let provider = provider.clone();
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}
