//! Objects in S3-compatible object storage. Small objects go up in one PUT; larger ones
//! as a multipart upload of 8 MiB parts, whose id is reported as the writer's token so an
//! upload that never finishes can be aborted by the collector (no part stays billed).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore as _, ObjectStoreExt, PutPayload};
use switchyard_core::files::{ByteRange, ByteStream, ObjectStore, ObjectWriter};
use switchyard_core::{Error, ErrorCode, Result};

use crate::check_key;

/// Size of each part of a multipart upload (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 << 20;

/// Where and how to reach the storage. Unset fields come from the usual `AWS_*`
/// environment variables.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// For S3-compatible servers (MinIO, Ceph, moto): `http(s)://host:port`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

pub struct S3Objects {
    store: Arc<AmazonS3>,
    prefix: String,
}

fn storage_error(context: &'static str) -> impl Fn(object_store::Error) -> Error {
    move |e| {
        Error::new(
            ErrorCode::Unavailable,
            format!("object storage: {context}: {e}"),
        )
    }
}

impl S3Objects {
    /// `url`: `s3://bucket[/prefix]`.
    pub fn open(url: &str, options: &S3Options) -> Result<Self> {
        let rest = url.strip_prefix("s3://").unwrap_or(url);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::invalid_parameter(format!(
                "files.url {url:?} names no bucket: use s3://bucket/prefix"
            )));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &options.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let Some(id) = &options.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &options.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build().map_err(|e| {
            Error::invalid_parameter(format!("files: cannot use S3 storage at {url}: {e}"))
        })?;
        Ok(S3Objects {
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    fn path(&self, key: &str) -> Result<Path> {
        check_key(key)?;
        Ok(if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        })
    }
}

fn ignore_missing(r: object_store::Result<()>) -> object_store::Result<()> {
    match r {
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        other => other,
    }
}

#[async_trait]
impl ObjectStore for S3Objects {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer {
            store: self.store.clone(),
            path: self.path(key)?,
            pending: Vec::new(),
            pending_len: 0,
            upload: None,
        }))
    }

    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = self
            .store
            .get_opts(&self.path(key)?, options)
            .await
            .map_err(storage_error("read an object"))?;
        Ok(got
            .into_stream()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .boxed())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        ignore_missing(self.store.delete(&self.path(key)?).await)
            .map_err(storage_error("delete an object"))
    }

    async fn discard(&self, key: &str, token: Option<&str>) -> Result<()> {
        let path = self.path(key)?;
        if let Some(id) = token {
            ignore_missing(self.store.abort_multipart(&path, &id.to_owned()).await)
                .map_err(storage_error("abort an upload"))?;
        }
        ignore_missing(self.store.delete(&path).await).map_err(storage_error("delete an object"))
    }

    async fn probe(&self) -> Result<()> {
        let probe = self.path("0")?;
        match self.store.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error("probe")(e)),
        }
    }
}

struct Multipart {
    id: String,
    parts: Vec<PartId>,
}

struct S3Writer {
    store: Arc<AmazonS3>,
    path: Path,
    pending: Vec<Bytes>,
    pending_len: usize,
    upload: Option<Multipart>,
}

impl S3Writer {
    fn payload(&mut self) -> PutPayload {
        self.pending_len = 0;
        self.pending.drain(..).collect()
    }

    async fn put_part(&mut self) -> Result<()> {
        let payload = self.payload();
        let upload = self
            .upload
            .as_mut()
            .ok_or_else(|| Error::internal_msg("part without an upload"))?;
        let part = self
            .store
            .put_part(&self.path, &upload.id, upload.parts.len(), payload)
            .await
            .map_err(storage_error("upload a part"))?;
        upload.parts.push(part);
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> Result<Option<String>> {
        self.pending_len += chunk.len();
        self.pending.push(chunk);
        if self.pending_len < PART_SIZE {
            return Ok(None);
        }
        let mut token = None;
        if self.upload.is_none() {
            let id = self
                .store
                .create_multipart(&self.path)
                .await
                .map_err(storage_error("start an upload"))?;
            token = Some(id.clone());
            self.upload = Some(Multipart {
                id,
                parts: Vec::new(),
            });
        }
        self.put_part().await?;
        Ok(token)
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        if self.upload.is_none() {
            let payload = self.payload();
            self.store
                .put(&self.path, payload)
                .await
                .map_err(storage_error("store an object"))?;
            return Ok(());
        }
        if self.pending_len > 0 {
            self.put_part().await?;
        }
        let upload = self
            .upload
            .take()
            .ok_or_else(|| Error::internal_msg("finished without an upload"))?;
        self.store
            .complete_multipart(&self.path, &upload.id, upload.parts)
            .await
            .map_err(storage_error("complete an upload"))?;
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        if let Some(upload) = &self.upload {
            ignore_missing(self.store.abort_multipart(&self.path, &upload.id).await)
                .map_err(storage_error("abort an upload"))?;
        }
        Ok(())
    }
}
