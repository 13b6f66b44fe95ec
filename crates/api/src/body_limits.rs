//! Request bodies: refused before a byte of them is read when the announced
//! `Content-Length` is over `server.body_limit_bytes` (so `Expect: 100-continue` gets the
//! `413` instead of `100 Continue`: hyper sends that only once the body is read), and
//! answered `408` when they take longer than `server.body_read_timeout_ms` to arrive.
//! Bodies without a length (chunked) are still limited as they are read, by the
//! extractors (`DefaultBodyLimit`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use switchyard_core::ErrorCode;
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;

#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub read_timeout: Duration,
    /// File uploads (`POST /api/v1/files`) stream to storage: they have their own limits.
    pub upload_max_bytes: u64,
    pub upload_timeout: Duration,
}

/// The path of file uploads.
pub const UPLOAD_PATH: &str = "/api/v1/files";
/// What a multipart upload may add around the file itself.
const MULTIPART_SLACK: u64 = 64 * 1024;

pub async fn middleware(
    State(mut limits): State<BodyLimits>,
    req: Request,
    next: Next,
) -> Response {
    let upload = req.method() == axum::http::Method::POST && req.uri().path() == UPLOAD_PATH;
    if upload {
        limits.read_timeout = limits.upload_timeout;
    }
    if let Some(length) = content_length(req.headers()) {
        if upload && length > limits.upload_max_bytes.saturating_add(MULTIPART_SLACK) {
            return closing(ApiError::new(
                ErrorCode::FileTooLarge,
                format!(
                    "the file ({length} bytes) is larger than the largest upload allowed ({} bytes, files.max_bytes)",
                    limits.upload_max_bytes
                ),
            ));
        }
        if !upload && length > limits.max_bytes as u64 {
            return closing(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the request body ({length} bytes) is larger than the server accepts ({} bytes)",
                    limits.max_bytes
                ),
            ));
        }
    }
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + limits.read_timeout;
    let req = req.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline,
            sleep: None,
            timed_out: timed_out.clone(),
        })
    });
    let response = next.run(req).await;
    if timed_out.load(Relaxed) {
        // Whatever the handler made of the failed read, the client was too slow.
        return closing(ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive within {} ms",
                limits.read_timeout.as_millis()
            ),
        ));
    }
    response
}

fn content_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The error, on a connection that closes after it: the rest of the body (if the client
/// sends it) is not worth reading.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that fails once its deadline has passed while it is still awaited.
/// The timer is only set up when a read has to wait, so bodies that are already there
/// (nearly all) cost nothing.
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(
                "the request body did not arrive in time",
            ))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_lengths_are_read_leniently_but_never_guessed() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(content_length(&h), None);
        h.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from_static("1000000000000"),
        );
        assert_eq!(content_length(&h), Some(1_000_000_000_000));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("abc"));
        assert_eq!(content_length(&h), None);
    }
}
