//! `FileStore`: file records, the blobs they point at, per-owner usage and the uploads
//! being written.

use async_trait::async_trait;
use switchyard_core::files::{FileQuery, FileRecord, FileStore, OrphanBlob, Stored, Upload};
use switchyard_core::{Error, ErrorCode, FileId, Result, TaskId, Timestamp, UserId};

use super::SqlStore;
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{Col, db_err};
use crate::sql::sql;

const FILE_COLUMNS: &str =
    "SELECT id, name, size, content_type, sha256, owner_id, task_id, created_at FROM files";

fn file<R: Col>(r: &R) -> Result<FileRecord> {
    Ok(FileRecord {
        id: FileId(r.uuid("id")?),
        name: r.string("name")?,
        size: u64::try_from(r.i64("size")?).unwrap_or(0),
        content_type: r.string("content_type")?,
        sha256: r.string("sha256")?,
        owner_id: r.opt_uuid("owner_id")?.map(UserId),
        task_id: r.opt_uuid("task_id")?.map(TaskId),
        created_at: r.ts("created_at")?,
    })
}

/// The usage row of an owner ('' for files without one).
fn owner_key(owner: Option<UserId>) -> String {
    owner.map(|u| u.to_string()).unwrap_or_default()
}

fn bytes(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn quota_exceeded(quota: u64) -> Error {
    Error::new(
        ErrorCode::QuotaExceeded,
        format!("this upload would pass your file quota of {quota} bytes; delete files first"),
    )
}

#[async_trait]
impl<D: Dialect> FileStore for SqlStore<D> {
    // Upload notes are not flushed on their own: a process crash keeps them (the WAL is
    // written), and the record that ends an upload is flushed, with them, before its answer.
    async fn begin_upload(&self, u: &Upload) -> Result<()> {
        let mut tx = self.begin_write(false).await?;
        Query::new(sql!("common", "begin_upload"))
            .bind(u.id.0)
            .bind(u.object_key.as_str())
            .bind(u.token.as_deref())
            .bind(u.started_at.millis())
            .execute(tx.on())
            .await
            .map_err(db_err("begin upload"))?;
        tx.commit().await.map_err(db_err("commit upload"))
    }

    async fn note_upload_token(&self, id: FileId, token: &str) -> Result<()> {
        let mut tx = self.begin_write(false).await?;
        Query::new(sql!("common", "note_upload_token"))
            .bind(id.0)
            .bind(token)
            .execute(tx.on())
            .await
            .map_err(db_err("note upload token"))?;
        tx.commit().await.map_err(db_err("commit upload"))
    }

    async fn finish_upload(
        &self,
        f: &FileRecord,
        object_key: &str,
        quota_bytes: u64,
    ) -> Result<Stored> {
        if f.size > quota_bytes {
            return Err(quota_exceeded(quota_bytes));
        }
        let mut tx = self.begin_flushed().await?;
        let charged = Query::new(sql!("common", "charge_file_usage"))
            .bind(owner_key(f.owner_id))
            .bind(bytes(f.size))
            .bind(bytes(quota_bytes))
            .execute(tx.on())
            .await
            .map_err(db_err("charge file usage"))?;
        if charged == 0 {
            tx.rollback().await.map_err(db_err("roll back upload"))?;
            return Err(quota_exceeded(quota_bytes));
        }
        let stored_key = Query::new(sql!("common", "upsert_blob"))
            .bind(f.sha256.as_str())
            .bind(object_key)
            .bind(bytes(f.size))
            .bind(f.created_at.millis())
            .fetch_one(tx.on())
            .await
            .map_err(db_err("upsert blob"))?
            .string_at(0)?;
        Query::new(sql!("common", "insert_file"))
            .bind(f.id.0)
            .bind(f.name.as_str())
            .bind(bytes(f.size))
            .bind(f.content_type.as_str())
            .bind(f.sha256.as_str())
            .bind(f.owner_id.map(|u| u.0))
            .bind(f.task_id.map(|t| t.0))
            .bind(f.created_at.millis())
            .execute(tx.on())
            .await
            .map_err(db_err("insert file"))?;
        Query::new(sql!("common", "forget_upload"))
            .bind(f.id.0)
            .execute(tx.on())
            .await
            .map_err(db_err("forget upload"))?;
        self.commit_flushed(tx, "commit file").await?;
        Ok(if stored_key == object_key {
            Stored::New
        } else {
            Stored::Duplicate
        })
    }

    async fn forget_upload(&self, id: FileId) -> Result<()> {
        let mut tx = self.begin_write(false).await?;
        Query::new(sql!("common", "forget_upload"))
            .bind(id.0)
            .execute(tx.on())
            .await
            .map_err(db_err("forget upload"))?;
        tx.commit().await.map_err(db_err("commit upload"))
    }

    async fn stale_uploads(&self, before: Timestamp, limit: u32) -> Result<Vec<Upload>> {
        let rows = Query::new(sql!("common", "stale_uploads"))
            .bind(before.millis())
            .bind(i64::from(limit))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("stale uploads"))?;
        rows.iter()
            .map(|r| {
                Ok(Upload {
                    id: FileId(r.uuid("id")?),
                    object_key: r.string("object_key")?,
                    token: r.opt_string("token")?,
                    started_at: r.ts("started_at")?,
                })
            })
            .collect()
    }

    async fn get_file(&self, id: FileId) -> Result<Option<FileRecord>> {
        let row = Query::new(sql!("common", "get_file"))
            .bind(id.0)
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("get file"))?;
        row.as_ref().map(file).transpose()
    }

    async fn list_files(&self, q: &FileQuery) -> Result<Vec<FileRecord>> {
        let mut query = Query::new(FILE_COLUMNS);
        let mut glue = " WHERE ";
        if let Some(owner) = q.owner_id {
            query.push(glue).push("owner_id = ").push_bind(owner.0);
            glue = " AND ";
        }
        if let Some(task) = q.task_id {
            query.push(glue).push("task_id = ").push_bind(task.0);
            glue = " AND ";
        }
        if let Some(before) = q.before {
            query.push(glue).push("id < ").push_bind(before.0);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(q.limit));
        let rows = query
            .fetch_all(self.reader())
            .await
            .map_err(db_err("list files"))?;
        rows.iter().map(file).collect()
    }

    async fn blob_key(&self, sha256: &str) -> Result<Option<String>> {
        let row = Query::new(sql!("common", "blob_key"))
            .bind(sha256)
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("blob key"))?;
        row.map(|r| r.string_at(0)).transpose()
    }

    async fn delete_file(&self, id: FileId) -> Result<Option<FileRecord>> {
        let mut tx = self.begin_flushed().await?;
        let row = Query::new(sql!("common", "delete_file"))
            .bind(id.0)
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("delete file"))?;
        let Some(deleted) = row.as_ref().map(file).transpose()? else {
            tx.rollback().await.map_err(db_err("roll back delete"))?;
            return Ok(None);
        };
        Query::new(sql!("common", "refund_file_usage"))
            .bind(owner_key(deleted.owner_id))
            .bind(bytes(deleted.size))
            .execute(tx.on())
            .await
            .map_err(db_err("refund file usage"))?;
        Query::new(sql!("common", "mark_unused_blob"))
            .bind(deleted.sha256.as_str())
            .bind(Timestamp::now().millis())
            .execute(tx.on())
            .await
            .map_err(db_err("mark unused blob"))?;
        self.commit_flushed(tx, "commit delete").await?;
        Ok(Some(deleted))
    }

    async fn orphan_blobs(&self, limit: u32) -> Result<Vec<OrphanBlob>> {
        let rows = Query::new(sql!("common", "orphan_blobs"))
            .bind(i64::from(limit))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("orphan blobs"))?;
        rows.iter()
            .map(|r| {
                Ok(OrphanBlob {
                    sha256: r.string("sha256")?,
                    object_key: r.string("object_key")?,
                })
            })
            .collect()
    }

    async fn take_orphan_blob(&self, sha256: &str) -> Result<bool> {
        let mut tx = self.begin_write(true).await?;
        let exists = Query::new(D::SQL.lock_blob)
            .bind(sha256)
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("lock blob"))?
            .is_some();
        let taken = exists
            && Query::new(sql!("common", "delete_orphan_blob"))
                .bind(sha256)
                .execute(tx.on())
                .await
                .map_err(db_err("delete blob"))?
                > 0;
        tx.commit().await.map_err(db_err("commit blob"))?;
        Ok(taken)
    }

    async fn file_usage(&self, owner: Option<UserId>) -> Result<u64> {
        let row = Query::new(sql!("common", "file_usage"))
            .bind(owner_key(owner))
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("file usage"))?;
        Ok(row
            .map(|r| r.i64_at(0))
            .transpose()?
            .map_or(0, |b| u64::try_from(b).unwrap_or(0)))
    }
}
