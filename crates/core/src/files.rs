//! Files: what is stored about an upload or an artifact, where a task's input refers to
//! one (`{"$file": id}`), how a file may be shown, and the signed URLs that let a worker
//! read or write files without storage credentials.
//!
//! The bytes themselves live in an object store (`switchyard-files`), content addressed:
//! a *blob* is one stored copy of some bytes, named by their SHA-256, and any number of
//! file records point at it. A blob goes once no record does.

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::error::{Error, ErrorCode, Result};
use crate::ids::{FileId, TaskId, UserId};
use crate::time::Timestamp;

/// The key under which a task's input (or output) refers to a file.
pub const FILE_REF_KEY: &str = "$file";
/// Longest file name kept, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest content type kept, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;
/// Most file references one task input may hold.
pub const MAX_REFS: usize = 100;

/// Whether `key` could be an object key a server made: lowercase letters, digits, `-`,
/// `_` and `.` in segments between `/` (no segment empty, `.` or `..`), at most 128
/// bytes. Object stores refuse any other before it can reach a path or a URL; a restore
/// refuses an archive that names one.
pub fn valid_object_key(key: &str) -> bool {
    let segment = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            })
    };
    !key.is_empty() && key.len() <= 128 && key.split('/').all(segment)
}

/// A stored file as its record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub id: FileId,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    /// Lowercase hex SHA-256 of the bytes: the blob it points at.
    pub sha256: String,
    pub owner_id: Option<UserId>,
    /// Set on artifacts: the task whose agent uploaded it.
    pub task_id: Option<TaskId>,
    pub created_at: Timestamp,
}

/// A filter over file records, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileQuery {
    pub owner_id: Option<UserId>,
    pub task_id: Option<TaskId>,
    /// Only files older than this one (the previous page's last).
    pub before: Option<FileId>,
    pub limit: u32,
}

/// An upload in progress: its bytes are being written to `object_key`. Kept in the
/// database so the bytes of an upload that never finished (its server died) are found
/// and removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub id: FileId,
    pub object_key: String,
    /// What the object store needs to abort the upload (an S3 multipart upload id).
    pub token: Option<String>,
    pub started_at: Timestamp,
}

/// How a finished upload was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Its bytes are the new blob.
    New,
    /// The same bytes were stored already: the upload's own copy must be deleted.
    Duplicate,
}

/// A stored copy of some bytes that no file record uses any more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrphanBlob {
    pub sha256: String,
    pub object_key: String,
}

/// File records, blobs and uploads in the database.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Notes an upload about to write `object_key`.
    async fn begin_upload(&self, upload: &Upload) -> Result<()>;
    /// Records what an upload needs to be aborted later.
    async fn note_upload_token(&self, id: FileId, token: &str) -> Result<()>;
    /// Finishes an upload in one transaction: the upload note goes, the record is
    /// inserted, and its blob is the upload's object unless the same bytes were stored
    /// before. Fails with `quota_exceeded` (nothing written) when the owner's files
    /// would pass `quota_bytes`; a duplicate counts against the quota too.
    async fn finish_upload(
        &self,
        file: &FileRecord,
        object_key: &str,
        quota_bytes: u64,
    ) -> Result<Stored>;
    /// Forgets an upload note (the upload failed, its object was removed).
    async fn forget_upload(&self, id: FileId) -> Result<()>;
    /// Upload notes older than `before`: their servers died or gave up.
    async fn stale_uploads(&self, before: Timestamp, limit: u32) -> Result<Vec<Upload>>;
    async fn get_file(&self, id: FileId) -> Result<Option<FileRecord>>;
    async fn list_files(&self, query: &FileQuery) -> Result<Vec<FileRecord>>;
    /// The object key of a blob.
    async fn blob_key(&self, sha256: &str) -> Result<Option<String>>;
    /// Deletes a record; its blob stays until [`FileStore::take_orphan_blob`] takes it.
    async fn delete_file(&self, id: FileId) -> Result<Option<FileRecord>>;
    /// Blobs whose last record was deleted (candidates: one may be used again before it
    /// is taken).
    async fn orphan_blobs(&self, limit: u32) -> Result<Vec<OrphanBlob>>;
    /// Deletes the blob's row if still no record uses it; true if it did (the caller then
    /// deletes the object).
    async fn take_orphan_blob(&self, sha256: &str) -> Result<bool>;
    /// Bytes of files the owner has.
    async fn file_usage(&self, owner: Option<UserId>) -> Result<u64>;
}

/// A byte range of an object: `start..end` (end exclusive).
pub type ByteRange = std::ops::Range<u64>;

/// The bytes of an object, as they arrive.
pub type ByteStream = futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// Where file bytes are kept: a directory (`switchyard-files::LocalObjects`) or
/// S3-compatible object storage (`S3Objects`). Keys are made by the server (never from
/// a client's input).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// `local` or `s3`, for logs and readiness.
    fn backend(&self) -> &'static str;
    /// Starts writing a new object under `key`; it is visible once the writer finishes.
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>>;
    /// Reads an object, or a range of it.
    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream>;
    /// Deletes an object (no error if there is none).
    async fn delete(&self, key: &str) -> Result<()>;
    /// Removes whatever an upload that never finished wrote under `key` (`token`: what
    /// its writer reported).
    async fn discard(&self, key: &str, token: Option<&str>) -> Result<()>;
    /// Answers when the storage is reachable.
    async fn probe(&self) -> Result<()>;
}

/// An object being written, in order.
#[async_trait]
pub trait ObjectWriter: Send {
    /// Appends bytes. Returns, once, a token that [`ObjectStore::discard`] needs if the
    /// upload is never finished (S3: the multipart upload id).
    async fn write(&mut self, chunk: bytes::Bytes) -> Result<Option<String>>;
    /// Makes the object durable and visible.
    async fn finish(self: Box<Self>) -> Result<()>;
    /// Gives up: nothing stays behind.
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// A file reference found in a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    /// JSON pointer to the `{"$file": …}` object.
    pub pointer: String,
    pub id: FileId,
}

/// Every `{"$file": "<id>"}` in `value` (objects with exactly that one key). A
/// malformed one (not a UUID, not a string) is a `validation_failed` naming its pointer.
pub fn file_refs(value: &Value) -> Result<Vec<FileRef>> {
    let mut found = Vec::new();
    let mut path = String::new();
    collect_refs(value, &mut path, &mut found)?;
    if found.len() > MAX_REFS {
        return Err(Error::new(
            ErrorCode::ValidationFailed,
            format!(
                "the input refers to {} files; at most {MAX_REFS} are allowed",
                found.len()
            ),
        ));
    }
    Ok(found)
}

fn collect_refs(value: &Value, path: &mut String, found: &mut Vec<FileRef>) -> Result<()> {
    match value {
        Value::Object(map) => {
            if map.len() == 1
                && let Some(id) = map.get(FILE_REF_KEY)
            {
                let parsed = id.as_str().and_then(|s| s.parse::<FileId>().ok());
                let Some(id) = parsed else {
                    return Err(Error::new(
                        ErrorCode::ValidationFailed,
                        format!("{}: $file must be a file id (a UUID string)", shown(path)),
                    ));
                };
                found.push(FileRef {
                    pointer: shown(path).to_owned(),
                    id,
                });
                return Ok(());
            }
            for (key, v) in map {
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                collect_refs(v, path, found)?;
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                collect_refs(v, path, found)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn shown(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

/// The name a file is kept under: the last segment of what the client sent (a browser
/// may send a path), without control characters, at most [`MAX_NAME_BYTES`]. It is only
/// ever shown, never used as a path.
pub fn clean_name(raw: &str) -> Result<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if base.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorCode::InvalidFile,
            "the file name holds control characters",
        ));
    }
    if base.is_empty() || base == "." || base == ".." {
        return Err(Error::new(
            ErrorCode::InvalidFile,
            "the file needs a name: pass ?name=",
        ));
    }
    if base.len() > MAX_NAME_BYTES {
        return Err(Error::new(
            ErrorCode::InvalidFile,
            format!("the file name is longer than {MAX_NAME_BYTES} bytes"),
        ));
    }
    Ok(base.to_owned())
}

/// The content type kept for an upload: what the client said if it is a well-formed
/// `type/subtype` (parameters kept), else the type its name suggests (`guessed`).
pub fn clean_content_type(sent: Option<&str>, guessed: &str) -> String {
    let valid = |t: &str| {
        let essence = t.split(';').next().unwrap_or_default().trim();
        let mut parts = essence.split('/');
        let token = |s: Option<&str>| {
            s.is_some_and(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
            })
        };
        t.len() <= MAX_CONTENT_TYPE_BYTES
            && !t.chars().any(char::is_control)
            && token(parts.next())
            && token(parts.next())
            && parts.next().is_none()
    };
    match sent.map(str::trim) {
        Some(t) if valid(t) && !t.eq_ignore_ascii_case("application/x-www-form-urlencoded") => {
            t.to_owned()
        }
        _ => guessed.to_owned(),
    }
}

/// Whether a browser may show the content in place: images that cannot run script,
/// plain text, JSON and PDF. Everything else downloads as an attachment, so an upload
/// never renders as a page from the server's origin.
pub fn shows_inline(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "image/png"
            | "image/jpeg"
            | "image/gif"
            | "image/webp"
            | "text/plain"
            | "application/json"
            | "application/pdf"
    )
}

/// What a signed URL lets its holder do: one method on one file, or uploading artifacts
/// for one attempt of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// `GET /api/v1/files/{id}/content`.
    Download(FileId),
    /// `POST /api/v1/files?task=…&attempt=…`.
    Upload { task: TaskId, attempt: u32 },
}

impl Grant {
    fn message(&self, expires: Timestamp) -> String {
        match self {
            Grant::Download(id) => format!("GET\nfile:{id}\n{}", expires.millis()),
            Grant::Upload { task, attempt } => {
                format!("POST\ntask:{task}:{attempt}\n{}", expires.millis())
            }
        }
    }
}

/// Signs and checks [`Grant`]s with a secret every server of a cluster shares.
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

impl UrlSigner {
    pub fn new(key: &[u8]) -> Self {
        UrlSigner { key: key.to_vec() }
    }

    fn mac(&self, grant: Grant, expires: Timestamp) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(grant.message(expires).as_bytes());
        mac
    }

    /// The signature of `grant` until `expires`, as lowercase hex.
    pub fn sign(&self, grant: Grant, expires: Timestamp) -> String {
        hex::encode(self.mac(grant, expires).finalize().into_bytes())
    }

    /// Checks a signature (in constant time) and its expiry.
    pub fn verify(
        &self,
        grant: Grant,
        expires: Timestamp,
        signature: &str,
        now: Timestamp,
    ) -> Result<()> {
        let bad = || {
            Error::new(
                ErrorCode::InvalidSignature,
                "the signed URL is not valid for this request",
            )
        };
        let sig = hex::decode(signature).map_err(|_| bad())?;
        self.mac(grant, expires)
            .verify_slice(&sig)
            .map_err(|_| bad())?;
        if expires < now {
            return Err(Error::new(
                ErrorCode::InvalidSignature,
                "the signed URL has expired",
            ));
        }
        Ok(())
    }
}

/// The query string of a signed URL for `grant`.
pub fn signed_query(signer: &UrlSigner, grant: Grant, expires: Timestamp) -> String {
    format!(
        "expires={}&signature={}",
        expires.millis(),
        signer.sign(grant, expires)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refs_are_found_anywhere_with_their_pointer() {
        let a = FileId::new();
        let b = FileId::new();
        let input = json!({"doc": {"$file": a.to_string()}, "pages": [1, {"$file": b.to_string()}],
                           "a/b": {"$file": a.to_string()}, "other": {"$file": "x", "more": 1}});
        let refs = file_refs(&input).unwrap();
        let pointers: Vec<_> = refs.iter().map(|r| r.pointer.as_str()).collect();
        assert_eq!(pointers, ["/doc", "/pages/1", "/a~1b"]);
        assert_eq!(refs[1].id, b);
        assert_eq!(
            file_refs(&json!({"$file": a.to_string()})).unwrap()[0].pointer,
            "/"
        );
    }

    #[test]
    fn a_malformed_ref_names_its_pointer() {
        let e = file_refs(&json!({"x": [{"$file": 12}]})).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert!(e.message.starts_with("/x/0:"), "{}", e.message);
        let too_many: Vec<_> = (0..=MAX_REFS)
            .map(|_| json!({"$file": FileId::new().to_string()}))
            .collect();
        assert!(file_refs(&Value::Array(too_many)).is_err());
    }

    #[test]
    fn names_lose_their_paths_and_control_characters_are_refused() {
        assert_eq!(
            clean_name("C:\\Users\\me\\report.pdf").unwrap(),
            "report.pdf"
        );
        assert_eq!(clean_name("../../etc/passwd").unwrap(), "passwd");
        for bad in ["", "dir/", "..", "a\0b", "a\nb", &"x".repeat(256)] {
            assert_eq!(
                clean_name(bad).unwrap_err().code,
                ErrorCode::InvalidFile,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn content_types_are_kept_only_when_well_formed() {
        let g = "application/octet-stream";
        assert_eq!(clean_content_type(Some("image/png"), g), "image/png");
        assert_eq!(
            clean_content_type(Some("text/plain; charset=utf-8"), g),
            "text/plain; charset=utf-8"
        );
        for bad in ["", "png", "a/b/c", "text/html\r\nX: y", "a b/c"] {
            assert_eq!(clean_content_type(Some(bad), g), g, "{bad:?}");
        }
        assert_eq!(clean_content_type(None, "text/csv"), "text/csv");
    }

    #[test]
    fn only_inert_types_show_inline() {
        assert!(shows_inline("image/png"));
        assert!(shows_inline("Text/Plain; charset=utf-8"));
        for t in [
            "text/html",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/javascript",
        ] {
            assert!(!shows_inline(t), "{t}");
        }
    }

    #[test]
    fn signatures_bind_the_grant_and_expire() {
        let signer = UrlSigner::new(b"secret");
        let file = FileId::new();
        let now = Timestamp::from_millis(1_000_000);
        let expires = now.plus_ms(60_000);
        let sig = signer.sign(Grant::Download(file), expires);
        signer
            .verify(Grant::Download(file), expires, &sig, now)
            .unwrap();
        let other = Grant::Download(FileId::new());
        assert!(signer.verify(other, expires, &sig, now).is_err());
        assert!(
            signer
                .verify(Grant::Download(file), expires.plus_ms(1), &sig, now)
                .is_err(),
            "the expiry is signed"
        );
        assert!(
            signer
                .verify(Grant::Download(file), expires, &sig, expires.plus_ms(1))
                .is_err(),
            "expired"
        );
        assert!(
            UrlSigner::new(b"other")
                .verify(Grant::Download(file), expires, &sig, now)
                .is_err()
        );
        assert!(
            signer
                .verify(Grant::Download(file), expires, "zz", now)
                .is_err()
        );
        let task = TaskId::new();
        let up = signer.sign(Grant::Upload { task, attempt: 1 }, expires);
        assert!(
            signer
                .verify(Grant::Upload { task, attempt: 2 }, expires, &up, now)
                .is_err(),
            "bound to the attempt"
        );
    }
}
