use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use switchyard_engine::Probe;
use utoipa::ToSchema;

use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` when every dependency answers; `degraded` (still 200) while the cache serves
    /// on its fallbacks (Redis unreachable: sessions from the database, cache misses) or
    /// file storage does not answer (tasks go on; uploads and downloads fail);
    /// `unavailable` (503) when the database or the cache does not answer.
    pub status: &'static str,
    pub database: Check,
    pub cache: Check,
    pub files: Check,
}

#[derive(Serialize, ToSchema)]
pub struct Check {
    pub backend: &'static str,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What runs on a fallback, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
}

impl From<Probe> for Check {
    fn from(p: Probe) -> Self {
        Check {
            backend: p.backend,
            ok: p.error.is_none(),
            error: p.error,
            degraded: p.degraded,
        }
    }
}

/// Liveness: the process is up.
#[utoipa::path(get, operation_id = "healthz", path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database and cache answer (200 also while degraded, 503 when not).
#[utoipa::path(get, operation_id = "readyz", path = "/readyz", tag = "system", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let switchyard_engine::Probes {
        database,
        cache,
        files,
    } = state.engine.probe(std::time::Duration::from_secs(2)).await;
    let ok = database.error.is_none() && cache.error.is_none();
    let status = match (ok, cache.degraded.is_some() || files.error.is_some()) {
        (false, _) => "unavailable",
        (true, true) => "degraded",
        (true, false) => "ok",
    };
    let body = Readiness {
        status,
        database: Check::from(database),
        cache: Check::from(cache),
        files: Check::from(files),
    };
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}
