//! Objects as files in a directory: `objects/<key>` once finished, `partial/<key>` while
//! being written. A finished object is synced to disk, then renamed into place (and its
//! directory synced), so a crash leaves either the whole object or a partial file that
//! the collector removes.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use switchyard_core::files::{ByteRange, ByteStream, ObjectStore, ObjectWriter};
use switchyard_core::{Error, ErrorCode, Result};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::{check_key, io_error};

/// Bytes gathered before one write to disk.
const WRITE_BLOCK: usize = 1 << 20;
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
        let partial = self.partial(key)?;
        let object = self.object(key)?;
        let file = tokio::fs::File::create(&partial)
            .await
            .map_err(io_error("create an object"))?;
        Ok(Box::new(LocalWriter {
            file,
            partial,
            object,
            block: BytesMut::with_capacity(WRITE_BLOCK),
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

struct LocalWriter {
    file: tokio::fs::File,
    partial: PathBuf,
    object: PathBuf,
    block: BytesMut,
}

impl LocalWriter {
    async fn flush_block(&mut self) -> Result<()> {
        if !self.block.is_empty() {
            self.file
                .write_all(&self.block)
                .await
                .map_err(io_error("write an object"))?;
            self.block.clear();
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<Option<String>> {
        if self.block.is_empty() && chunk.len() >= WRITE_BLOCK {
            self.file
                .write_all(&chunk)
                .await
                .map_err(io_error("write an object"))?;
            return Ok(None);
        }
        self.block.extend_from_slice(&chunk);
        if self.block.len() >= WRITE_BLOCK {
            self.flush_block().await?;
        }
        Ok(None)
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        self.flush_block().await?;
        self.file
            .flush()
            .await
            .map_err(io_error("write an object"))?;
        self.file
            .sync_all()
            .await
            .map_err(io_error("sync an object"))?;
        let dir = self
            .object
            .parent()
            .ok_or_else(|| Error::internal_msg("object without a directory"))?
            .to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_error("create an object directory"))?;
        tokio::fs::rename(&self.partial, &self.object)
            .await
            .map_err(io_error("move an object into place"))?;
        tokio::task::spawn_blocking(move || std::fs::File::open(&dir).and_then(|d| d.sync_all()))
            .await
            .map_err(|e| Error::internal("sync a directory", e))?
            .map_err(io_error("sync an object directory"))
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        drop(self.file);
        remove(&self.partial).await
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
            1
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
