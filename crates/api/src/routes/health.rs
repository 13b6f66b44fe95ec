use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` when every dependency answers; `degraded` (still 200) while the cache serves
    /// on its fallbacks (Redis unreachable: sessions from the database, cache misses);
    /// `unavailable` (503) when the database or the cache does not answer.
    pub status: &'static str,
    pub database: Check,
    pub cache: Check,
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

/// Liveness: the process is up.
#[utoipa::path(get, operation_id = "healthz", path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database and cache answer (200 also while degraded, 503 when not).
#[utoipa::path(get, operation_id = "readyz", path = "/readyz", tag = "system", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let engine = &state.engine;
    let timeout = std::time::Duration::from_secs(2);
    let check = |r: Result<switchyard_core::Result<()>, tokio::time::error::Elapsed>| match r {
        Ok(Ok(())) => (true, None),
        Ok(Err(e)) => (false, Some(e.message)),
        Err(_) => (false, Some("timed out".to_owned())),
    };
    let (db_ok, db_err) = check(tokio::time::timeout(timeout, engine.store.ping()).await);
    let (cache_ok, cache_err) = check(tokio::time::timeout(timeout, engine.cache.ping()).await);
    let degraded = engine.cache.degraded();
    let ok = db_ok && cache_ok;
    let status = match (ok, degraded.is_some()) {
        (false, _) => "unavailable",
        (true, true) => "degraded",
        (true, false) => "ok",
    };
    let body = Readiness {
        status,
        database: Check {
            backend: engine.store.backend(),
            ok: db_ok,
            error: db_err,
            degraded: None,
        },
        cache: Check {
            backend: engine.cache.backend(),
            ok: cache_ok,
            error: cache_err,
            degraded,
        },
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
