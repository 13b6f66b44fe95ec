use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{StatusCode, header};
use futures::TryStreamExt;
use serde::Deserialize;
use switchyard_core::{Error, ErrorCode, TaskId, Timestamp};
use switchyard_engine::files::{UploadMeta, Uploader};
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};
use crate::views::FileView;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// The file's name (a multipart upload: overrides the part's filename).
    pub name: Option<String>,
    /// An upload URL given to a worker: the task…
    pub task: Option<TaskId>,
    /// … and the attempt it is for.
    pub attempt: Option<u32>,
    /// An upload URL's expiry (milliseconds since the Unix epoch).
    pub expires: Option<i64>,
    /// An upload URL's signature.
    pub signature: Option<String>,
}

fn cut_short(e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::InvalidBody,
        format!("the upload was cut short: {e}"),
    )
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidFile, message)
}

/// Uploads a file: the raw bytes as the body (their `Content-Type` is kept; name it with
/// `?name=`), or `multipart/form-data` with one `file` part. Streams to storage; the same
/// content is stored once. With the signed `upload_url` of an assignment (no
/// `Authorization`), a worker stores an artifact of the task it runs.
#[utoipa::path(post, operation_id = "upload_file", path = "/api/v1/files", tag = "files",
    params(UploadParams), security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes (or multipart/form-data with a `file` part)"),
    responses((status = 201, description = "Stored", body = FileView),
        (status = 403, description = "A bad or expired upload URL", body = ErrorBody),
        (status = 409, description = "The upload URL's attempt is no longer running", body = ErrorBody),
        (status = 413, description = "Larger than files.max_bytes, or past the quota", body = ErrorBody),
        (status = 422, description = "No name, or a malformed multipart body", body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<UploadParams>,
    request: Request,
) -> ApiResult<(StatusCode, Json<FileView>)> {
    let (mut parts, body) = request.into_parts();
    let auth;
    let uploader = match (&p.signature, p.expires, p.task, p.attempt) {
        (Some(signature), Some(expires), Some(task), Some(attempt)) => Uploader::Attempt {
            task,
            attempt,
            expires: Timestamp::from_millis(expires),
            signature,
        },
        (None, None, None, None) => {
            auth = Auth::<perm::SubmitTasks>::from_request_parts(&mut parts, &state).await?;
            Uploader::User(&auth)
        }
        _ => {
            return Err(Error::invalid_parameter(
                "an upload URL needs task, attempt, expires and signature",
            )
            .into());
        }
    };
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    let content_type = header(header::CONTENT_TYPE).map(str::to_owned);
    let length = header(header::CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
    let files = state.engine.files();
    let record = match content_type
        .as_deref()
        .and_then(|t| multer::parse_boundary(t).ok())
    {
        Some(boundary) => {
            let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
            let field = loop {
                match form.next_field().await {
                    Ok(Some(f)) if f.name() == Some("file") => break f,
                    Ok(Some(_)) => continue,
                    Ok(None) => {
                        return Err(invalid("the multipart body has no `file` part").into());
                    }
                    Err(e) => {
                        return Err(invalid(format!("malformed multipart body: {e}")).into());
                    }
                }
            };
            let meta = UploadMeta {
                name: p
                    .name
                    .clone()
                    .or_else(|| field.file_name().map(str::to_owned))
                    .unwrap_or_default(),
                content_type: field.content_type().map(ToString::to_string),
                length: None,
            };
            files
                .upload(uploader, meta, field.map_err(cut_short))
                .await?
        }
        None => {
            let meta = UploadMeta {
                name: p.name.clone().unwrap_or_default(),
                content_type,
                length,
            };
            files
                .upload(uploader, meta, body.into_data_stream().map_err(cut_short))
                .await?
        }
    };
    Ok((StatusCode::CREATED, Json(record.into())))
}
