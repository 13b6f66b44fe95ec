use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_core::files::{ByteRange, FileRecord, shows_inline};
use switchyard_core::{Error, ErrorCode, FileId};

use super::Signed;
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, Auth, perm};

/// A file's content, streamed. One byte range (`Range: bytes=a-b`, `a-` or `-n`) gets a
/// 206; `If-None-Match` with its `ETag` a 304. Types that cannot run script (images, text,
/// JSON, PDF) show inline; everything else downloads as an attachment, and nothing is
/// ever sniffed or run as a page (`nosniff`, `Content-Security-Policy: sandbox`). Workers
/// use the signed URL of their assignment instead of an `Authorization` header.
#[utoipa::path(get, operation_id = "download_file", path = "/api/v1/files/{id}/content", tag = "files",
    params(("id" = FileId, Path), Signed), security(("bearer" = [])),
    responses((status = 200, description = "The content, as the type it was stored with", content_type = "*/*", body = Vec<u8>),
        (status = 206, description = "The range asked for", content_type = "*/*", body = Vec<u8>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 403, description = "A bad or expired signed URL", body = ErrorBody),
        (status = 404, description = "No such file, or not yours", body = ErrorBody),
        (status = 416, description = "The range is outside the file", body = ErrorBody)))]
pub async fn content(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<FileId>,
    ApiQuery(signed): ApiQuery<Signed>,
    request: Request,
) -> ApiResult<Response> {
    let (mut parts, _) = request.into_parts();
    let files = state.engine.files();
    let file = match signed.parts()? {
        Some((expires, signature)) => files.get_signed(id, expires, signature).await?,
        None => {
            let auth = Auth::<perm::ReadTasks>::from_request_parts(&mut parts, &state).await?;
            files.get(&auth, id).await?
        }
    };
    let etag = format!("\"{}\"", file.sha256);
    let mut headers = file_headers(&file, &etag)?;
    if parts
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let range = match parts
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    {
        Some(r) => match byte_range(r, file.size) {
            Ok(range) => range,
            Err(()) => {
                let mut response = ApiError::from(Error::new(
                    ErrorCode::RangeNotSatisfiable,
                    format!("the range {r:?} is outside the file ({} bytes)", file.size),
                ))
                .into_response();
                response.headers_mut().insert(
                    header::CONTENT_RANGE,
                    value(&format!("bytes */{}", file.size))?,
                );
                return Ok(response);
            }
        },
        None => None,
    };
    let (status, length) = match &range {
        Some(r) => {
            headers.insert(
                header::CONTENT_RANGE,
                value(&format!("bytes {}-{}/{}", r.start, r.end - 1, file.size))?,
            );
            (StatusCode::PARTIAL_CONTENT, r.end - r.start)
        }
        None => (StatusCode::OK, file.size),
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let stream = files.content(&file, range).await?;
    Ok((status, headers, Body::from_stream(stream)).into_response())
}

fn value(s: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(s).map_err(|e| Error::internal("header value", e))
}

/// The headers every answer about a file's content carries.
fn file_headers(file: &FileRecord, etag: &str) -> Result<HeaderMap, Error> {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, value(&file.content_type)?);
    h.insert(header::ETAG, value(etag)?);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    let disposition = if shows_inline(&file.content_type) {
        "inline"
    } else {
        "attachment"
    };
    h.insert(
        header::CONTENT_DISPOSITION,
        value(&format!("{disposition}; {}", filename_params(&file.name)))?,
    );
    Ok(h)
}

/// `filename="…"` (ASCII, quotes and backslashes replaced) and `filename*=UTF-8''…`
/// (RFC 6266 / 8187) for the real name.
fn filename_params(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The one range of a `Range` header, within a file of `size` bytes. `Ok(None)`: serve
/// the whole file (no usable single byte range: several ranges, another unit, bad
/// syntax — which RFC 9110 says to ignore); `Err`: a range that is outside the file.
fn byte_range(header: &str, size: u64) -> Result<Option<ByteRange>, ()> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    let parsed = |s: &str| s.parse::<u64>().ok();
    let range = match (start.is_empty(), end.is_empty()) {
        // The last `n` bytes.
        (true, false) => {
            let Some(n) = parsed(end) else {
                return Ok(None);
            };
            if n == 0 || size == 0 {
                return Err(());
            }
            size.saturating_sub(n)..size
        }
        (false, _) => {
            let Some(a) = parsed(start) else {
                return Ok(None);
            };
            let b = if end.is_empty() {
                size.saturating_sub(1)
            } else {
                match parsed(end) {
                    Some(b) if b >= a => b.min(size.saturating_sub(1)),
                    _ => return Ok(None),
                }
            };
            if a >= size {
                return Err(());
            }
            a..b + 1
        }
        (true, true) => return Ok(None),
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(byte_range("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(byte_range("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(byte_range("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(byte_range("bytes=-1000", 100), Ok(Some(0..100)));
        assert_eq!(byte_range("bytes=95-1000", 100), Ok(Some(95..100)));
        assert_eq!(byte_range("bytes=100-", 100), Err(()));
        assert_eq!(byte_range("bytes=-0", 100), Err(()));
        for ignored in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=x-",
            "bytes=-",
        ] {
            assert_eq!(byte_range(ignored, 100), Ok(None), "{ignored}");
        }
    }

    #[test]
    fn file_names_are_quoted_safely() {
        assert_eq!(
            filename_params("a \"b\".txt"),
            "filename=\"a _b_.txt\"; filename*=UTF-8''a%20%22b%22.txt"
        );
        assert_eq!(
            filename_params("résumé.pdf"),
            "filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
        );
    }
}
