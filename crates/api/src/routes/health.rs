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
    /// `ok` when every dependency answers, `degraded` otherwise.
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
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database and cache answer.
#[utoipa::path(get, path = "/readyz", tag = "system", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
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
    let ok = db_ok && cache_ok;
    let body = Readiness {
        status: if ok { "ok" } else { "degraded" },
        database: Check {
            backend: engine.store.backend(),
            ok: db_ok,
            error: db_err,
        },
        cache: Check {
            backend: engine.cache.backend(),
            ok: cache_ok,
            error: cache_err,
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
