//! Files in a handler: the input's files (`{"$file": id}`), read through the signed URLs
//! of the assignment, and artifacts, uploaded through the attempt's signed upload URL. No
//! storage credentials are needed; the bytes go straight to and from the server, streamed.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use switchyard_protocol::worker::FileRef;
use tokio::io::AsyncWriteExt;

use crate::{TaskContext, TaskError};

/// What a handler needs for files: the HTTP client, the server's address, the
/// assignment's file URLs and upload URL.
#[derive(Clone, Default)]
pub(crate) struct AttemptFiles {
    pub http: reqwest::Client,
    /// `http(s)://host:port`, without a trailing slash.
    pub base: String,
    pub files: BTreeMap<String, FileRef>,
    pub upload_url: Option<String>,
}

/// The server's HTTP address from the URL the worker connects to.
pub(crate) fn http_base(url: &str) -> String {
    let base = url.trim_end_matches('/');
    if let Some(rest) = base.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = base.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        base.to_owned()
    }
}

async fn refused(response: reqwest::Response) -> TaskError {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or("http_error")
        .to_owned();
    let message = body["error"]["message"]
        .as_str()
        .map_or_else(|| format!("the server answered {status}"), str::to_owned);
    let error = if status.is_server_error() || status.as_u16() == 429 {
        TaskError::retryable(message)
    } else {
        TaskError::permanent(message)
    };
    error.with_code(code)
}

impl TaskContext {
    /// The files the input refers to, by id.
    pub fn files(&self) -> &BTreeMap<String, FileRef> {
        &self.files.files
    }

    fn file_url(&self, id: &str) -> Result<String, TaskError> {
        let file = self.files.files.get(id).ok_or_else(|| {
            TaskError::permanent(format!("file {id} is not among this task's input files"))
                .with_code("unknown_file")
        })?;
        Ok(format!("{}{}", self.files.base, file.url))
    }

    async fn get(&self, id: &str) -> Result<reqwest::Response, TaskError> {
        let response = self.files.http.get(self.file_url(id)?).send().await?;
        if !response.status().is_success() {
            return Err(refused(response).await);
        }
        Ok(response)
    }

    /// The content of one of the input's files.
    pub async fn download(&self, id: &str) -> Result<Bytes, TaskError> {
        Ok(self.get(id).await?.bytes().await?)
    }

    /// Writes one of the input's files to `path`, streamed (never whole in memory). A
    /// transfer that fails leaves no partial file.
    pub async fn download_to(&self, id: &str, path: impl AsRef<Path>) -> Result<(), TaskError> {
        let response = self.get(id).await?;
        let path = path.as_ref();
        let mut file = tokio::fs::File::create(path).await?;
        let copied: Result<(), TaskError> = async {
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                file.write_all(&chunk?).await?;
            }
            file.flush().await?;
            Ok(())
        }
        .await;
        if copied.is_err() {
            drop(file);
            let _ = tokio::fs::remove_file(path).await;
        }
        copied
    }

    /// Uploads an artifact of this task; returns its file id (put `{"$file": id}` in the
    /// output to point at it).
    pub async fn upload(
        &self,
        name: &str,
        content: impl Into<Bytes>,
        content_type: Option<&str>,
    ) -> Result<String, TaskError> {
        self.post(name, reqwest::Body::from(content.into()), content_type)
            .await
    }

    /// Uploads the file at `path` as an artifact, streamed from disk; returns its file id.
    pub async fn upload_path(
        &self,
        name: &str,
        path: impl AsRef<Path>,
        content_type: Option<&str>,
    ) -> Result<String, TaskError> {
        let file = tokio::fs::File::open(path.as_ref()).await?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10);
        self.post(name, reqwest::Body::wrap_stream(stream), content_type)
            .await
    }

    async fn post(
        &self,
        name: &str,
        body: reqwest::Body,
        content_type: Option<&str>,
    ) -> Result<String, TaskError> {
        let path = self.files.upload_url.as_deref().ok_or_else(|| {
            TaskError::permanent("the server gave this attempt no upload URL (upgrade it)")
        })?;
        let mut url = url::Url::parse(&format!("{}{path}", self.files.base))
            .map_err(|e| TaskError::permanent(format!("bad upload URL: {e}")))?;
        url.query_pairs_mut().append_pair("name", name);
        let mut request = self.files.http.post(url).body(body);
        if let Some(t) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, t);
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            return Err(refused(response).await);
        }
        let created: serde_json::Value = response.json().await?;
        created["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| TaskError::retryable("the upload's answer had no file id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_address_comes_from_the_worker_url() {
        assert_eq!(http_base("http://h:8080/"), "http://h:8080");
        assert_eq!(http_base("wss://h"), "https://h");
        assert_eq!(http_base("ws://h:1"), "http://h:1");
    }
}
