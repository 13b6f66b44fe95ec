//! The web UI, built by Vite into `web/dist` and embedded in the binary.
//!
//! Hashed assets are cached forever; `index.html` is always revalidated; unknown paths
//! outside `/api` get `index.html` so the client-side router can take them.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, Uri, header};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Assets;

const NOT_BUILT: &str = "<!doctype html><title>Switchyard</title>\
<p>This binary was built without the web UI. Build it with <code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code> \
and rebuild, or use the API at <a href=\"/api/docs\">/api/docs</a>.</p>";

pub fn router() -> Router {
    Router::new().fallback(serve)
}

pub fn is_built() -> bool {
    Assets::get("index.html").is_some()
}

async fn serve(uri: Uri) -> Response<Body> {
    let path = uri.path().trim_start_matches('/');
    if let Some(file) = (!path.is_empty()).then(|| Assets::get(path)).flatten() {
        let mime = mime_guess::from_path(path).first_or_octet_stream();
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return response(StatusCode::OK, file.data.into_owned(), mime.as_ref(), cache);
    }
    let looks_like_file = path
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'));
    if looks_like_file {
        return response(
            StatusCode::NOT_FOUND,
            b"not found".to_vec(),
            "text/plain",
            "no-cache",
        );
    }
    match Assets::get("index.html") {
        Some(index) => response(
            StatusCode::OK,
            index.data.into_owned(),
            "text/html; charset=utf-8",
            "no-cache",
        ),
        None => response(
            StatusCode::OK,
            NOT_BUILT.as_bytes().to_vec(),
            "text/html; charset=utf-8",
            "no-cache",
        ),
    }
}

fn response(status: StatusCode, body: Vec<u8>, mime: &str, cache: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(mime) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
