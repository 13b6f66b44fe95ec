//! Switchyard's HTTP API (the Controllers layer).
//!
//! Handlers are thin: they parse the request into domain types with the extractors in
//! [`extract`] (which also authenticate and check the route's permission), call one
//! engine service, and map the result to a response. Errors become the JSON body in
//! [`error`]. Every handler carries its OpenAPI annotation; the document is served at
//! `/api/openapi.json` and browsable at `/api/docs`.

pub mod body_limits;
pub mod client_addr;
pub mod connections;
pub mod error;
pub mod extract;
pub mod follow;
pub mod http_metrics;
pub mod openapi;
pub mod request_id;
pub mod routes;
pub mod sse;
pub mod views;
pub mod ws;

pub use connections::{ConnectionSettings, serve};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use serde::{Deserialize, Serialize};
use switchyard_core::ErrorCode;
use switchyard_engine::Engine;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;

/// HTTP server settings (`[server]` in the config file, `SWITCHYARD__SERVER__*`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes. A request that announces a larger
    /// `Content-Length` is refused before its body is read (and before `100 Continue`).
    pub body_limit_bytes: usize,
    /// How long a client has to send a whole request head, counted from its first byte
    /// (on a new connection, from the connection), in milliseconds.
    pub header_read_timeout_ms: u64,
    /// How long a keep-alive connection may sit idle between requests, in milliseconds.
    /// Keep it above the idle timeout of a proxy in front (NGINX keeps upstream
    /// connections 60 s), or the proxy may reuse a connection as it is being closed.
    pub idle_timeout_ms: u64,
    /// How long a request body may take to arrive, counted from the request head, in
    /// milliseconds; a body still incomplete then is answered `408`. Only reading the
    /// body counts: a handler may work (a `?wait=` long poll) as long as it needs.
    pub body_read_timeout_ms: u64,
    /// Most HTTP connections open at once (upgraded WebSockets and SSE streams
    /// included); further connections wait in the listen backlog until one closes.
    /// Unset: derived from the open-file limit, which start-up raises to its maximum.
    pub max_connections: Option<usize>,
    /// Origins allowed to call the API from a browser. Empty: CORS off.
    pub cors_origins: Vec<String>,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client.
    /// Empty: the client is the TCP peer, and the header is ignored (anyone can write it).
    pub trusted_proxies: Vec<client_addr::TrustedProxy>,
    /// Events buffered per live subscriber before it counts as too slow. One commit
    /// publishes a whole group's events at once (up to two per task of a
    /// `queue.max_write_batch` group, and a claim's running events), so this must be
    /// well above that burst, or a subscriber that keeps up is dropped by one burst.
    /// The buffer is allocated as it fills: an idle subscriber costs the same either way.
    pub subscriber_buffer: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 1024 * 1024,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 75_000,
            body_read_timeout_ms: 60_000,
            max_connections: None,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            subscriber_buffer: 16_384,
        }
    }
}

/// What every handler and middleware gets: one shared allocation, so that handing it to
/// each of them (axum clones the state per request and per layer) is one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub engine: Arc<Engine>,
    pub config: ServerConfig,
    /// Cancelled when the server starts shutting down: long-lived streams end.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl AppState {
    pub fn new(
        engine: Arc<Engine>,
        config: ServerConfig,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        AppState(Arc::new(Shared {
            engine,
            config,
            shutdown,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::complete(routes::router().split_for_parts().1)
}

/// The whole HTTP application. `ui` serves every path outside `/api` (the web UI).
pub fn app(state: AppState, ui: Option<Router>) -> Router {
    let (api, openapi) = routes::router().split_for_parts();
    let openapi = openapi::complete(openapi);
    let docs = utoipa_swagger_ui::SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi);
    let mut app = Router::new()
        .merge(api)
        .route("/api/{*rest}", axum::routing::any(route_not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .merge(docs);
    app = match ui {
        Some(ui) => app.fallback_service(ui),
        None => app.fallback(route_not_found),
    };
    // Inside the router's layers, where the matched route template is known.
    app = app.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        http_metrics::middleware,
    ));
    // Everything else wraps the router once, from outside: `Router::layer` applies a layer
    // to every route separately, and each layer so applied is one more boxed service to
    // clone and one more boxed future on every request. CORS is left out entirely while it
    // is off, and the request span of `request_id` is the one span per request.
    let stack = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(request_id::middleware))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::new(ErrorCode::Internal, "panic").into_response_with_log()
        }))
        .option_layer(cors_layer(&state.config.cors_origins))
        .layer(axum::middleware::from_fn_with_state(
            body_limits::BodyLimits {
                max_bytes: state.config.body_limit_bytes,
                read_timeout: Duration::from_millis(state.config.body_read_timeout_ms),
                upload_max_bytes: state.engine.files().config().max_bytes,
                upload_timeout: Duration::from_secs(state.engine.files().config().upload_timeout_s),
            },
            body_limits::middleware,
        ))
        .layer(CompressionLayer::new().compress_when(DefaultPredicate::new().and(NotRanged)))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.body_limit_bytes,
        ))
        .service(app);
    Router::new().fallback_service(stack)
}

/// Responses that offer byte ranges (file content) go out as stored: a range, an
/// `ETag` and a `Content-Length` all refer to the bytes themselves.
#[derive(Clone, Copy)]
struct NotRanged;

impl Predicate for NotRanged {
    fn should_compress<B: http_body::Body>(&self, response: &axum::http::Response<B>) -> bool {
        !response.headers().contains_key(header::ACCEPT_RANGES)
    }
}

/// The CORS layer for the configured browser origins; none (CORS off) without any.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("idempotency-key"),
        ]);
    Some(layer)
}

async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::RouteNotFound,
        format!("no such endpoint: {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not supported on {}", uri.path()),
    )
}

impl ApiError {
    fn into_response_with_log(self) -> axum::response::Response {
        tracing::error!("a request handler panicked");
        axum::response::IntoResponse::into_response(self)
    }
}
