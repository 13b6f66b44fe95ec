pub mod agents;
pub mod agents_csv;

use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// Start of the period (tasks submitted from then on): RFC 3339 or Unix seconds.
    /// Default: 24 hours before `to`.
    pub from: Option<String>,
    /// End of the period: RFC 3339 or Unix seconds. Default: now.
    pub to: Option<String>,
}

pub const DEFAULT_SPAN_MS: u64 = 86_400_000;
