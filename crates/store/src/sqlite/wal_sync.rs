//! Group fsync of SQLite's write-ahead log, outside the write lock.
//!
//! Acknowledged submissions must survive power loss, so their commit must reach the
//! disk. With `synchronous = FULL`, SQLite fsyncs the WAL inside `COMMIT`, holding the
//! write lock for the whole flush: every other write waits for the disk. Instead, hot
//! inserts commit with `synchronous = NORMAL` (the WAL frames are written, not flushed)
//! and then wait here for one `fdatasync` of the WAL file that started after their
//! commit: the next transaction runs meanwhile, and one flush covers every commit
//! written before it. A checkpoint in between is harmless: SQLite flushes the WAL
//! before copying it and the database after.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use switchyard_core::Error;
use switchyard_core::store::Synced;
use tokio::sync::oneshot;

#[derive(Default)]
struct State {
    /// Commits waiting for a flush that starts after they registered.
    waiters: Vec<oneshot::Sender<std::io::Result<()>>>,
    stopped: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// The flusher of one database's WAL file: a thread that sleeps until a commit asks for
/// a flush. Dropping it stops the thread.
pub(crate) struct WalSync {
    shared: Arc<Shared>,
}

impl WalSync {
    /// `wal` is the database's `-wal` file; it is opened on the first flush (SQLite
    /// creates it with the first write) and kept open.
    pub(crate) fn start(wal: PathBuf) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let thread_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("sqlite-wal-sync".into())
            .spawn(move || flush_loop(&thread_shared, &wal));
        if let Err(e) = spawned {
            // Without the thread every wait fails; writes then report it.
            tracing::error!(error = %e, "could not start the WAL flusher");
            shared
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .stopped = true;
        }
        WalSync { shared }
    }

    /// Call after a commit: resolves once that commit is on disk.
    pub(crate) fn after_commit(&self) -> Synced {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.stopped {
                let _ = tx.send(Err(std::io::Error::other("the WAL flusher is not running")));
            } else {
                state.waiters.push(tx);
            }
        }
        self.shared.wake.notify_one();
        Box::pin(async move {
            match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(Error::unavailable(format!(
                    "the database could not flush its log to disk: {e}"
                ))),
                Err(_) => Err(Error::unavailable("the database is shutting down")),
            }
        })
    }
}

impl Drop for WalSync {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stopped = true;
        self.shared.wake.notify_one();
    }
}

fn flush_loop(shared: &Shared, wal: &Path) {
    let mut file: Option<File> = None;
    loop {
        let waiters = {
            let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            while state.waiters.is_empty() && !state.stopped {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.waiters.is_empty() {
                return;
            }
            // Every commit registered before this flush starts is covered by it; later
            // ones wait for the next.
            std::mem::take(&mut state.waiters)
        };
        let result = flush(&mut file, wal);
        if let Err(e) = &result {
            tracing::error!(error = %e, path = %wal.display(), "flushing the WAL failed");
            file = None;
        }
        for tx in waiters {
            let _ = tx.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            });
        }
    }
}

/// `fdatasync` of the WAL file, reopening it if SQLite replaced it (it deletes the WAL
/// when its last connection closes and creates a new one on the next write).
fn flush(file: &mut Option<File>, wal: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let current = std::fs::metadata(wal)?.ino();
    let f = match file.take() {
        Some(f) if !f.metadata().is_ok_and(|m| m.ino() != current) => file.insert(f),
        _ => file.insert(File::open(wal)?),
    };
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_waiter_is_answered_by_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("db-wal");
        std::fs::write(&wal, b"frames").unwrap();
        let sync = WalSync::start(wal);
        let waits: Vec<Synced> = (0..50).map(|_| sync.after_commit()).collect();
        for w in waits {
            w.await.expect("flushed");
        }
        sync.after_commit().await.expect("flushed again");
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let sync = WalSync::start(dir.path().join("never-created-wal"));
        let e = sync.after_commit().await.unwrap_err();
        assert_eq!(e.code, switchyard_core::ErrorCode::Unavailable);
    }

    #[tokio::test]
    async fn a_stopped_flusher_refuses_new_waits() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("db-wal");
        std::fs::write(&wal, b"frames").unwrap();
        let sync = WalSync::start(wal);
        let shared = sync.shared.clone();
        drop(sync);
        let again = WalSync { shared };
        assert!(again.after_commit().await.is_err());
    }
}
