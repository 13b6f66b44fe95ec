//! Files: records, content-addressed blobs, per-owner usage, unfinished uploads.

use switchyard_core::Error;
use switchyard_core::FileId;
use switchyard_core::files::{FileQuery, FileRecord, Stored, Upload};

use super::*;

const QUOTA: u64 = 1_000;

fn record(sha: &str, size: u64, owner: Option<UserId>, task: Option<TaskId>) -> FileRecord {
    FileRecord {
        id: FileId::new(),
        name: "report.pdf".into(),
        size,
        content_type: "application/pdf".into(),
        sha256: sha.repeat(64 / sha.len()),
        owner_id: owner,
        task_id: task,
        created_at: t0(),
    }
}

/// Begins and finishes an upload of `file` whose bytes went to `key`.
async fn store_file(store: &SharedStore, file: &FileRecord, key: &str) -> Result<Stored, Error> {
    store
        .begin_upload(&Upload {
            id: file.id,
            object_key: key.into(),
            token: None,
            started_at: t0(),
        })
        .await
        .expect("begin upload");
    store.finish_upload(file, key, QUOTA).await
}

/// The same bytes are stored once: a second record shares the first one's blob, counts
/// against its owner's quota, and the blob becomes collectable only with its last record.
pub async fn files_share_blobs_and_count_against_quotas(store: SharedStore) {
    let owner = Some(UserId::new());
    let a = record("a", 400, owner, None);
    assert_eq!(store_file(&store, &a, "k/a").await.unwrap(), Stored::New);
    let b = record("a", 400, owner, Some(TaskId::new()));
    assert_eq!(
        store_file(&store, &b, "k/b").await.unwrap(),
        Stored::Duplicate
    );
    assert_eq!(
        store.blob_key(&a.sha256).await.unwrap().as_deref(),
        Some("k/a")
    );
    assert_eq!(store.file_usage(owner).await.unwrap(), 800);
    assert!(
        store
            .stale_uploads(t0().plus_ms(1), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let over = record("c", 300, owner, None);
    let e = store_file(&store, &over, "k/c").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::QuotaExceeded);
    assert_eq!(
        store.get_file(over.id).await.unwrap(),
        None,
        "nothing written"
    );
    assert_eq!(store.blob_key(&over.sha256).await.unwrap(), None);
    assert_eq!(store.file_usage(owner).await.unwrap(), 800);
    let stale = store.stale_uploads(t0().plus_ms(1), 10).await.unwrap();
    assert_eq!(
        stale.len(),
        1,
        "the refused upload's note stays for its caller"
    );
    store.forget_upload(over.id).await.unwrap();
    let other = record("c", 300, Some(UserId::new()), None);
    assert_eq!(
        store_file(&store, &other, "k/c").await.unwrap(),
        Stored::New
    );

    assert_eq!(store.get_file(a.id).await.unwrap().as_ref(), Some(&a));
    let mine = store
        .list_files(&FileQuery {
            owner_id: owner,
            limit: 10,
            ..FileQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(mine, vec![b.clone(), a.clone()], "newest first");
    let page = store
        .list_files(&FileQuery {
            owner_id: owner,
            before: Some(b.id),
            limit: 10,
            ..FileQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page, vec![a.clone()]);
    let artifacts = store
        .list_files(&FileQuery {
            task_id: b.task_id,
            limit: 10,
            ..FileQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(artifacts, vec![b.clone()]);

    assert_eq!(store.delete_file(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.delete_file(a.id).await.unwrap(), None);
    assert_eq!(store.file_usage(owner).await.unwrap(), 400);
    assert!(
        store.orphan_blobs(10).await.unwrap().is_empty(),
        "b uses it"
    );
    store.delete_file(b.id).await.unwrap();
    assert_eq!(store.file_usage(owner).await.unwrap(), 0);
    let orphans = store.orphan_blobs(10).await.unwrap();
    assert_eq!(orphans.len(), 1);
    assert_eq!(
        (orphans[0].sha256.as_str(), orphans[0].object_key.as_str()),
        (a.sha256.as_str(), "k/a")
    );
    assert!(store.take_orphan_blob(&a.sha256).await.unwrap());
    assert!(!store.take_orphan_blob(&a.sha256).await.unwrap());
    assert_eq!(store.blob_key(&a.sha256).await.unwrap(), None);
    assert!(store.orphan_blobs(10).await.unwrap().is_empty());
}

/// A blob used again after its last record went is not collected.
pub async fn a_blob_used_again_is_kept(store: SharedStore) {
    let a = record("d", 10, None, None);
    store_file(&store, &a, "k/d1").await.unwrap();
    store.delete_file(a.id).await.unwrap();
    assert_eq!(store.orphan_blobs(10).await.unwrap().len(), 1);
    let again = record("d", 10, None, None);
    assert_eq!(
        store_file(&store, &again, "k/d2").await.unwrap(),
        Stored::Duplicate
    );
    assert!(store.orphan_blobs(10).await.unwrap().is_empty());
    assert!(!store.take_orphan_blob(&a.sha256).await.unwrap());
    assert_eq!(
        store.blob_key(&a.sha256).await.unwrap().as_deref(),
        Some("k/d1")
    );
}

/// Unfinished uploads are found by age, with what aborting them needs.
pub async fn unfinished_uploads_are_found(store: SharedStore) {
    let id = FileId::new();
    store
        .begin_upload(&Upload {
            id,
            object_key: "k/u".into(),
            token: None,
            started_at: t0(),
        })
        .await
        .unwrap();
    store.note_upload_token(id, "multipart-1").await.unwrap();
    assert!(store.stale_uploads(t0(), 10).await.unwrap().is_empty());
    let stale = store.stale_uploads(t0().plus_ms(1), 10).await.unwrap();
    assert_eq!(
        stale,
        vec![Upload {
            id,
            object_key: "k/u".into(),
            token: Some("multipart-1".into()),
            started_at: t0(),
        }]
    );
    store.forget_upload(id).await.unwrap();
    assert!(
        store
            .stale_uploads(t0().plus_ms(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
}
