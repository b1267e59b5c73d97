//! Reading a backup: every check a file must pass before anything is restored from it, and
//! `verify`, which runs them alone.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use aws_lc_rs::digest;

use super::{
    BACKUP_FORMAT, BackupError, BackupSummary, MAGIC, MAX_KEY_BYTES, MAX_TABLES, MAX_VALUE_BYTES,
    PROGRESS_EVERY, Phase, Progress,
};
use crate::hex::encode as hex;
use crate::store::schema::META_TREE;

/// Checks a backup file completely (structure, counts, checksum) without restoring it.
pub fn verify(
    file: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<BackupSummary, BackupError> {
    read_backup(file, Phase::Verify, &mut progress, |_, _, _| Ok(()))
}

/// Checks a backup held in memory, as [`verify`] checks a file (the fuzz target's entry:
/// whatever the bytes, an error or a summary, never a panic or a wild allocation).
pub fn verify_bytes(bytes: &[u8]) -> Result<BackupSummary, BackupError> {
    let label = Path::new("<in memory>");
    read_backup_from(label, bytes, Phase::Verify, &mut |_| {}, |_, _, _| Ok(()))
}

/// Reads a backup from start to end, checking it, and hands each record to `sink` as (table
/// index in file order, key, value). Returns the summary only if the file is intact.
pub(super) fn read_backup(
    path: &Path,
    phase: Phase,
    progress: &mut dyn FnMut(Progress),
    sink: impl FnMut(usize, &[u8], &[u8]) -> Result<(), BackupError>,
) -> Result<BackupSummary, BackupError> {
    let file = File::open(path).map_err(|source| BackupError::Io {
        op: "open the backup",
        path: path.to_owned(),
        source,
    })?;
    let reader = BufReader::with_capacity(1 << 16, file);
    read_backup_from(path, reader, phase, progress, sink)
}

/// The backup reader over any byte source; `path` names it in errors. The file is read in
/// its order: header, tables, trailer; each step checks what it reads.
fn read_backup_from<R: Read>(
    path: &Path,
    reader: R,
    phase: Phase,
    progress: &mut dyn FnMut(Progress),
    sink: impl FnMut(usize, &[u8], &[u8]) -> Result<(), BackupError>,
) -> Result<BackupSummary, BackupError> {
    let mut r = HashReader::new(path, reader);
    let header = read_header(&mut r)?;
    let total = header.records;
    let mut tables = Tables {
        phase,
        progress,
        sink,
        found: 0,
        total,
    };
    let names = tables.read_all(&mut r, header.tables)?;
    let content_sha256 = read_trailer(&mut r, total)?;
    (tables.progress)(Progress {
        phase,
        records: total,
        total,
    });
    Ok(BackupSummary {
        format: header.format,
        schema: header.schema,
        created_at: header.created_at,
        tables: names,
        records: total,
        bytes: r.bytes,
        sha256: hex(r.hash.finish().as_ref()),
        content_sha256: hex(&content_sha256),
    })
}

/// What a backup's header says.
struct Header {
    format: u32,
    schema: u32,
    created_at: i64,
    tables: u32,
    records: u64,
}

/// Reads and checks the magic and the header.
fn read_header<R: Read>(r: &mut HashReader<'_, R>) -> Result<Header, BackupError> {
    let mut magic = [0u8; 8];
    let got = r.fill(&mut magic)?;
    if got == 0 {
        return Err(r.truncated("the file is empty".into()));
    }
    if magic[..got] != MAGIC[..got] {
        return Err(BackupError::NotABackup {
            path: r.path.to_owned(),
        });
    }
    if got < magic.len() {
        return Err(r.truncated("the header is incomplete".into()));
    }
    let format = u32::from_be_bytes(r.header_field()?);
    if format > BACKUP_FORMAT {
        return Err(BackupError::NewerFormat {
            path: r.path.to_owned(),
            found: format,
            supported: BACKUP_FORMAT,
        });
    }
    if format == 0 {
        return Err(r.damaged("its format version is 0".into()));
    }
    let header = Header {
        format,
        schema: u32::from_be_bytes(r.header_field()?),
        created_at: i64::from_be_bytes(r.header_field()?),
        tables: u32::from_be_bytes(r.header_field()?),
        records: u64::from_be_bytes(r.header_field()?),
    };
    if header.tables > MAX_TABLES {
        return Err(r.damaged(format!("it claims {} tables", header.tables)));
    }
    Ok(header)
}

/// The walk over a backup's tables: where each record goes, and how many were found so far
/// of the `total` the header counts.
struct Tables<'p, S> {
    phase: Phase,
    progress: &'p mut dyn FnMut(Progress),
    sink: S,
    found: u64,
    total: u64,
}

impl<S> Tables<'_, S>
where
    S: FnMut(usize, &[u8], &[u8]) -> Result<(), BackupError>,
{
    /// Reads `count` tables, handing their records to the sink; returns each table's name
    /// and record count, in file order.
    fn read_all<R: Read>(
        &mut self,
        r: &mut HashReader<'_, R>,
        count: u32,
    ) -> Result<Vec<(String, u64)>, BackupError> {
        let mut tables: Vec<(String, u64)> = Vec::with_capacity(count as usize);
        let (mut key, mut value) = (Vec::new(), Vec::new());
        for index in 0..count as usize {
            let name = self.read_name(r, index)?;
            if tables.iter().any(|(n, _)| *n == name) {
                return Err(r.damaged(format!("table {name} appears twice")));
            }
            let mut b8 = [0u8; 8];
            r.exact(&mut b8).map_err(|e| e.or(self.short(r)))?;
            let records = u64::from_be_bytes(b8);
            if records > self.total - self.found {
                let total = self.total;
                return Err(r.damaged(format!(
                    "table {name} claims {records} records but the header counts {total} in all"
                )));
            }
            for _ in 0..records {
                r.entry(&mut key, MAX_KEY_BYTES, &name)
                    .map_err(|e| e.or(self.short(r)))?;
                r.entry(&mut value, MAX_VALUE_BYTES, &name)
                    .map_err(|e| e.or(self.short(r)))?;
                self.record(index, &key, &value)?;
            }
            tables.push((name, records));
        }
        if self.found != self.total {
            let (total, found) = (self.total, self.found);
            return Err(r.damaged(format!(
                "the header counts {total} records but the tables hold {found}"
            )));
        }
        Ok(tables)
    }

    /// Reads a table's name: UTF-8, and neither empty nor one of the store's own trees.
    fn read_name<R: Read>(
        &self,
        r: &mut HashReader<'_, R>,
        index: usize,
    ) -> Result<String, BackupError> {
        let mut b2 = [0u8; 2];
        r.exact(&mut b2).map_err(|e| e.or(self.short(r)))?;
        let mut name = vec![0u8; u16::from_be_bytes(b2) as usize];
        r.exact(&mut name).map_err(|e| e.or(self.short(r)))?;
        let name = String::from_utf8(name)
            .map_err(|_| r.damaged(format!("table {} has a name that is not UTF-8", index + 1)))?;
        if name.is_empty() || name == META_TREE || name.starts_with("__sled") {
            return Err(r.damaged(format!("it holds a table named {name:?}")));
        }
        Ok(name)
    }

    /// Hands one record to the sink and reports progress every thousand records.
    fn record(&mut self, table: usize, key: &[u8], value: &[u8]) -> Result<(), BackupError> {
        (self.sink)(table, key, value)?;
        self.found += 1;
        if self.found.is_multiple_of(PROGRESS_EVERY) {
            (self.progress)(Progress {
                phase: self.phase,
                records: self.found,
                total: self.total,
            });
        }
        Ok(())
    }

    /// The error of a file that ends among the records.
    fn short<R>(&self, r: &HashReader<'_, R>) -> BackupError {
        r.truncated(format!(
            "expected {} records, found {}",
            self.total, self.found
        ))
    }
}

/// Reads and checks the trailer (the record count again and the content checksum) and that
/// nothing follows it; returns the content checksum.
fn read_trailer<R: Read>(r: &mut HashReader<'_, R>, total: u64) -> Result<[u8; 32], BackupError> {
    let missing = |r: &HashReader<'_, R>| r.truncated("the checksum trailer is missing".into());
    let mut b8 = [0u8; 8];
    r.exact(&mut b8).map_err(|e| e.or(missing(r)))?;
    let digest = r.digest();
    let mut sha = [0u8; 32];
    if r.fill(&mut sha)? < sha.len() {
        return Err(missing(r));
    }
    if sha != digest.as_ref() {
        return Err(BackupError::ChecksumMismatch {
            path: r.path.to_owned(),
        });
    }
    if u64::from_be_bytes(b8) != total {
        return Err(r.damaged("the trailer's record count differs from the header's".into()));
    }
    let mut rest = [0u8; 1];
    if r.fill(&mut rest)? > 0 {
        return Err(r.damaged("there are bytes after the checksum".into()));
    }
    Ok(sha)
}

/// A read failure: the file ended (the caller knows what was expected) or another error.
enum ReadError {
    Eof,
    Other(BackupError),
}

impl ReadError {
    fn or(self, eof: BackupError) -> BackupError {
        match self {
            ReadError::Eof => eof,
            ReadError::Other(e) => e,
        }
    }
}

/// Reads a file while hashing what it reads.
struct HashReader<'a, R> {
    path: &'a Path,
    inner: R,
    hash: digest::Context,
    bytes: u64,
}

impl<R> HashReader<'_, R> {
    /// The error of a file with an inconsistent structure.
    fn damaged(&self, reason: String) -> BackupError {
        BackupError::Damaged {
            path: self.path.to_owned(),
            reason,
        }
    }

    /// The error of a file that ends early.
    fn truncated(&self, detail: String) -> BackupError {
        BackupError::Truncated {
            path: self.path.to_owned(),
            detail,
        }
    }

    /// The content checksum: the hash of everything read so far. Reading goes on hashing, so
    /// that once the trailer is read `hash` holds the whole file's.
    fn digest(&self) -> digest::Digest {
        self.hash.clone().finish()
    }
}

impl<'a, R: Read> HashReader<'a, R> {
    fn new(path: &'a Path, inner: R) -> Self {
        HashReader {
            path,
            inner,
            hash: digest::Context::new(&digest::SHA256),
            bytes: 0,
        }
    }

    /// Reads as much of `buf` as the file has (hashing it); returns how much was read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, BackupError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(BackupError::Io {
                        op: "read the backup",
                        path: self.path.to_owned(),
                        source,
                    });
                }
            }
        }
        self.hash.update(&buf[..got]);
        self.bytes += got as u64;
        Ok(got)
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), ReadError> {
        match self.fill(buf) {
            Ok(n) if n == buf.len() => Ok(()),
            Ok(_) => Err(ReadError::Eof),
            Err(e) => Err(ReadError::Other(e)),
        }
    }

    /// Reads one fixed-size field of the header.
    fn header_field<const N: usize>(&mut self) -> Result<[u8; N], BackupError> {
        let mut buf = [0u8; N];
        if self.fill(&mut buf)? < N {
            return Err(self.truncated("the header is incomplete".into()));
        }
        Ok(buf)
    }

    /// Reads one length-prefixed byte string into `out`.
    fn entry(&mut self, out: &mut Vec<u8>, max: u32, table: &str) -> Result<(), ReadError> {
        let mut b4 = [0u8; 4];
        self.exact(&mut b4)?;
        let len = u32::from_be_bytes(b4);
        if len > max {
            return Err(ReadError::Other(
                self.damaged(format!("an entry of table {table} claims {len} bytes")),
            ));
        }
        out.resize(len as usize, 0);
        self.exact(out)
    }
}
