//! Structured logs on stdout: JSON lines by default, human-readable for `dev`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, TelemetryConfig};

pub fn init(config: &TelemetryConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log_level).map_err(|e| {
        anyhow::anyhow!(
            "telemetry.log_level {:?} is not a valid filter: {e}",
            config.log_level
        )
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().compact())
            .try_init(),
    };
    // A second init (tests, embedded bench) keeps the first subscriber.
    let _ = result;
    Ok(())
}
