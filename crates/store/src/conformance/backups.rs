//! The records of backups the servers took: progress, the newest success, silence.

use switchyard_core::BackupId;
use switchyard_core::backup::{BACKUP_ALIVE_MS, BackupRecord, BackupStatus};

use super::*;

fn backup(started_at: Timestamp, status: BackupStatus) -> BackupRecord {
    BackupRecord {
        id: BackupId::new(),
        name: format!("switchyard-{}.backup", started_at.millis()),
        target: "/backups".into(),
        trigger: "manual".into(),
        status,
        started_at,
        alive_at: started_at,
        finished_at: None,
        size_bytes: None,
        tasks: None,
        error: None,
    }
}

pub async fn backups_are_recorded_newest_first(store: SharedStore) {
    assert_eq!(store.last_backup().await.unwrap(), None);
    let now = Timestamp::now();
    let mut older = backup(now.minus_ms(300_000), BackupStatus::Running);
    store.put_backup(&older).await.unwrap();
    older.status = BackupStatus::Succeeded;
    older.finished_at = Some(now.minus_ms(290_000));
    older.size_bytes = Some(1_234);
    older.tasks = Some(7);
    store.put_backup(&older).await.unwrap();
    let mut failed = backup(now.minus_ms(200_000), BackupStatus::Failed);
    failed.error = Some("disk full".into());
    store.put_backup(&failed).await.unwrap();
    // Running, but silent for longer than a running backup ever is.
    let silent = backup(now.minus_ms(BACKUP_ALIVE_MS * 7), BackupStatus::Running);
    store.put_backup(&silent).await.unwrap();
    let alive = backup(now, BackupStatus::Running);
    store.put_backup(&alive).await.unwrap();

    let listed = store.list_backups(10).await.unwrap();
    let ids: Vec<BackupId> = listed.iter().map(|b| b.id).collect();
    assert_eq!(ids, [alive.id, silent.id, failed.id, older.id]);
    let statuses: Vec<BackupStatus> = listed.iter().map(|b| b.status).collect();
    assert_eq!(
        statuses,
        [
            BackupStatus::Running,
            BackupStatus::Interrupted,
            BackupStatus::Failed,
            BackupStatus::Succeeded
        ]
    );
    assert_eq!(listed[3], older, "every field comes back");
    assert_eq!(store.list_backups(2).await.unwrap().len(), 2);
    assert_eq!(store.last_backup().await.unwrap(), Some(older.clone()));
    // A success whose archive was deleted still counts; a newer one wins.
    older.status = BackupStatus::Deleted;
    store.put_backup(&older).await.unwrap();
    assert_eq!(store.last_backup().await.unwrap(), Some(older));
    let mut newer = alive.clone();
    newer.status = BackupStatus::Succeeded;
    newer.finished_at = Some(Timestamp::now());
    store.put_backup(&newer).await.unwrap();
    assert_eq!(store.last_backup().await.unwrap(), Some(newer));
}
