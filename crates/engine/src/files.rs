//! Files: the service behind `/api/v1/files`, the signed URLs workers get with an
//! assignment, and the collector that removes what no file uses any more.
//!
//! An upload streams through: each chunk is hashed and written to the object store as it
//! arrives, so no file is ever held in memory. The upload is noted in the database before
//! its first byte is written and the note goes in the transaction that records the file,
//! so the bytes of an upload that never finished (its client went away, its server was
//! killed) are found and removed. Records point at content-addressed blobs: when the same
//! bytes were stored before, the new copy is deleted and the record shares the old one.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::Value;
use sha2::{Digest, Sha256};
use switchyard_core::auth::{Permission, Principal};
use switchyard_core::files::{
    ByteRange, ByteStream, FileQuery, FileRecord, FileRef, Grant, ObjectStore, Stored, Upload,
    UrlSigner, file_refs, signed_query,
};
use switchyard_core::store::Store;
use switchyard_core::task::TaskStatus;
use switchyard_core::{Error, ErrorCode, FileId, Result, TaskId, Timestamp, UserId};

use crate::config::FilesConfig;
use crate::tasks::TaskService;

/// The setting holding the key signed URLs are made with (generated once per cluster).
pub const URL_KEY_SETTING: &str = "files.url_key";
/// Most records per page of a listing.
pub const MAX_PAGE: u32 = 500;
/// Rows one pass of the collector handles at most.
const COLLECT_BATCH: u32 = 500;
/// Uploads announcing more than this are checked against the quota before they start.
const QUOTA_PRECHECK_BYTES: u64 = 1 << 20;
/// An upload URL outlives the attempt's time budget by this much.
const UPLOAD_URL_SLACK_MS: u64 = 300_000;

/// Who is uploading.
pub enum Uploader<'a> {
    /// A user or API key with the submit permission.
    User(&'a Principal),
    /// A worker, through the upload URL of the attempt it runs.
    Attempt {
        task: TaskId,
        attempt: u32,
        expires: Timestamp,
        signature: &'a str,
    },
}

/// What the client said about an upload.
#[derive(Clone, Debug, Default)]
pub struct UploadMeta {
    pub name: String,
    pub content_type: Option<String>,
    /// The announced length, when there is one: refused at once if too large.
    pub length: Option<u64>,
}

/// A file as a worker gets it with an assignment.
#[derive(Clone, Debug, PartialEq)]
pub struct FileGrant {
    pub record: FileRecord,
    /// A signed path (`/api/v1/files/{id}/content?expires=…&signature=…`).
    pub url: String,
}

#[derive(Clone)]
pub struct FileService {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) tasks: TaskService,
    pub(crate) signer: UrlSigner,
    pub(crate) config: FilesConfig,
}

fn not_found(id: FileId) -> Error {
    Error::new(ErrorCode::FileNotFound, format!("file {id} not found"))
}

fn too_large(max: u64) -> Error {
    Error::new(
        ErrorCode::FileTooLarge,
        format!(
            "the file is larger than the largest upload allowed ({max} bytes, files.max_bytes)"
        ),
    )
}

/// The object key of a new upload: spread over 256 directories by the id's random tail.
fn object_key(id: FileId) -> String {
    let hex = id.0.simple().to_string();
    format!("{}/{}", &hex[30..32], id)
}

/// Whether `principal` may see a file owned by `owner`: the same rule as for tasks.
fn may_see(principal: &Principal, file: &FileRecord) -> bool {
    principal.allows(Permission::ReadTasks) && principal.can_see_task(file.owner_id)
}

impl FileService {
    pub fn config(&self) -> &FilesConfig {
        &self.config
    }

    pub fn backend(&self) -> &'static str {
        self.objects.backend()
    }

    pub async fn probe(&self) -> Result<()> {
        self.objects.probe().await
    }

    /// Stores an upload and records it. `body` is read as it arrives; an error from it
    /// (the client went away, the request timed out) aborts the upload.
    pub async fn upload<S, E>(
        &self,
        uploader: Uploader<'_>,
        meta: UploadMeta,
        body: S,
    ) -> Result<FileRecord>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<Error>,
    {
        let (owner, task_id) = self.uploader(uploader).await?;
        let name = switchyard_core::files::clean_name(&meta.name)?;
        let guessed = mime_guess::from_path(&name)
            .first_raw()
            .unwrap_or("application/octet-stream");
        let content_type =
            switchyard_core::files::clean_content_type(meta.content_type.as_deref(), guessed);
        let max = self.config.max_bytes;
        if meta.length.is_some_and(|n| n > max) {
            return Err(too_large(max));
        }
        // A large upload past the quota is refused before its bytes are read; any upload is
        // checked again, exactly, when it is recorded.
        if let Some(n) = meta.length.filter(|&n| n > QUOTA_PRECHECK_BYTES) {
            let used = self.store.file_usage(owner).await?;
            if used.saturating_add(n) > self.config.quota_bytes {
                return Err(Error::new(
                    ErrorCode::QuotaExceeded,
                    format!(
                        "this upload would pass your file quota of {} bytes ({used} used); delete files first",
                        self.config.quota_bytes
                    ),
                ));
            }
        }
        let id = FileId::new();
        let key = object_key(id);
        self.store
            .begin_upload(&Upload {
                id,
                object_key: key.clone(),
                token: None,
                started_at: Timestamp::now(),
            })
            .await?;
        let written = tokio::time::timeout(
            Duration::from_secs(self.config.upload_timeout_s),
            self.write(id, &key, body),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the upload did not finish within {} s (files.upload_timeout_s)",
                    self.config.upload_timeout_s
                ),
            ))
        });
        let (size, sha256) = match written {
            Ok(done) => done,
            Err(e) => {
                self.forget(id, &key).await;
                return Err(e);
            }
        };
        let record = FileRecord {
            id,
            name,
            size,
            content_type,
            sha256,
            owner_id: owner,
            task_id,
            created_at: Timestamp::now(),
        };
        match self
            .store
            .finish_upload(&record, &key, self.config.quota_bytes)
            .await
        {
            Ok(Stored::New) => {}
            Ok(Stored::Duplicate) => {
                if let Err(e) = self.objects.delete(&key).await {
                    tracing::warn!(error = %e, key, "could not delete a duplicate upload's copy");
                }
            }
            Err(e) => {
                self.forget(id, &key).await;
                return Err(e);
            }
        }
        Ok(record)
    }

    /// The owner and task of an upload, once the uploader's right to make it is checked.
    async fn uploader(&self, uploader: Uploader<'_>) -> Result<(Option<UserId>, Option<TaskId>)> {
        match uploader {
            Uploader::User(p) => {
                p.require(Permission::SubmitTasks)?;
                Ok((Some(p.user_id), None))
            }
            Uploader::Attempt {
                task,
                attempt,
                expires,
                signature,
            } => {
                self.signer.verify(
                    Grant::Upload { task, attempt },
                    expires,
                    signature,
                    Timestamp::now(),
                )?;
                let t = self
                    .store
                    .get_task(task)
                    .await?
                    .ok_or_else(|| Error::task_not_found(task))?;
                let current = t.attempts.last().map(|a| a.number);
                if t.status != TaskStatus::Running || current != Some(attempt) {
                    return Err(Error::new(
                        ErrorCode::LeaseLost,
                        format!("attempt {attempt} of task {task} is not running"),
                    ));
                }
                Ok((t.owner_id, Some(task)))
            }
        }
    }

    /// Streams `body` into a new object, hashing it on the way.
    async fn write<S, E>(&self, id: FileId, key: &str, body: S) -> Result<(u64, String)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<Error>,
    {
        let max = self.config.max_bytes;
        let mut writer = self.objects.create(key).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        let outcome: Result<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Into::into)?;
                size += chunk.len() as u64;
                if size > max {
                    return Err(too_large(max));
                }
                hasher.update(&chunk);
                if let Some(token) = writer.write(chunk).await? {
                    self.store.note_upload_token(id, &token).await?;
                }
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                writer.finish().await?;
                Ok((size, hex::encode(hasher.finalize())))
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, key, "could not abort an upload");
                }
                Err(e)
            }
        }
    }

    /// Removes a failed upload's bytes and note (the collector does, if this fails).
    async fn forget(&self, id: FileId, key: &str) {
        match self.objects.discard(key, None).await {
            Ok(()) => {
                if let Err(e) = self.store.forget_upload(id).await {
                    tracing::warn!(error = %e, "could not forget a failed upload");
                }
            }
            Err(e) => tracing::warn!(error = %e, key, "could not remove a failed upload"),
        }
    }

    /// A file's record, if `principal` may see it (else `file_not_found`, as if there
    /// were none).
    pub async fn get(&self, principal: &Principal, id: FileId) -> Result<FileRecord> {
        match self.store.get_file(id).await? {
            Some(f) if may_see(principal, &f) => Ok(f),
            _ => Err(not_found(id)),
        }
    }

    /// A file's record, through a signed download URL.
    pub async fn get_signed(
        &self,
        id: FileId,
        expires: Timestamp,
        signature: &str,
    ) -> Result<FileRecord> {
        self.signer
            .verify(Grant::Download(id), expires, signature, Timestamp::now())?;
        self.store.get_file(id).await?.ok_or_else(|| not_found(id))
    }

    /// The bytes of a file (or a range of them).
    pub async fn content(&self, file: &FileRecord, range: Option<ByteRange>) -> Result<ByteStream> {
        let key = self
            .store
            .blob_key(&file.sha256)
            .await?
            .ok_or_else(|| Error::internal_msg(format!("file {} has no blob", file.id)))?;
        self.objects.read(&key, range).await
    }

    /// Files `principal` may see, newest first.
    pub async fn list(
        &self,
        principal: &Principal,
        mut query: FileQuery,
    ) -> Result<Vec<FileRecord>> {
        principal.require(Permission::ReadTasks)?;
        if let Some(own) = principal.task_scope() {
            if query.owner_id.is_some_and(|o| o != own) {
                return Ok(Vec::new());
            }
            query.owner_id = Some(own);
        }
        query.limit = query.limit.clamp(1, MAX_PAGE);
        self.store.list_files(&query).await
    }

    /// The artifacts of a task `principal` may see.
    pub async fn artifacts(&self, principal: &Principal, task: TaskId) -> Result<Vec<FileRecord>> {
        self.tasks.visible(principal, task).await?;
        self.store
            .list_files(&FileQuery {
                task_id: Some(task),
                limit: MAX_PAGE,
                ..FileQuery::default()
            })
            .await
    }

    /// Deletes a file `principal` may see and submit with; its bytes go once no file uses
    /// them.
    pub async fn delete(&self, principal: &Principal, id: FileId) -> Result<()> {
        let file = self.get(principal, id).await?;
        principal.require(Permission::SubmitTasks)?;
        if self.store.delete_file(file.id).await?.is_none() {
            return Err(not_found(id));
        }
        if let Err(e) = self.drop_blob_if_unused(&file.sha256).await {
            tracing::warn!(error = %e, "could not remove a deleted file's bytes; the collector will");
        }
        Ok(())
    }

    async fn drop_blob_if_unused(&self, sha256: &str) -> Result<bool> {
        match self.store.blob_key(sha256).await? {
            Some(key) => self.remove_blob(sha256, &key).await,
            None => Ok(false),
        }
    }

    /// Removes a blob (its row, then its object) if still no file uses it.
    async fn remove_blob(&self, sha256: &str, key: &str) -> Result<bool> {
        if !self.store.take_orphan_blob(sha256).await? {
            return Ok(false);
        }
        self.objects.delete(key).await?;
        Ok(true)
    }

    /// The files a task's input refers to (`refs`, from [`file_refs`]), with a signed
    /// download URL each, and the
    /// attempt's upload URL: what a worker gets with an assignment.
    pub async fn grants(
        &self,
        task: TaskId,
        attempt: u32,
        refs: &[FileRef],
        timeout_ms: u64,
    ) -> Result<(Vec<FileGrant>, String)> {
        let now = Timestamp::now();
        let mut grants = Vec::new();
        for r in refs {
            let Some(record) = self.store.get_file(r.id).await? else {
                continue;
            };
            grants.push(FileGrant {
                url: self.download_url(record.id, now),
                record,
            });
        }
        Ok((grants, self.upload_url(task, attempt, now, timeout_ms)))
    }

    /// A signed download path for one file.
    pub fn download_url(&self, id: FileId, now: Timestamp) -> String {
        let expires = now.plus_ms(self.config.url_ttl_s.saturating_mul(1_000));
        format!(
            "/api/v1/files/{id}/content?{}",
            signed_query(&self.signer, Grant::Download(id), expires)
        )
    }

    /// A signed upload path for one attempt, valid for its time budget and some slack.
    pub fn upload_url(
        &self,
        task: TaskId,
        attempt: u32,
        now: Timestamp,
        timeout_ms: u64,
    ) -> String {
        let expires = now.plus_ms(timeout_ms.saturating_add(UPLOAD_URL_SLACK_MS));
        format!(
            "/api/v1/files?task={task}&attempt={attempt}&{}",
            signed_query(&self.signer, Grant::Upload { task, attempt }, expires)
        )
    }

    /// One pass of the collector: uploads left unfinished before `stale_before` are
    /// removed, then blobs no file uses. Returns how many of each it removed.
    pub async fn collect(&self, stale_before: Timestamp) -> Result<(usize, usize)> {
        let mut uploads = 0;
        for u in self
            .store
            .stale_uploads(stale_before, COLLECT_BATCH)
            .await?
        {
            self.objects
                .discard(&u.object_key, u.token.as_deref())
                .await?;
            self.store.forget_upload(u.id).await?;
            uploads += 1;
        }
        let mut blobs = 0;
        for b in self.store.orphan_blobs(COLLECT_BATCH).await? {
            blobs += usize::from(self.remove_blob(&b.sha256, &b.object_key).await?);
        }
        if uploads + blobs > 0 {
            tracing::info!(
                uploads,
                blobs,
                "removed unfinished uploads and unused file bytes"
            );
        }
        Ok((uploads, blobs))
    }

    /// Uploads started before this are left over: no upload lasts longer (its timeout,
    /// plus as much again, at most a minute, for the record to be written).
    pub fn stale_before(&self, now: Timestamp) -> Timestamp {
        let timeout = self.config.upload_timeout_s;
        now.minus_ms(
            timeout
                .saturating_add(timeout.min(60))
                .saturating_mul(1_000),
        )
    }
}

/// Checks every `{"$file": id}` of a task's input: each must exist and be readable by the
/// submitter (`all`: one who sees every task; else its owner `owner`).
pub(crate) async fn check_refs(
    store: &dyn Store,
    input: &Value,
    owner: Option<UserId>,
    all: bool,
) -> Result<()> {
    for r in file_refs(input)? {
        let readable = match store.get_file(r.id).await? {
            Some(f) => all || f.owner_id == owner,
            None => false,
        };
        if !readable {
            let path = if r.pointer == "/" { "" } else { &r.pointer };
            return Err(switchyard_core::schema::violations_error(
                "the input",
                vec![switchyard_core::schema::Violation {
                    path: path.to_owned(),
                    keyword: "$file".into(),
                    message: format!("file {} not found", r.id),
                }],
            ));
        }
    }
    Ok(())
}
