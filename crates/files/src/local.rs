//! Objects as files in a directory: `objects/<key>` once finished, `partial/<key>` while
//! being written. A finished object is synced to disk, then renamed into place (and its
//! directory synced), so a crash leaves either the whole object or a partial file that
//! the collector removes. Small objects are written in one go when complete; larger ones
//! by a thread of their own as they arrive (plain blocking writes, no copies).

use std::io::{SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use switchyard_core::files::{ByteRange, ByteStream, ObjectStore, ObjectWriter};
use switchyard_core::{Error, ErrorCode, Result};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{mpsc, oneshot};

use crate::{check_key, io_error};

/// An object up to this size is kept in memory until it is complete, then written in one
/// go; a larger one is written as it arrives by a thread of its own.
const SMALL: usize = 256 << 10;
/// Chunks queued for an upload's thread (each as the connection delivered it).
const IN_FLIGHT: usize = 16;
/// Bytes per chunk of a download.
const READ_CHUNK: usize = 256 << 10;

pub struct LocalObjects {
    root: PathBuf,
}

impl LocalObjects {
    pub async fn open(root: &Path) -> Result<Self> {
        for dir in ["objects", "partial"] {
            tokio::fs::create_dir_all(root.join(dir))
                .await
                .map_err(io_error("create the files directory"))?;
        }
        Ok(LocalObjects {
            root: root.to_path_buf(),
        })
    }

    fn object(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join("objects").join(key))
    }

    fn partial(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join("partial").join(key.replace('/', "-")))
    }
}

async fn remove(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error("remove an object")(e)),
        _ => Ok(()),
    }
}

#[async_trait]
impl ObjectStore for LocalObjects {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(LocalWriter {
            partial: self.partial(key)?,
            object: self.object(key)?,
            state: State::Buffered(Vec::new(), 0),
        }))
    }

    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let path = self.object(key)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorCode::Unavailable,
                    format!("file storage: object {key} is missing"),
                ));
            }
            Err(e) => return Err(io_error("open an object")(e)),
        };
        let stream = match range {
            Some(r) => {
                file.seek(SeekFrom::Start(r.start))
                    .await
                    .map_err(io_error("seek in an object"))?;
                let limited = file.take(r.end.saturating_sub(r.start));
                tokio_util::io::ReaderStream::with_capacity(limited, READ_CHUNK).boxed()
            }
            None => tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK).boxed(),
        };
        Ok(stream)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        remove(&self.object(key)?).await
    }

    async fn discard(&self, key: &str, _token: Option<&str>) -> Result<()> {
        remove(&self.partial(key)?).await?;
        remove(&self.object(key)?).await
    }

    async fn probe(&self) -> Result<()> {
        tokio::fs::metadata(self.root.join("objects"))
            .await
            .map(drop)
            .map_err(io_error("look at the files directory"))
    }
}

/// What the writing thread is told.
enum Message {
    Data(Bytes),
    /// Sync, move into place, answer.
    Finish,
}

enum State {
    /// A small object so far: kept until it is finished (then written in one go) or
    /// grows past [`SMALL`].
    Buffered(Vec<Bytes>, usize),
    /// A large one: a thread of its own writes it as it arrives, so that receiving,
    /// hashing and writing overlap.
    Streaming {
        tx: mpsc::Sender<Message>,
        done: oneshot::Receiver<std::io::Result<bool>>,
    },
}

struct LocalWriter {
    partial: PathBuf,
    object: PathBuf,
    state: State,
}

/// Writes `first`, then what arrives on `rx`, to `partial`; on `Finish` syncs it and
/// moves it to `object`. Without `Finish` (the upload was given up) the partial file goes.
fn write_object(
    partial: &Path,
    object: &Path,
    first: Vec<Bytes>,
    mut rx: Option<mpsc::Receiver<Message>>,
) -> std::io::Result<bool> {
    let written = (|| {
        let mut file = std::fs::File::create(partial)?;
        let mut flushing = Writeback::default();
        for chunk in first {
            file.write_all(&chunk)?;
        }
        if let Some(rx) = rx.as_mut() {
            loop {
                match rx.blocking_recv() {
                    Some(Message::Data(chunk)) => {
                        file.write_all(&chunk)?;
                        flushing.wrote(&file, chunk.len() as u64);
                    }
                    Some(Message::Finish) => break,
                    None => return Ok(false),
                }
            }
        }
        file.sync_all()?;
        drop(file);
        let dir = object
            .parent()
            .ok_or_else(|| std::io::Error::other("object without a directory"))?;
        std::fs::create_dir_all(dir)?;
        std::fs::rename(partial, object)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(true)
    })();
    if !matches!(written, Ok(true)) {
        let _ = std::fs::remove_file(partial);
    }
    written
}

/// Starts writing a large object's pages to disk while it is still arriving (Linux:
/// `sync_file_range`, which does not wait), so the `fsync` that ends the upload has
/// little left to do.
#[derive(Default)]
struct Writeback {
    written: u64,
    started: u64,
}

/// Pages are handed to the disk in steps of this many bytes.
const WRITEBACK_STEP: u64 = 16 << 20;

impl Writeback {
    fn wrote(&mut self, file: &std::fs::File, n: u64) {
        self.written += n;
        if self.written - self.started < WRITEBACK_STEP {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: the descriptor is open for the call's duration; the call only starts
            // writeback of a range of it.
            unsafe {
                libc::sync_file_range(
                    file.as_raw_fd(),
                    self.started as libc::off64_t,
                    (self.written - self.started) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = file;
        self.started = self.written;
    }
}

impl LocalWriter {
    fn start_thread(&mut self, first: Vec<Bytes>) -> Result<()> {
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        let (done_tx, done) = oneshot::channel();
        let (partial, object) = (self.partial.clone(), self.object.clone());
        std::thread::Builder::new()
            .name("upload".into())
            .stack_size(256 << 10)
            .spawn(move || {
                let _ = done_tx.send(write_object(&partial, &object, first, Some(rx)));
            })
            .map_err(io_error("start an upload thread"))?;
        self.state = State::Streaming { tx, done };
        Ok(())
    }
}

async fn outcome(done: oneshot::Receiver<std::io::Result<bool>>) -> Result<bool> {
    done.await
        .map_err(|_| Error::internal_msg("an upload thread stopped"))?
        .map_err(io_error("write an object"))
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<Option<String>> {
        match &mut self.state {
            State::Buffered(chunks, len) => {
                *len += chunk.len();
                chunks.push(chunk);
                if *len > SMALL {
                    let first = std::mem::take(chunks);
                    self.start_thread(first)?;
                }
            }
            State::Streaming { tx, .. } => {
                if tx.send(Message::Data(chunk)).await.is_err() {
                    // The thread stopped on an error: report it.
                    let stopped =
                        std::mem::replace(&mut self.state, State::Buffered(Vec::new(), 0));
                    if let State::Streaming { done, .. } = stopped {
                        outcome(done).await?;
                    }
                    return Err(Error::internal_msg("an upload thread stopped"));
                }
            }
        }
        Ok(None)
    }

    async fn finish(self: Box<Self>) -> Result<()> {
        let LocalWriter {
            partial,
            object,
            state,
        } = *self;
        match state {
            State::Buffered(chunks, _) => {
                tokio::task::spawn_blocking(move || write_object(&partial, &object, chunks, None))
                    .await
                    .map_err(|e| Error::internal("write an object", e))?
                    .map_err(io_error("write an object"))?;
            }
            State::Streaming { tx, done } => {
                // A send error means the thread stopped: `outcome` says why.
                let _ = tx.send(Message::Finish).await;
                if !outcome(done).await? {
                    return Err(Error::internal_msg("an upload thread stopped"));
                }
            }
        }
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        if let State::Streaming { tx, done } = self.state {
            drop(tx);
            // The thread removes its partial file.
            let _ = done.await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    async fn read_all(store: &LocalObjects, key: &str, range: Option<ByteRange>) -> Vec<u8> {
        let chunks: Vec<Bytes> = store
            .read(key, range)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        chunks.concat()
    }

    #[tokio::test]
    async fn objects_appear_whole_and_read_by_range() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalObjects::open(dir.path()).await.unwrap();
        let key = "0a/0192f3c4-aaaa-7bbb-8ccc-0123456789ab";
        let mut w = store.create(key).await.unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in data.chunks(70_000) {
            w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        assert!(
            store.read(key, None).await.is_err(),
            "not visible before finish"
        );
        w.finish().await.unwrap();
        assert_eq!(read_all(&store, key, None).await, data);
        assert_eq!(read_all(&store, key, Some(10..20)).await, &data[10..20]);
        store.delete(key).await.unwrap();
        store.delete(key).await.unwrap();
        assert!(store.read(key, None).await.is_err());
    }

    #[tokio::test]
    async fn an_unfinished_object_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalObjects::open(dir.path()).await.unwrap();
        let key = "0b/0192f3c4-aaaa-7bbb-8ccc-0123456789ac";
        let mut w = store.create(key).await.unwrap();
        w.write(Bytes::from_static(b"half")).await.unwrap();
        drop(w);
        assert_eq!(
            std::fs::read_dir(dir.path().join("partial"))
                .unwrap()
                .count(),
            0,
            "a small object is kept in memory until it is finished"
        );
        store.discard(key, None).await.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("partial"))
                .unwrap()
                .count(),
            0
        );
        let w = store.create(key).await.unwrap();
        w.abort().await.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("partial"))
                .unwrap()
                .count(),
            0
        );
    }
}
