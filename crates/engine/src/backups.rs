//! Backups the servers take: on a schedule (the leader only) or on request
//! (`POST /api/v1/backups`), to a directory or S3-compatible storage, keeping the newest
//! `backup.keep`. Each is recorded in the database (`BackupRecord`), so every server
//! lists them, exports their metrics and alerts on their age.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use switchyard_core::backup::{BACKUP_ALIVE_MS, BackupRecord, BackupStatus, MAX_BACKUP_RECORDS};
use switchyard_core::files::ObjectStore;
use switchyard_core::schedule::Timetable;
use switchyard_core::store::{Leadership, Store};
use switchyard_core::{BackupId, Error, ErrorCode, Result, Timestamp};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::config::BackupConfig;

/// Where backups go.
pub enum BackupTarget {
    /// Archives are written straight into the directory.
    Directory(PathBuf),
    /// Archives are written to `spool` (a local directory), then copied to `objects` and
    /// removed from the spool.
    Objects {
        url: String,
        objects: Arc<dyn ObjectStore>,
        spool: PathBuf,
    },
}

impl BackupTarget {
    /// How records and the API name it.
    pub fn describe(&self) -> String {
        match self {
            BackupTarget::Directory(dir) => dir.display().to_string(),
            BackupTarget::Objects { url, .. } => url.clone(),
        }
    }

    async fn remove(&self, name: &str) -> Result<()> {
        match self {
            BackupTarget::Directory(dir) => match tokio::fs::remove_file(dir.join(name)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::internal("delete an old backup", e))
                }
                _ => Ok(()),
            },
            BackupTarget::Objects { objects, .. } => objects.delete(name).await,
        }
    }
}

/// The archive name of a backup started at `at` (UTC): sortable, and a valid object key
/// (`switchyard-20261205-221500-123.backup`).
fn archive_name(at: Timestamp) -> String {
    let stamp: String = at
        .to_rfc3339()
        .chars()
        .filter_map(|c| match c {
            '-' | ':' | 'Z' => None,
            'T' | '.' => Some('-'),
            c => Some(c),
        })
        .collect();
    format!("switchyard-{stamp}.backup")
}

fn not_possible(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidState, message)
}

#[derive(Clone)]
pub struct BackupService {
    pub(crate) store: Arc<dyn Store>,
    /// The file storage whose bytes go into each archive.
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) target: Option<Arc<BackupTarget>>,
    pub(crate) config: BackupConfig,
    pub(crate) timetable: Option<Timetable>,
    /// One backup at a time per server.
    pub(crate) running: Arc<tokio::sync::Mutex<()>>,
}

impl BackupService {
    /// Checks the configuration: a schedule must parse and needs a target.
    pub(crate) fn timetable(config: &BackupConfig, has_target: bool) -> Result<Option<Timetable>> {
        let Some(cron) = &config.schedule else {
            return Ok(None);
        };
        if !has_target {
            return Err(Error::new(
                ErrorCode::ValidationFailed,
                "backup.schedule is set but backup.target is not: say where backups go",
            ));
        }
        if config.keep == 0 {
            return Err(Error::new(
                ErrorCode::ValidationFailed,
                "backup.keep must be at least 1",
            ));
        }
        Timetable::new(cron, "UTC").map(Some)
    }

    pub fn config(&self) -> &BackupConfig {
        &self.config
    }

    /// Where backups go, if anywhere.
    pub fn target(&self) -> Option<String> {
        self.target.as_ref().map(|t| t.describe())
    }

    /// When the schedule takes the next one.
    pub fn next_at(&self) -> Option<Timestamp> {
        self.timetable
            .as_ref()
            .and_then(|t| t.next_after(Timestamp::now()))
    }

    /// Backups, newest first.
    pub async fn list(&self, limit: u32) -> Result<Vec<BackupRecord>> {
        self.store
            .list_backups(limit.clamp(1, MAX_BACKUP_RECORDS))
            .await
    }

    /// Starts a backup in the background; its record, `running`.
    pub async fn start(&self, trigger: &str) -> Result<BackupRecord> {
        let Some(target) = self.target.clone() else {
            return Err(not_possible(
                "backups have nowhere to go: set backup.target to a directory or an s3:// URL",
            ));
        };
        let Ok(guard) = self.running.clone().try_lock_owned() else {
            return Err(not_possible("a backup is already running on this server"));
        };
        let now = Timestamp::now();
        let record = BackupRecord {
            id: BackupId::new(),
            name: archive_name(now),
            target: target.describe(),
            trigger: trigger.to_owned(),
            status: BackupStatus::Running,
            started_at: now,
            alive_at: now,
            finished_at: None,
            size_bytes: None,
            tasks: None,
            error: None,
        };
        self.store.put_backup(&record).await?;
        let this = self.clone();
        let running = record.clone();
        tokio::spawn(async move {
            let _one_at_a_time = guard;
            this.run(running, &target).await;
        });
        Ok(record)
    }

    /// Takes the backup, showing signs of life while it runs, and records how it ended.
    async fn run(&self, mut record: BackupRecord, target: &BackupTarget) {
        tracing::info!(name = %record.name, target = %record.target, trigger = %record.trigger, "backup started");
        let work = self.take(target, &record.name);
        tokio::pin!(work);
        let mut alive = tokio::time::interval(Duration::from_millis(BACKUP_ALIVE_MS));
        alive.tick().await;
        let outcome = loop {
            tokio::select! {
                outcome = &mut work => break outcome,
                _ = alive.tick() => {
                    record.alive_at = Timestamp::now();
                    if let Err(e) = self.store.put_backup(&record).await {
                        tracing::warn!(error = %e, "could not record a backup's progress");
                    }
                }
            }
        };
        let now = Timestamp::now();
        record.alive_at = now;
        record.finished_at = Some(now);
        match outcome {
            Ok((size, tasks)) => {
                record.status = BackupStatus::Succeeded;
                record.size_bytes = Some(size);
                record.tasks = Some(tasks);
                tracing::info!(name = %record.name, size, tasks, "backup finished");
            }
            Err(e) => {
                record.status = BackupStatus::Failed;
                record.error = Some(e.message.clone());
                tracing::warn!(name = %record.name, error = %e, "backup failed");
            }
        }
        if let Err(e) = self.store.put_backup(&record).await {
            tracing::warn!(error = %e, "could not record a backup's outcome");
        }
        if record.status == BackupStatus::Succeeded
            && let Err(e) = self.prune(target).await
        {
            tracing::warn!(error = %e, "could not delete old backups");
        }
    }

    /// Writes the archive to the target: its size and the tasks in it.
    async fn take(&self, target: &BackupTarget, name: &str) -> Result<(u64, u64)> {
        let options = switchyard_backup::BackupOptions {
            include_secrets: self.config.include_secrets,
            full_speed: false,
        };
        let (dir, upload) = match target {
            BackupTarget::Directory(dir) => (dir, None),
            BackupTarget::Objects { objects, spool, .. } => (spool, Some(objects)),
        };
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::internal(format!("cannot create {}", dir.display()), e))?;
        let path = dir.join(name);
        let written =
            switchyard_backup::backup(&*self.store, &*self.objects, &path, &options).await;
        let outcome = match (written, upload) {
            (Err(e), _) => Err(e),
            (Ok(m), None) => Ok(m),
            (Ok(m), Some(objects)) => copy_to(objects.as_ref(), &path, name).await.map(|()| m),
        };
        let size = tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if upload.is_some() {
            let _ = tokio::fs::remove_file(&path).await;
        }
        let manifest = outcome?;
        let tasks = manifest.tables.get("tasks").map_or(0, |t| t.rows);
        Ok((size, tasks))
    }

    /// Deletes successful backups at this target beyond the newest `keep`.
    async fn prune(&self, target: &BackupTarget) -> Result<()> {
        let here = target.describe();
        let kept = self.config.keep.max(1) as usize;
        let old = self
            .store
            .list_backups(MAX_BACKUP_RECORDS)
            .await?
            .into_iter()
            .filter(|b| b.status == BackupStatus::Succeeded && b.target == here)
            .skip(kept);
        for mut b in old {
            target.remove(&b.name).await?;
            b.status = BackupStatus::Deleted;
            self.store.put_backup(&b).await?;
            tracing::info!(name = %b.name, "deleted an old backup");
        }
        Ok(())
    }

    /// Takes a backup at every tick of `backup.schedule`, while this server leads.
    pub async fn run_schedule(self, leader: Arc<dyn Leadership>, shutdown: CancellationToken) {
        let Some(table) = self.timetable.clone() else {
            return;
        };
        loop {
            let Some(next) = table.next_after(Timestamp::now()) else {
                return;
            };
            let wait = Duration::from_millis(next.since(Timestamp::now()));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            if !leader.check().await {
                continue;
            }
            if let Err(e) = self.start("schedule").await {
                tracing::warn!(error = %e, "a scheduled backup could not start");
            }
        }
    }
}

/// Copies a finished archive into object storage.
async fn copy_to(objects: &dyn ObjectStore, path: &std::path::Path, name: &str) -> Result<()> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::internal("open the archive", e))?;
    let mut writer = objects.create(name).await?;
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        let n = match file.read(&mut chunk).await {
            Ok(n) => n,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(Error::internal("read the archive", e));
            }
        };
        if n == 0 {
            return writer.finish().await;
        }
        chunk.truncate(n);
        if let Err(e) = writer.write(Bytes::from(chunk)).await {
            let _ = writer.abort().await;
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_sort_by_time() {
        let a = archive_name(Timestamp::from_millis(1_796_508_139_971));
        assert_eq!(a, "switchyard-20261205-220219-971.backup");
        let b = archive_name(Timestamp::from_millis(1_796_508_140_001));
        assert!(a < b);
    }

    #[test]
    fn a_schedule_needs_a_target_and_a_valid_cron() {
        let mut config = BackupConfig {
            schedule: Some("0 3 * * *".into()),
            ..BackupConfig::default()
        };
        let e = BackupService::timetable(&config, false).unwrap_err();
        assert!(e.message.contains("backup.target"), "{}", e.message);
        assert!(BackupService::timetable(&config, true).unwrap().is_some());
        config.schedule = Some("every day".into());
        assert!(BackupService::timetable(&config, true).is_err());
        config.schedule = None;
        assert!(BackupService::timetable(&config, false).unwrap().is_none());
    }
}
