//! The archive format (docs/backup.md): one zstd stream (with its content checksum) of
//! lines, written and read in order.
//!
//! ```text
//! {"format":"switchyard-backup","version":1}          the header
//! {"table":"users","columns":["id","email",…]}        a table begins
//! ["0190…","a@example.com",…]                          one line per row
//! {"end":"users","rows":2,"sha256":"…"}               its row count and checksum
//! …
//! {"blob":"<sha256>","size":N}                         the bytes of files: N raw bytes
//! <N bytes>                                            and a newline
//! {"manifest":{…}}                                     the manifest, last
//! ```
//!
//! A table's checksum is the SHA-256 of its row lines as written (each with its newline).
//! A blob's name is the SHA-256 of its bytes. An archive without its manifest line is
//! incomplete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use switchyard_core::{Error, ErrorCode, Result};

/// The `format` of every archive.
pub const FORMAT: &str = "switchyard-backup";
/// The version of the format this build writes (and the latest it reads).
pub const VERSION: u32 = 1;
/// zstd level: fast enough that a backup is bound by the database, not compression.
const LEVEL: i32 = 3;
/// No line of an archive this build writes comes near this (a row is at most a few MiB).
const MAX_LINE: usize = 256 * 1024 * 1024;

/// A table's entry in the manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSum {
    pub rows: u64,
    /// SHA-256 of the table's row lines (hex).
    pub sha256: String,
}

/// The files' entry in the manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesSum {
    /// Distinct contents (several files with the same bytes share one).
    pub blobs: u64,
    pub bytes: u64,
}

/// What an archive holds, written as its last line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// The Switchyard that wrote it.
    pub switchyard: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// RFC 3339, when the snapshot was taken.
    pub created_at: String,
    /// The latest database migration of the source.
    pub schema_version: i64,
    /// Whether the signing keys and sessions are in it (`--include-secrets`).
    pub secrets: bool,
    pub tables: BTreeMap<String, TableSum>,
    pub files: FilesSum,
}

fn corrupt(message: impl Into<String>) -> Error {
    Error::new(
        ErrorCode::ValidationFailed,
        format!("not a valid backup archive: {}", message.into()),
    )
}

fn io(context: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::internal(context, e)
}

/// The temporary name an archive is written under before it is complete.
fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

/// Writes an archive: under a temporary name (mode 0600) until [`ArchiveWriter::finish`]
/// flushes it to disk and renames it, so no incomplete archive ever has the final name.
pub struct ArchiveWriter {
    out: zstd::Encoder<'static, BufWriter<File>>,
    path: PathBuf,
    partial: PathBuf,
    /// The table being written, its count and running checksum.
    table: Option<(String, u64, Sha256)>,
    tables: BTreeMap<String, TableSum>,
    files: FilesSum,
    /// Bytes of the current blob still to come.
    blob_left: u64,
    line: Vec<u8>,
}

impl ArchiveWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let partial = partial_path(path);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&partial)
            .map_err(|e| Error::internal(format!("cannot create {}", partial.display()), e))?;
        // An existing file keeps its mode when truncated.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(io("set the archive's mode"))?;
        let mut out = zstd::Encoder::new(BufWriter::with_capacity(1 << 20, file), LEVEL)
            .map_err(io("start compression"))?;
        out.include_checksum(true).map_err(io("zstd checksum"))?;
        let mut writer = ArchiveWriter {
            out,
            path: path.to_owned(),
            partial,
            table: None,
            tables: BTreeMap::new(),
            files: FilesSum::default(),
            blob_left: 0,
            line: Vec::with_capacity(64 * 1024),
        };
        writer.control(&serde_json::json!({"format": FORMAT, "version": VERSION}))?;
        Ok(writer)
    }

    fn control(&mut self, value: &Value) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value).map_err(|e| Error::internal("encode", e))?;
        self.line.push(b'\n');
        self.out
            .write_all(&self.line)
            .map_err(io("write the archive"))
    }

    fn end_table(&mut self) -> Result<()> {
        if let Some((name, rows, hash)) = self.table.take() {
            let sha256 = hex::encode(hash.finalize());
            self.control(&serde_json::json!({"end": name, "rows": rows, "sha256": sha256}))?;
            self.tables.insert(name, TableSum { rows, sha256 });
        }
        Ok(())
    }

    pub fn begin_table(&mut self, name: &str, columns: &[String]) -> Result<()> {
        self.end_table()?;
        self.control(&serde_json::json!({"table": name, "columns": columns}))?;
        self.table = Some((name.to_owned(), 0, Sha256::new()));
        Ok(())
    }

    pub fn rows(&mut self, rows: &[Vec<Value>]) -> Result<()> {
        let Some((_, count, hash)) = &mut self.table else {
            return Err(Error::internal_msg("rows written before their table"));
        };
        for row in rows {
            self.line.clear();
            serde_json::to_writer(&mut self.line, row).map_err(|e| Error::internal("encode", e))?;
            self.line.push(b'\n');
            hash.update(&self.line);
            *count += 1;
            self.out
                .write_all(&self.line)
                .map_err(io("write the archive"))?;
        }
        Ok(())
    }

    pub fn begin_blob(&mut self, sha256: &str, size: u64) -> Result<()> {
        self.end_table()?;
        if self.blob_left != 0 {
            return Err(Error::internal_msg(
                "a blob began before the last one ended",
            ));
        }
        self.control(&serde_json::json!({"blob": sha256, "size": size}))?;
        self.files.blobs += 1;
        self.files.bytes += size;
        self.blob_left = size;
        if size == 0 {
            self.out.write_all(b"\n").map_err(io("write the archive"))?;
        }
        Ok(())
    }

    pub fn blob_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let n = bytes.len() as u64;
        if n > self.blob_left {
            return Err(Error::internal_msg(
                "a file's bytes are longer than its record says",
            ));
        }
        self.out.write_all(bytes).map_err(io("write the archive"))?;
        self.blob_left -= n;
        if self.blob_left == 0 {
            self.out.write_all(b"\n").map_err(io("write the archive"))?;
        }
        Ok(())
    }

    /// Writes the manifest (its `tables` and `files` are what was written), makes the
    /// archive durable and gives it its name.
    pub fn finish(mut self, mut manifest: Manifest) -> Result<Manifest> {
        self.end_table()?;
        if self.blob_left != 0 {
            return Err(Error::internal_msg("a file's bytes ended early"));
        }
        manifest.tables = std::mem::take(&mut self.tables);
        manifest.files = std::mem::take(&mut self.files);
        self.control(&serde_json::json!({ "manifest": manifest }))?;
        let out = self.out.finish().map_err(io("finish compression"))?;
        let file = out
            .into_inner()
            .map_err(|e| Error::internal("flush the archive", e.into_error()))?;
        file.sync_all().map_err(io("sync the archive"))?;
        drop(file);
        std::fs::rename(&self.partial, &self.path).map_err(io("rename the archive"))?;
        // The rename itself is durable once the directory is.
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(manifest)
    }

    /// Gives up: the partial file goes.
    pub fn abandon(self) {
        let partial = self.partial.clone();
        drop(self);
        let _ = std::fs::remove_file(partial);
    }
}

/// One thing read from an archive, in order.
#[derive(Debug)]
pub enum Entry {
    Table {
        name: String,
        columns: Vec<String>,
    },
    Rows(Vec<Vec<Value>>),
    /// A table ended; its count and checksum matched its `end` line.
    TableEnd(String, TableSum),
    /// A blob begins; its bytes follow as [`Entry::BlobBytes`].
    Blob {
        sha256: String,
        size: u64,
    },
    BlobBytes(Vec<u8>),
    /// The blob's bytes hashed to its name.
    BlobEnd,
    /// The last entry: the manifest, checked against everything read.
    Manifest(Manifest),
}

/// Reads an archive entry by entry, checking every count and checksum as it goes.
pub struct ArchiveReader {
    input: BufReader<zstd::Decoder<'static, BufReader<File>>>,
    line: Vec<u8>,
    table: Option<(String, usize, u64, Sha256)>,
    tables: BTreeMap<String, TableSum>,
    files: FilesSum,
    blob: Option<(String, u64, Sha256)>,
    /// A control line read while gathering rows, handled next.
    pending: Option<Value>,
    done: bool,
    /// Rows per [`Entry::Rows`].
    batch: usize,
}

impl ArchiveReader {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| {
            Error::new(
                ErrorCode::ValidationFailed,
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
        let decoder = zstd::Decoder::new(file).map_err(io("start decompression"))?;
        let mut reader = ArchiveReader {
            input: BufReader::with_capacity(1 << 20, decoder),
            line: Vec::with_capacity(64 * 1024),
            table: None,
            tables: BTreeMap::new(),
            files: FilesSum::default(),
            blob: None,
            pending: None,
            done: false,
            batch: 1_000,
        };
        if !reader.read_line()? {
            return Err(corrupt("it is empty"));
        }
        let header: Value = serde_json::from_slice(&reader.line)
            .map_err(|_| corrupt("the first line is not its header"))?;
        if header["format"] != FORMAT {
            return Err(corrupt("the first line is not its header"));
        }
        let version = header["version"].as_u64().unwrap_or(0);
        if version == 0 || version > u64::from(VERSION) {
            return Err(Error::new(
                ErrorCode::ValidationFailed,
                format!(
                    "the archive is in format version {version}; this Switchyard reads up to \
                     {VERSION}: use a later one"
                ),
            ));
        }
        Ok(reader)
    }

    /// Reads the next line into `self.line` (its newline dropped); `false` at the end.
    fn read_line(&mut self) -> Result<bool> {
        self.line.clear();
        let n = (&mut self.input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.line)
            .map_err(|e| corrupt(format!("it cannot be decompressed ({e})")))?;
        if n == 0 {
            return Ok(false);
        }
        if self.line.pop() != Some(b'\n') {
            return Err(corrupt(if n > MAX_LINE {
                "a line is too long"
            } else {
                "it ends in the middle of a line"
            }));
        }
        Ok(true)
    }

    /// The next entry, or `None` after the manifest.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        if let Some((sha, left, hash)) = &mut self.blob {
            if *left == 0 {
                let mut newline = [0u8; 1];
                self.input
                    .read_exact(&mut newline)
                    .map_err(|_| corrupt("it ends inside a file"))?;
                let got = hex::encode(std::mem::take(hash).finalize());
                if newline[0] != b'\n' || got != *sha {
                    return Err(corrupt(format!(
                        "the bytes of file content {sha} are damaged"
                    )));
                }
                self.blob = None;
                return Ok(Some(Entry::BlobEnd));
            }
            let mut chunk = vec![0u8; (*left).min(256 * 1024) as usize];
            self.input
                .read_exact(&mut chunk)
                .map_err(|_| corrupt("it ends inside a file"))?;
            hash.update(&chunk);
            *left -= chunk.len() as u64;
            return Ok(Some(Entry::BlobBytes(chunk)));
        }
        if let Some(control) = self.pending.take() {
            return self.control(control).map(Some);
        }
        let mut rows = Vec::new();
        loop {
            let batch = self.batch;
            if !self.read_line()? {
                return Err(corrupt(
                    "it ends before its manifest (the backup did not finish)",
                ));
            }
            let line = &self.line;
            if line.first() == Some(&b'[') {
                let Some((_, width, count, hash)) = &mut self.table else {
                    return Err(corrupt("a row comes before any table"));
                };
                hash.update(line);
                hash.update(b"\n");
                *count += 1;
                let row: Vec<Value> =
                    serde_json::from_slice(line).map_err(|_| corrupt("a row is not JSON"))?;
                if row.len() != *width {
                    return Err(corrupt("a row has the wrong number of values"));
                }
                rows.push(row);
                if rows.len() == batch {
                    return Ok(Some(Entry::Rows(rows)));
                }
                continue;
            }
            let control: Value =
                serde_json::from_slice(line).map_err(|_| corrupt("a line is not JSON"))?;
            if !rows.is_empty() {
                // Hand over the rows first; this line is read again next time.
                self.pending = Some(control);
                return Ok(Some(Entry::Rows(rows)));
            }
            return self.control(control).map(Some);
        }
    }
}

impl ArchiveReader {
    fn control(&mut self, line: Value) -> Result<Entry> {
        let text = |key: &str| line.get(key).and_then(Value::as_str).map(str::to_owned);
        if let Some(name) = text("table") {
            if let Some((open, ..)) = &self.table {
                return Err(corrupt(format!("table {open} has no end line")));
            }
            let columns: Vec<String> = line
                .get("columns")
                .cloned()
                .and_then(|c| serde_json::from_value(c).ok())
                .ok_or_else(|| corrupt(format!("table {name} does not list its columns")))?;
            self.table = Some((name.clone(), columns.len(), 0, Sha256::new()));
            return Ok(Entry::Table { name, columns });
        }
        if let Some(name) = text("end") {
            let Some((open, _, rows, hash)) = self.table.take() else {
                return Err(corrupt(format!("table {name} ends without beginning")));
            };
            let sum = TableSum {
                rows,
                sha256: hex::encode(hash.finalize()),
            };
            let claimed = TableSum {
                rows: line["rows"].as_u64().unwrap_or(u64::MAX),
                sha256: text("sha256").unwrap_or_default(),
            };
            if open != name || sum != claimed {
                return Err(corrupt(format!(
                    "table {open} is damaged: {} rows read, its checksum {}",
                    sum.rows,
                    if sum.sha256 == claimed.sha256 {
                        "matches"
                    } else {
                        "does not match"
                    }
                )));
            }
            self.tables.insert(name.clone(), sum.clone());
            return Ok(Entry::TableEnd(name, sum));
        }
        if let Some(sha256) = text("blob") {
            if let Some((open, ..)) = &self.table {
                return Err(corrupt(format!("table {open} has no end line")));
            }
            let valid = sha256.len() == 64
                && sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            let size = line["size"].as_u64();
            let (true, Some(size)) = (valid, size) else {
                return Err(corrupt("a file's line is malformed"));
            };
            self.files.blobs += 1;
            self.files.bytes += size;
            self.blob = Some((sha256.clone(), size, Sha256::new()));
            return Ok(Entry::Blob { sha256, size });
        }
        if let Some(manifest) = line.get("manifest") {
            let manifest: Manifest = serde_json::from_value(manifest.clone())
                .map_err(|e| corrupt(format!("its manifest is malformed ({e})")))?;
            if let Some((open, ..)) = &self.table {
                return Err(corrupt(format!("table {open} has no end line")));
            }
            if manifest.tables != self.tables || manifest.files != self.files {
                return Err(corrupt("its manifest does not match its contents"));
            }
            if self.read_line()? {
                return Err(corrupt("something follows its manifest"));
            }
            self.done = true;
            return Ok(Entry::Manifest(manifest));
        }
        Err(corrupt("a line is not one of the format's"))
    }
}

/// Reads a whole archive, checking everything: its manifest.
pub fn verify(path: &Path) -> Result<Manifest> {
    let mut reader = ArchiveReader::open(path)?;
    while let Some(entry) = reader.next_entry()? {
        if let Entry::Manifest(m) = entry {
            return Ok(m);
        }
    }
    Err(corrupt("it has no manifest"))
}
