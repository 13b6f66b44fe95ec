//! A file as the API shows it: its record, without where its bytes are kept.

use serde::Serialize;
use switchyard_core::files::FileRecord;
use switchyard_core::{FileId, TaskId, Timestamp, UserId};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[schema(as = File)]
pub struct FileView {
    pub id: FileId,
    pub name: String,
    /// In bytes.
    pub size: u64,
    pub content_type: String,
    /// Lowercase hex SHA-256 of the content (also its `ETag`).
    pub sha256: String,
    pub created_at: Timestamp,
    /// The user it belongs to (an artifact: its task's owner).
    pub owner: Option<UserId>,
    /// Set on artifacts: the task whose agent uploaded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
}

impl From<FileRecord> for FileView {
    fn from(f: FileRecord) -> Self {
        FileView {
            id: f.id,
            name: f.name,
            size: f.size,
            content_type: f.content_type,
            sha256: f.sha256,
            created_at: f.created_at,
            owner: f.owner_id,
            task_id: f.task_id,
        }
    }
}
