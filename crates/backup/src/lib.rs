//! Backups of a Switchyard deployment: every table that holds user data and the bytes of
//! every file, from one consistent snapshot, in one portable archive (docs/backup.md)
//! that restores into either database backend and either file storage.
//!
//! The database reads and writes its rows through `switchyard_core::backup::BackupStore`;
//! this crate adds the archive around them ([`archive`]): a writer thread compresses and
//! checksums what the database reads while it reads on, and a reader thread checks what a
//! restore writes while the database writes on.

pub mod archive;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use switchyard_core::backup::{ExportOptions, TableItem};
use switchyard_core::files::{ObjectStore, valid_object_key};
use switchyard_core::store::Store;
use switchyard_core::{Error, ErrorCode, Result, Timestamp};
use tokio::sync::{mpsc, oneshot};

use archive::{ArchiveReader, ArchiveWriter, Entry};
pub use archive::{Manifest, verify};

/// How much lower than a server's the CPU priority of a backup's threads is (`nice`): a
/// backup beside busy servers on the same cores takes longer instead of slowing them.
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority by [`BACKGROUND_NICE`] (threads it starts
/// inherit it). On Linux a priority is per thread; elsewhere this does nothing.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority has no memory effects; `who` 0 is the calling thread on Linux.
        let ret = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE) };
        if ret != 0 {
            tracing::debug!("could not lower the backup's CPU priority");
        }
    }
}

/// What goes into a backup.
#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// The access-token signing keys, the key of signed file URLs and users' sessions.
    /// Without them, a restored deployment makes new keys and everyone signs in again.
    pub include_secrets: bool,
    /// Read without pausing between pages (see `ExportOptions::full_speed`).
    pub full_speed: bool,
}

/// A blob a backup carries: the bytes of one or more files.
struct BlobRef {
    sha256: String,
    object_key: String,
    size: u64,
}

/// What the writer thread is handed, in order.
enum Piece {
    Table(TableItem),
    Blob {
        sha256: String,
        size: u64,
    },
    Bytes(Bytes),
    /// The manifest, but for the tables and files, which the writer counts.
    Finish(Box<Manifest>),
}

fn stopped() -> Error {
    Error::internal_msg("the archive writer stopped")
}

/// Runs an [`ArchiveWriter`] on a thread of its own: the database goes on reading while
/// the rows are encoded, hashed and compressed. Without [`Piece::Finish`] the partial file
/// is removed.
fn spawn_writer(
    path: PathBuf,
    mut pieces: mpsc::Receiver<Piece>,
) -> oneshot::Receiver<Result<Manifest>> {
    let (done, result) = oneshot::channel();
    std::thread::spawn(move || {
        lower_priority();
        let outcome = (|| {
            let mut writer = ArchiveWriter::create(&path)?;
            let step = |writer: &mut ArchiveWriter, piece: Piece| match piece {
                Piece::Table(TableItem::Table { name, columns }) => {
                    writer.begin_table(&name, &columns).map(|()| None)
                }
                Piece::Table(TableItem::Rows(rows)) => writer.rows(&rows).map(|()| None),
                Piece::Table(TableItem::Commit) => Ok(None),
                Piece::Blob { sha256, size } => writer.begin_blob(&sha256, size).map(|()| None),
                Piece::Bytes(bytes) => writer.blob_bytes(&bytes).map(|()| None),
                Piece::Finish(manifest) => Ok(Some(manifest)),
            };
            while let Some(piece) = pieces.blocking_recv() {
                match step(&mut writer, piece) {
                    Ok(None) => {}
                    Ok(Some(manifest)) => return writer.finish(*manifest),
                    Err(e) => {
                        writer.abandon();
                        return Err(e);
                    }
                }
            }
            writer.abandon();
            Err(Error::unavailable(
                "the backup stopped before it was complete",
            ))
        })();
        let _ = done.send(outcome);
    });
    result
}

/// Writes a backup of `store` and the file bytes in `objects` to `output` while servers
/// keep running. The archive appears under its name only once it is complete and on disk.
pub async fn backup(
    store: &dyn Store,
    objects: &dyn ObjectStore,
    output: &Path,
    options: &BackupOptions,
) -> Result<Manifest> {
    let created_at = Timestamp::now();
    let (pieces, to_write) = mpsc::channel(8);
    let written = spawn_writer(output.to_owned(), to_write);
    let outcome = send_backup(store, objects, options, created_at, &pieces).await;
    if outcome.is_err() {
        drop(pieces);
    }
    let written = written.await.map_err(|_| stopped())?;
    outcome.and(written)
}

async fn send_backup(
    store: &dyn Store,
    objects: &dyn ObjectStore,
    options: &BackupOptions,
    created_at: Timestamp,
    pieces: &mpsc::Sender<Piece>,
) -> Result<()> {
    let (items, mut read) = mpsc::channel(4);
    let export_options = ExportOptions {
        include_secrets: options.include_secrets,
        full_speed: options.full_speed,
    };
    let export = store.export(&export_options, items);
    let forward = async {
        let mut blobs = Vec::new();
        let mut blob_columns: Option<[usize; 3]> = None;
        while let Some(item) = read.recv().await {
            match &item {
                TableItem::Table { name, columns } => {
                    let at = |c: &str| columns.iter().position(|n| n == c);
                    blob_columns = match (name.as_str(), at("sha256"), at("object_key"), at("size"))
                    {
                        ("blobs", Some(a), Some(b), Some(c)) => Some([a, b, c]),
                        _ => None,
                    };
                }
                TableItem::Rows(rows) => {
                    if let Some([sha, key, size]) = blob_columns {
                        for row in rows {
                            blobs.push(BlobRef {
                                sha256: row[sha].as_str().unwrap_or_default().to_owned(),
                                object_key: row[key].as_str().unwrap_or_default().to_owned(),
                                size: row[size].as_u64().unwrap_or_default(),
                            });
                        }
                    }
                }
                TableItem::Commit => {}
            }
            pieces
                .send(Piece::Table(item))
                .await
                .map_err(|_| stopped())?;
        }
        Ok(blobs)
    };
    let (info, blobs) = tokio::try_join!(export, forward)?;
    for blob in blobs {
        send_blob(objects, &blob, pieces).await?;
    }
    let manifest = Manifest {
        format: archive::FORMAT.into(),
        version: archive::VERSION,
        switchyard: env!("CARGO_PKG_VERSION").to_owned(),
        backend: info.backend.into(),
        created_at: created_at.to_rfc3339(),
        schema_version: info.schema_version,
        secrets: options.include_secrets,
        tables: Default::default(),
        files: Default::default(),
    };
    pieces
        .send(Piece::Finish(Box::new(manifest)))
        .await
        .map_err(|_| stopped())
}

/// Copies one blob's bytes from the object store into the archive.
async fn send_blob(
    objects: &dyn ObjectStore,
    blob: &BlobRef,
    pieces: &mpsc::Sender<Piece>,
) -> Result<()> {
    let mut stream = objects.read(&blob.object_key, None).await.map_err(|e| {
        Error::new(
            e.code,
            format!(
                "cannot read the bytes of file content {} ({}): {}",
                blob.sha256, blob.object_key, e.message
            ),
        )
    })?;
    pieces
        .send(Piece::Blob {
            sha256: blob.sha256.clone(),
            size: blob.size,
        })
        .await
        .map_err(|_| stopped())?;
    let mut sent = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::internal("read file bytes for a backup", e))?;
        sent += chunk.len() as u64;
        if sent > blob.size {
            break;
        }
        pieces
            .send(Piece::Bytes(chunk))
            .await
            .map_err(|_| stopped())?;
    }
    if sent != blob.size {
        return Err(Error::internal_msg(format!(
            "file content {} holds {sent} bytes, its record says {}",
            blob.sha256, blob.size
        )));
    }
    Ok(())
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    pub rows: u64,
    /// Reading the archive and writing the rows and files.
    pub import_time: std::time::Duration,
    /// Search documents written after the import, and the time it took.
    pub search_documents: u64,
    pub index_time: std::time::Duration,
}

/// Restores the archive at `input` into `store` and `objects`: all of it or, on any
/// error, nothing in the database. A database that already holds data is refused unless
/// `force`. File bytes are written before the database commits; a restore that fails
/// may leave some in the storage, unused.
pub async fn restore(
    store: &dyn Store,
    objects: &dyn ObjectStore,
    input: &Path,
    force: bool,
) -> Result<Restored> {
    // Opened here so a file that is no archive is refused before anything else.
    let reader = ArchiveReader::open(input)?;
    if !force && store.holds_data().await? {
        return Err(Error::new(
            ErrorCode::InvalidState,
            "the database already holds data (users, agents, tasks, schedules, alert rules \
             or files): restore into an empty one, or pass --force to replace everything in it",
        ));
    }
    let (entries_tx, entries) = mpsc::channel(8);
    std::thread::spawn(move || {
        let mut reader = reader;
        loop {
            let (entry, last) = match reader.next_entry() {
                Ok(Some(entry)) => {
                    let last = matches!(entry, Entry::Manifest(_));
                    (Ok(entry), last)
                }
                Ok(None) => break,
                Err(e) => (Err(e), true),
            };
            if entries_tx.blocking_send(entry).is_err() || last {
                break;
            }
        }
    });
    let started = std::time::Instant::now();
    let (items, to_import) = mpsc::channel(4);
    let import = store.import(to_import);
    let drive = apply_entries(store, objects, entries, items);
    let (rows, manifest) = tokio::try_join!(import, drive)?;
    let import_time = started.elapsed();
    // The search index is derived: build it again, as the servers would in time.
    let mut search_documents = 0;
    loop {
        let written = store.index_tasks(5_000).await?;
        if written == 0 {
            break;
        }
        search_documents += written;
    }
    Ok(Restored {
        manifest,
        rows,
        import_time,
        search_documents,
        index_time: started.elapsed() - import_time,
    })
}

/// Feeds the database the archive's rows and the object store its files; sends
/// [`TableItem::Commit`] once the manifest has checked out.
async fn apply_entries(
    store: &dyn Store,
    objects: &dyn ObjectStore,
    mut entries: mpsc::Receiver<Result<Entry>>,
    items: mpsc::Sender<TableItem>,
) -> Result<Manifest> {
    let gone = || Error::internal_msg("the restore's database side stopped");
    // sha256 → object key, from the blobs table; removed as their bytes arrive.
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut blob_columns: Option<(usize, usize)> = None;
    let mut writer = None;
    while let Some(entry) = entries.recv().await {
        match entry? {
            Entry::Table { name, columns } => {
                let at = |c: &str| columns.iter().position(|n| n == c);
                blob_columns = match (name.as_str(), at("sha256"), at("object_key")) {
                    ("blobs", Some(a), Some(b)) => Some((a, b)),
                    _ => None,
                };
                items
                    .send(TableItem::Table { name, columns })
                    .await
                    .map_err(|_| gone())?;
            }
            Entry::Rows(rows) => {
                if let Some((sha, key)) = blob_columns {
                    for row in &rows {
                        let (Some(sha), Some(key)) = (row[sha].as_str(), row[key].as_str()) else {
                            continue;
                        };
                        // Servers make object keys; one from an archive is used only if
                        // a server could have made it.
                        if !valid_object_key(key) {
                            return Err(Error::new(
                                ErrorCode::ValidationFailed,
                                format!("the archive names file content by an unsafe key {key:?}"),
                            ));
                        }
                        keys.insert(sha.to_owned(), key.to_owned());
                    }
                }
                items
                    .send(TableItem::Rows(rows))
                    .await
                    .map_err(|_| gone())?;
            }
            Entry::TableEnd(..) => {}
            Entry::Blob { sha256, .. } => {
                let key = keys.remove(&sha256).ok_or_else(|| {
                    Error::new(
                        ErrorCode::ValidationFailed,
                        format!("the archive holds file content {sha256} that no file uses"),
                    )
                })?;
                writer = Some(objects.create(&key).await?);
            }
            Entry::BlobBytes(bytes) => {
                if let Some(w) = writer.as_mut() {
                    w.write(Bytes::from(bytes)).await?;
                }
            }
            Entry::BlobEnd => {
                if let Some(w) = writer.take() {
                    w.finish().await?;
                }
            }
            Entry::Manifest(manifest) => {
                if manifest.schema_version > store.schema_version() {
                    return Err(Error::new(
                        ErrorCode::ValidationFailed,
                        format!(
                            "the archive comes from a later Switchyard ({}, database schema {}; \
                             this one knows up to {}): restore it with that version or a later one",
                            manifest.switchyard,
                            manifest.schema_version,
                            store.schema_version()
                        ),
                    ));
                }
                if let Some(sha) = keys.keys().next() {
                    return Err(Error::new(
                        ErrorCode::ValidationFailed,
                        format!("the archive lacks the bytes of file content {sha}"),
                    ));
                }
                items.send(TableItem::Commit).await.map_err(|_| gone())?;
                return Ok(manifest);
            }
        }
    }
    if let Some(w) = writer {
        let _ = w.abort().await;
    }
    Err(Error::new(
        ErrorCode::ValidationFailed,
        "not a valid backup archive: it ends before its manifest",
    ))
}
