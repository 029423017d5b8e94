//! Uploaded database files kept as backups of kind `uploaded` (`POST …/backups/upload`,
//! `walstream backup upload`): [`BackupStore::upload`] streams the bytes to `.<id>.db.tmp` in
//! the backups folder, checks them and seals them like any other backup.
//!
//! What must stay true:
//! - the file is streamed through a fixed buffer, never held whole in memory; more than
//!   `max-upload-size` bytes stop the upload at once ([`AdminError::TooLarge`]);
//! - a file is accepted only when it starts with SQLite's header, holds every page its header
//!   counts, opens, and `PRAGMA integrity_check` answers `ok`; otherwise the answer is an
//!   [`AdminError::Invalid`] of `upload` saying which (not SQLite, truncated, damaged);
//! - the check opens the file `immutable` (no `-wal`/`-shm` is created) and on every failure
//!   the temporary file is removed: a failed upload leaves the folder as it was;
//! - an accepted file is sealed, recorded and trimmed by the `uploaded` policy exactly like a
//!   created backup (`BackupStore::commit`); its metadata is read from the file.
//!
//! The HTTP handler and the CLI both call [`BackupStore::upload`]: one validation for both.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::backups::{BackupRecord, BackupStore, Cleanup, NewBackup, copy_meta};
use super::kind::BackupKind;
use super::{AdminError, sqlite};

/// The first 16 bytes of every SQLite database file.
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// Size of SQLite's database header.
const HEADER_LEN: usize = 100;
/// Bytes read from the body at a time.
const CHUNK: usize = 256 * 1024;

/// What the header of a database file says about its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    page_size: u64,
    /// Pages the header counts, when that count is valid (SQLite ≥ 3.7.0 keeps it).
    pages: Option<u64>,
}

fn invalid(reason: impl Into<String>) -> AdminError {
    AdminError::invalid("upload", reason)
}

/// Parses the 100-byte header: the magic, the page size and, when valid, the page count.
fn parse_header(h: &[u8]) -> Result<Header, AdminError> {
    if h.len() < HEADER_LEN || &h[..16] != SQLITE_MAGIC {
        return Err(invalid(
            "not a SQLite database (the file does not start with \"SQLite format 3\")",
        ));
    }
    let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let page_size = match u16::from_be_bytes([h[16], h[17]]) {
        1 => 65536,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        n => {
            return Err(invalid(format!(
                "damaged SQLite header: page size {n} is not a power of two in 512..=65536"
            )));
        }
    };
    let (counter, pages, valid_for) = (be32(24), be32(28), be32(92));
    let pages = (pages > 0 && counter == valid_for).then_some(u64::from(pages));
    Ok(Header { page_size, pages })
}

/// Checks the file's length against its header: whole pages, and every page it counts.
fn check_length(h: Header, len: u64) -> Result<(), AdminError> {
    if let Some(pages) = h.pages {
        let want = pages.saturating_mul(h.page_size);
        if len < want {
            return Err(invalid(format!(
                "truncated: the header counts {pages} pages of {} bytes ({want} bytes), the file has {len}",
                h.page_size
            )));
        }
    }
    if !len.is_multiple_of(h.page_size) {
        return Err(invalid(format!(
            "truncated: {len} bytes is not a whole number of {}-byte pages",
            h.page_size
        )));
    }
    Ok(())
}

impl BackupStore {
    /// Streams `body` (a whole `.db` file) into the backups folder, checks it and records it as
    /// an `uploaded` backup (`req.kind` is ignored).
    pub fn upload(&self, body: impl Read, req: NewBackup<'_>) -> Result<BackupRecord, AdminError> {
        Self::check_request(&req)?;
        let (id, now) = self.prepare()?;
        let tmp = self.temp_path(&id);
        let guard = Cleanup(vec![tmp.clone()]);
        self.receive(body, &tmp)?;
        let meta = verify(&tmp)?;
        let req = NewBackup {
            kind: BackupKind::Uploaded,
            ..req
        };
        self.commit(&tmp, guard, (id, now), meta, req)
    }

    /// Copies `body` to the new file `tmp` (at most `max-upload-size` bytes; the header is
    /// checked as soon as it arrived) and fsyncs it; the parsed header.
    fn receive(&self, mut body: impl Read, tmp: &Path) -> Result<Header, AdminError> {
        let limit = self.max_upload_size();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)
            .map_err(AdminError::io("create", tmp))?;
        let mut buf = vec![0u8; CHUNK];
        let mut head: Vec<u8> = Vec::with_capacity(HEADER_LEN);
        let mut header = None;
        let mut len = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(AdminError::io("receive upload", tmp)(e)),
            };
            len += n as u64;
            if len > limit {
                return Err(AdminError::TooLarge { limit });
            }
            if header.is_none() {
                let want = (HEADER_LEN - head.len()).min(n);
                head.extend_from_slice(&buf[..want]);
                if head.len() == HEADER_LEN {
                    header = Some(parse_header(&head)?);
                }
            }
            file.write_all(&buf[..n])
                .map_err(AdminError::io("write", tmp))?;
        }
        let Some(header) = header else {
            let m = head.len().min(SQLITE_MAGIC.len());
            if head.is_empty() || head[..m] != SQLITE_MAGIC[..m] {
                return Err(invalid(format!(
                    "not a SQLite database ({len} bytes without SQLite's header)"
                )));
            }
            return Err(invalid(format!(
                "truncated: {len} bytes, shorter than SQLite's {HEADER_LEN}-byte header"
            )));
        };
        file.sync_all().map_err(AdminError::io("fsync", tmp))?;
        check_length(header, len)?;
        Ok(header)
    }
}

/// Opens the received file without side files, runs `PRAGMA integrity_check` and reads its
/// metadata; SQLite's refusals are answered as a damaged upload.
fn verify(tmp: &Path) -> Result<super::backups::CopyMeta, AdminError> {
    let damaged = |e: AdminError| match e {
        AdminError::Integrity { detail, .. } => {
            invalid(format!("damaged: integrity_check reports {detail}"))
        }
        AdminError::Sqlite { source, .. } => invalid(format!("damaged: {source}")),
        other => other,
    };
    let conn = sqlite::open_immutable(tmp).map_err(damaged)?;
    sqlite::integrity_check(&conn, tmp).map_err(damaged)?;
    let meta = copy_meta(&conn, tmp).map_err(damaged)?;
    conn.close()
        .map_err(|(_, e)| AdminError::sqlite("close upload", tmp)(e))?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::admin::CreatedBy;
    use crate::config::BackupsConfig;

    /// A store for `dir/app.db` (created) with `max-upload-size` = `limit`, and a database file
    /// `dir/up.db` with rows, to upload.
    fn setup(dir: &Path, limit: u64) -> (BackupStore, PathBuf) {
        std::fs::create_dir_all(dir).expect("mkdir");
        let db = dir.join("app.db");
        rusqlite::Connection::open(&db).expect("open app");
        let mut cfg = BackupsConfig::for_db(&db);
        cfg.max_upload_size = limit;
        let up = dir.join("up.db");
        let c = rusqlite::Connection::open(&up).expect("open up");
        c.execute_batch(
            "PRAGMA journal_mode = wal; PRAGMA user_version = 7;
             CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x'), ('y');",
        )
        .expect("fill");
        drop(c);
        (BackupStore::new(&db, &cfg), up)
    }

    fn req() -> NewBackup<'static> {
        NewBackup {
            kind: BackupKind::Manual,
            name: Some("from-laptop"),
            description: None,
            source: None,
            labels: BTreeMap::new(),
            created_by: CreatedBy::Cli,
        }
    }

    fn folder(store: &BackupStore) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(store.dir())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn a_good_file_becomes_an_uploaded_backup_and_bad_ones_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, up) = setup(dir.path(), 1 << 20);
        let bytes = std::fs::read(&up).expect("read");
        let r = store.upload(&bytes[..], req()).expect("upload");
        assert_eq!(
            (r.kind, r.name.as_str()),
            (BackupKind::Uploaded, "from-laptop")
        );
        assert_eq!((r.size, r.user_version), (bytes.len() as u64, Some(7)));
        assert_eq!(std::fs::read(store.data_path(&r.id)).expect("copy"), bytes);
        let before = folder(&store);
        assert_eq!(before.len(), 2, "{before:?}");
        let mut short = bytes.clone();
        short.truncate(bytes.len() - 100);
        let mut torn = bytes.clone();
        torn.truncate(bytes.len() - 4096);
        let mut damaged = bytes.clone();
        for b in &mut damaged[4096..] {
            *b = 0x5a;
        }
        for (body, said) in [
            (b"hello, world".to_vec(), "not a SQLite database"),
            (Vec::new(), "not a SQLite database"),
            (
                bytes[..50].to_vec(),
                "shorter than SQLite's 100-byte header",
            ),
            (short, "truncated"),
            (torn, "truncated: the header counts"),
            (damaged, "damaged"),
        ] {
            let err = store.upload(&body[..], req()).expect_err(said);
            assert!(
                matches!(err, AdminError::Invalid { what: "upload", .. }),
                "{err}"
            );
            assert!(err.to_string().contains(said), "{said}: {err}");
            assert_eq!(folder(&store), before, "{said}");
        }
        let (small, _) = setup(&dir.path().join("small"), 1024);
        let err = small.upload(&bytes[..], req()).expect_err("too large");
        assert!(matches!(err, AdminError::TooLarge { limit: 1024 }), "{err}");
        assert!(folder(&small).is_empty(), "{:?}", folder(&small));
    }

    fn header(page_size: u16, pages: u32, valid: bool) -> Vec<u8> {
        let mut h = vec![0u8; HEADER_LEN];
        h[..16].copy_from_slice(SQLITE_MAGIC);
        h[16..18].copy_from_slice(&page_size.to_be_bytes());
        h[24..28].copy_from_slice(&7u32.to_be_bytes());
        h[28..32].copy_from_slice(&pages.to_be_bytes());
        let valid_for: u32 = if valid { 7 } else { 6 };
        h[92..96].copy_from_slice(&valid_for.to_be_bytes());
        h
    }

    #[test]
    fn header_and_length_checks_name_what_is_wrong() {
        let err = parse_header(b"PK\x03\x04 not a database at all, padding padding padding padding padding padding padding padding")
            .expect_err("zip");
        assert!(err.to_string().contains("not a SQLite database"), "{err}");
        let err = parse_header(&header(1000, 1, true)).expect_err("page size");
        assert!(err.to_string().contains("page size 1000"), "{err}");
        let h = parse_header(&header(1, 3, true)).expect("64 KiB pages");
        assert_eq!(h.page_size, 65536);
        let h = parse_header(&header(4096, 3, true)).expect("valid");
        assert_eq!(h.pages, Some(3));
        check_length(h, 3 * 4096).expect("whole");
        let err = check_length(h, 2 * 4096).expect_err("short");
        assert!(
            err.to_string()
                .contains("truncated: the header counts 3 pages"),
            "{err}"
        );
        let err = check_length(h, 3 * 4096 + 10).expect_err("partial page");
        assert!(err.to_string().contains("not a whole number"), "{err}");
        // A stale in-header count (an old writer) is not trusted.
        let h = parse_header(&header(4096, 3, false)).expect("valid");
        assert_eq!(h.pages, None);
        check_length(h, 4096).expect("counted by SQLite itself");
    }
}
