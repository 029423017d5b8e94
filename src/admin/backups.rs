//! The backups folder of one database: `<id>.db` (the copy) beside `<id>.json` (its
//! [`BackupRecord`]), created with SQLite's online backup API (or received as a file,
//! `upload.rs`), listed newest first, deleted, pinned and unpinned, and trimmed per kind by that
//! kind's policy (`retention.rs`).
//!
//! What must stay true:
//! - a copy is written to `.<id>.db.tmp`, fsynced, given the database file's mode and renamed;
//!   the record is written the same way afterwards, then the folder is fsynced — a listed
//!   backup (one with a record) is always complete, and a crash leaves only dot-files, which
//!   listing ignores and the next create removes;
//! - the size and SHA-256 in the record are those of the renamed file's bytes;
//! - retention of one kind never deletes a backup of another kind, and never a pinned one;
//!   [`BackupStore::delete`] refuses a pinned backup ([`AdminError::Pinned`]);
//! - every path is `dir/<id>.*` with an id that passed [`names::check_id`];
//! - labels are checked ([`names::check_labels`]) before anything is written; the metadata
//!   (`user_version`, schema fingerprint, page count and size) is read from the backup copy,
//!   never from the live database; records written before these fields existed still load
//!   (empty labels, `null` metadata, not pinned);
//! - every create, upload and delete of a store updates its [`Tally`] after the change is on
//!   disk (the summary metrics and `/api/v1/status` show).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

pub use super::kind::BackupKind;
use super::names::{self, check_description, check_id, check_labels, check_name};
use super::tally::Tally;
use super::{AdminError, sqlite};
use crate::config::{BackupsConfig, KeepPolicy};

/// What took a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreatedBy {
    /// `walstream backup create` or `walstream backup upload`.
    Cli,
    /// `POST …/backups` or `POST …/backups/upload`.
    Api,
    /// The safety backup of a live restore.
    Restore,
    /// `backups.schedule` of `walstream replicate`.
    Schedule,
}

/// walstream's position of the live database when the backup was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePos {
    pub generation: String,
    pub index: u32,
    pub offset: u64,
}

impl From<crate::db::Pos> for SourcePos {
    fn from(p: crate::db::Pos) -> SourcePos {
        SourcePos {
            generation: p.generation,
            index: p.index,
            offset: p.offset,
        }
    }
}

/// The metadata stored in `<id>.json` (the API adds `download_url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub kind: BackupKind,
    /// RFC 3339 UTC with milliseconds.
    pub created: String,
    pub size: u64,
    pub sha256: String,
    pub source: Option<SourcePos>,
    /// Free-form `key=value` labels (checked by [`names::check_labels`]).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `PRAGMA user_version` of the copy (`None` in records written before it was recorded).
    #[serde(default)]
    pub user_version: Option<i64>,
    /// [`schema_fingerprint`] of the copy.
    #[serde(default)]
    pub schema_sha256: Option<String>,
    /// `PRAGMA page_count` of the copy.
    #[serde(default)]
    pub page_count: Option<u64>,
    /// `PRAGMA page_size` of the copy.
    #[serde(default)]
    pub page_size: Option<u32>,
    #[serde(default)]
    pub created_by: Option<CreatedBy>,
    /// A pinned backup never expires and cannot be deleted until unpinned.
    #[serde(default)]
    pub pinned: bool,
}

/// What to back up and how to label it.
#[derive(Debug, Clone)]
pub struct NewBackup<'a> {
    pub kind: BackupKind,
    /// Defaults to the id.
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub source: Option<SourcePos>,
    pub labels: BTreeMap<String, String>,
    pub created_by: CreatedBy,
}

/// Facts about a backup copy, read from the copy itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyMeta {
    pub user_version: i64,
    pub schema_sha256: String,
    pub page_count: u64,
    pub page_size: u32,
}

/// Which backups a listing shows: all conditions must hold; newest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupFilter {
    pub kind: Option<BackupKind>,
    /// Every pair must be a label of the backup with exactly this value.
    pub labels: BTreeMap<String, String>,
    pub limit: Option<usize>,
    /// Only backups created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only backups created at or before this time.
    pub until: Option<DateTime<Utc>>,
}

/// Largest `limit` of a listing.
pub const MAX_LIST_LIMIT: usize = 1000;

impl BackupFilter {
    /// Builds a filter from the raw texts of `kind`, `label` (each `key=value`) and `limit`
    /// (1..=1000); errors name the parameter.
    pub fn parse<S: AsRef<str>>(
        kind: Option<&str>,
        labels: &[S],
        limit: Option<&str>,
    ) -> Result<BackupFilter, AdminError> {
        let kind = kind.map(str::parse).transpose()?;
        let labels = names::parse_labels(labels)?;
        let limit = limit.map(parse_limit).transpose()?;
        Ok(BackupFilter {
            kind,
            labels,
            limit,
            ..BackupFilter::default()
        })
    }

    /// Adds the time range from the raw texts of `since` and `until` (RFC 3339, both inclusive;
    /// errors name the parameter).
    pub fn with_range(
        mut self,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<BackupFilter, AdminError> {
        let parse = |what: &'static str, text: &str| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    AdminError::invalid(
                        what,
                        format!("{:?} is not an RFC 3339 time: {e}", truncated(text)),
                    )
                })
        };
        self.since = since.map(|t| parse("since", t)).transpose()?;
        self.until = until.map(|t| parse("until", t)).transpose()?;
        Ok(self)
    }

    /// Whether `r` passes the kind, label and time conditions (a record whose time does not
    /// parse fails a time condition).
    pub fn matches(&self, r: &BackupRecord) -> bool {
        let created = || {
            DateTime::parse_from_rfc3339(&r.created)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        self.kind.is_none_or(|k| k == r.kind)
            && self.labels.iter().all(|(k, v)| r.labels.get(k) == Some(v))
            && self
                .since
                .is_none_or(|since| created().is_some_and(|t| t >= since))
            && self
                .until
                .is_none_or(|until| created().is_some_and(|t| t <= until))
    }

    /// The matching records of a newest-first listing, at most `limit` of them.
    pub fn apply(&self, records: Vec<BackupRecord>) -> Vec<BackupRecord> {
        records
            .into_iter()
            .filter(|r| self.matches(r))
            .take(self.limit.unwrap_or(usize::MAX))
            .collect()
    }
}

fn parse_limit(text: &str) -> Result<usize, AdminError> {
    let bad = || {
        AdminError::invalid(
            "limit",
            format!(
                "{:?} must be an integer in 1..={MAX_LIST_LIMIT}",
                truncated(text)
            ),
        )
    };
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

/// At most the first 64 characters of a caller's text, for error messages.
fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The policy of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policies {
    pub manual: KeepPolicy,
    pub pre_restore: KeepPolicy,
    pub scheduled: KeepPolicy,
    pub uploaded: KeepPolicy,
}

impl Policies {
    pub fn from_config(cfg: &BackupsConfig) -> Policies {
        Policies {
            manual: cfg.manual_policy(),
            pre_restore: cfg.pre_restore_policy(),
            scheduled: cfg.scheduled_policy(),
            uploaded: cfg.uploaded_policy(),
        }
    }

    pub fn of(&self, kind: BackupKind) -> KeepPolicy {
        match kind {
            BackupKind::Manual => self.manual,
            BackupKind::PreRestore => self.pre_restore,
            BackupKind::Scheduled => self.scheduled,
            BackupKind::Uploaded => self.uploaded,
        }
    }
}

/// Age after which a folder's modification time is trusted to show every change before it.
const MTIME_SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

/// The backups folder of one database.
#[derive(Debug, Clone)]
pub struct BackupStore {
    db_path: PathBuf,
    dir: PathBuf,
    policies: Policies,
    /// `max-upload-size`.
    max_upload_size: u64,
    /// The in-memory summary every create, upload and delete of this store keeps up to date
    /// (shared with the other stores of the same database through [`BackupStore::with_tally`]).
    tally: Arc<Tally>,
}

/// Removes the listed files when dropped.
pub(super) struct Cleanup(pub(super) Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

impl BackupStore {
    pub fn new(db_path: &Path, cfg: &BackupsConfig) -> Self {
        BackupStore {
            db_path: db_path.to_path_buf(),
            dir: cfg.path.clone(),
            policies: Policies::from_config(cfg),
            max_upload_size: cfg.max_upload_size,
            tally: Arc::new(Tally::default()),
        }
    }

    /// The same store keeping `tally` (the database's shared summary) up to date.
    pub fn with_tally(mut self, tally: Arc<Tally>) -> Self {
        self.tally = tally;
        self
    }

    /// The summary this store keeps up to date.
    pub fn tally(&self) -> &Arc<Tally> {
        &self.tally
    }

    /// `max-upload-size` of this database, bytes.
    pub fn max_upload_size(&self) -> u64 {
        self.max_upload_size
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The retention policy of each kind.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// `dir/<id>.db` (the id must be valid).
    pub fn data_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.db"))
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Mode bits of the database file (backups get the same).
    pub(super) fn db_mode(&self) -> Result<u32, AdminError> {
        let meta = fs::metadata(&self.db_path).map_err(AdminError::io("stat", &self.db_path))?;
        Ok(meta.permissions().mode() & 0o7777)
    }

    /// Creates the folder with the database's mode plus search bits where it has read bits.
    pub fn ensure_dir(&self) -> Result<(), AdminError> {
        let mode = self.db_mode()?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode((mode | ((mode & 0o444) >> 2)) & 0o777)
            .create(&self.dir)
            .map_err(AdminError::io("create backups folder", &self.dir))
    }

    /// Takes a backup of the live database with SQLite's online backup API, records it and
    /// applies the retention of its kind.
    pub fn create(&self, req: NewBackup<'_>) -> Result<BackupRecord, AdminError> {
        Self::check_request(&req)?;
        let (id, now) = self.prepare()?;
        let tmp = self.temp_path(&id);
        let guard = Cleanup(vec![tmp.clone(), side_file(&tmp, "-journal")]);
        let meta = self.online_copy(&tmp)?;
        self.commit(&tmp, guard, (id, now), meta, req)
    }

    /// Checks of `req` shared by every way of making a backup (before anything is written).
    pub(super) fn check_request(req: &NewBackup<'_>) -> Result<(), AdminError> {
        if let Some(n) = req.name {
            check_name(n)?;
        }
        check_description(req.description.unwrap_or(""))?;
        check_labels(&req.labels)
    }

    /// Creates the folder, removes stale temporaries and picks a fresh id: (id, its time).
    pub(super) fn prepare(&self) -> Result<(String, chrono::DateTime<Utc>), AdminError> {
        self.ensure_dir()?;
        self.remove_stale_temporaries();
        let now = Utc::now();
        let mut id = names::new_id(now);
        while self.record_path(&id).exists() || self.data_path(&id).exists() {
            id = names::new_id(now);
        }
        Ok((id, now))
    }

    /// `.<id>.db.tmp`: where a backup is written before it is sealed.
    pub(super) fn temp_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!(".{id}.db.tmp"))
    }

    /// Seals the finished copy at `tmp` (mode, fsync, hash), renames it to `<id>.db`, writes its
    /// record, updates the tally and applies the retention of its kind. `guard` removes the
    /// temporary files on every failure up to the rename.
    pub(super) fn commit(
        &self,
        tmp: &Path,
        guard: Cleanup,
        (id, now): (String, chrono::DateTime<Utc>),
        meta: CopyMeta,
        req: NewBackup<'_>,
    ) -> Result<BackupRecord, AdminError> {
        let (size, sha256) = seal(tmp, self.db_mode()?)?;
        let data = self.data_path(&id);
        fs::rename(tmp, &data).map_err(AdminError::io("rename backup", &data))?;
        drop(guard);
        let record = BackupRecord {
            name: req.name.unwrap_or(&id).to_string(),
            id,
            description: req.description.unwrap_or("").to_string(),
            kind: req.kind,
            created: now.to_rfc3339_opts(SecondsFormat::Millis, true),
            size,
            sha256,
            source: req.source,
            labels: req.labels,
            user_version: Some(meta.user_version),
            schema_sha256: Some(meta.schema_sha256),
            page_count: Some(meta.page_count),
            page_size: Some(meta.page_size),
            created_by: Some(req.created_by),
            pinned: false,
        };
        if let Err(e) = self.write_record(&record) {
            let _ = fs::remove_file(&data);
            return Err(e);
        }
        self.tally
            .added(&record.id, record.kind, &record.created, record.size);
        self.tally.read_volume(&self.dir);
        info!(db = %self.db_path.display(), id = %record.id, kind = record.kind.as_str(), created_by = ?record.created_by, size, "backup created");
        if let Err(e) = self.apply_retention(record.kind) {
            warn!(db = %self.db_path.display(), error = %e, "backup retention failed");
        }
        Ok(record)
    }

    /// Online backup of the live database into `tmp` (a new file); the copy's metadata.
    fn online_copy(&self, tmp: &Path) -> Result<CopyMeta, AdminError> {
        let src = sqlite::open_read_only(&self.db_path)?;
        let mut dst = sqlite::open_new(tmp)?;
        sqlite::copy_database(&src, &mut dst, tmp)?;
        let meta = copy_meta(&dst, tmp)?;
        dst.close()
            .map_err(|(_, e)| AdminError::sqlite("close backup", tmp)(e))?;
        src.close()
            .map_err(|(_, e)| AdminError::sqlite("close database", &self.db_path)(e))?;
        Ok(meta)
    }

    fn write_record(&self, record: &BackupRecord) -> Result<(), AdminError> {
        let path = self.record_path(&record.id);
        let tmp = self.dir.join(format!(".{}.json.tmp", record.id));
        let guard = Cleanup(vec![tmp.clone()]);
        let text = serde_json::to_vec_pretty(record).map_err(|e| AdminError::Metadata {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(self.db_mode()? & 0o666)
            .open(&tmp)
            .map_err(AdminError::io("create", &tmp))?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .map_err(AdminError::io("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(AdminError::io("rename", &path))?;
        drop(guard);
        sync_dir(&self.dir)
    }

    /// The recorded backups `filter` selects, newest first.
    pub fn list_filtered(&self, filter: &BackupFilter) -> Result<Vec<BackupRecord>, AdminError> {
        Ok(filter.apply(self.list()?))
    }

    /// Every recorded backup, newest first (unreadable records are logged and skipped).
    pub fn list(&self) -> Result<Vec<BackupRecord>, AdminError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(AdminError::io("list backups folder", &self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(AdminError::io("list backups folder", &self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if check_id(id).is_err() {
                continue;
            }
            match self.read_record(id) {
                Ok(r) => out.push(r),
                Err(e) => warn!(error = %e, "skipping unreadable backup record"),
            }
        }
        out.sort_by(|a, b| (&b.created, &b.id).cmp(&(&a.created, &a.id)));
        Ok(out)
    }

    fn read_record(&self, id: &str) -> Result<BackupRecord, AdminError> {
        let path = self.record_path(id);
        let bytes = match fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AdminError::NotFound {
                    id: id.to_string(),
                    dir: self.dir.clone(),
                });
            }
            other => other.map_err(AdminError::io("read", &path))?,
        };
        let record: BackupRecord =
            serde_json::from_slice(&bytes).map_err(|e| AdminError::Metadata {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if record.id != id {
            return Err(AdminError::Metadata {
                path,
                reason: format!("records id {:?}", record.id),
            });
        }
        Ok(record)
    }

    /// The record and data path of backup `id` (validated; 404 when absent).
    pub fn get(&self, id: &str) -> Result<(BackupRecord, PathBuf), AdminError> {
        check_id(id)?;
        let record = self.read_record(id)?;
        let data = self.data_path(id);
        if !data.is_file() {
            return Err(AdminError::NotFound {
                id: id.to_string(),
                dir: self.dir.clone(),
            });
        }
        Ok((record, data))
    }

    /// Deletes backup `id` (record first, so a half-deleted backup is never listed); a pinned
    /// backup is refused ([`AdminError::Pinned`]).
    pub fn delete(&self, id: &str) -> Result<(), AdminError> {
        check_id(id)?;
        if self.read_record(id)?.pinned {
            return Err(AdminError::Pinned { id: id.to_string() });
        }
        let record = self.record_path(id);
        fs::remove_file(&record).map_err(AdminError::io("delete", &record))?;
        self.tally.removed(id);
        let data = self.data_path(id);
        match fs::remove_file(&data) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(AdminError::io("delete", &data)(e));
            }
            _ => {}
        }
        self.tally.read_volume(&self.dir);
        sync_dir(&self.dir)
    }

    /// Pins (`true`) or unpins backup `id`; its record as it is now.
    pub fn set_pinned(&self, id: &str, pinned: bool) -> Result<BackupRecord, AdminError> {
        let (mut record, _) = self.get(id)?;
        if record.pinned != pinned {
            record.pinned = pinned;
            self.write_record(&record)?;
            let what = if pinned {
                "backup pinned"
            } else {
                "backup unpinned"
            };
            info!(db = %self.db_path.display(), id = %id, "{what}");
        }
        Ok(record)
    }

    /// Brings the tally in step with the folder: a listing when the folder changed since the
    /// last one (or was never listed), then the volume's space (see `tally.rs`).
    pub fn refresh_tally(&self) -> Result<(), AdminError> {
        let dir = &self.dir;
        let mtime = match fs::metadata(dir) {
            Ok(m) => Some(m.modified().map_err(AdminError::io("stat", dir))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(AdminError::io("stat", dir)(e)),
        };
        if let Some(version) = self.tally.listing_due(mtime) {
            let records = match mtime {
                Some(_) => self.list()?,
                None => Vec::new(),
            };
            let entries = records
                .iter()
                .map(|r| (r.id.as_str(), r.kind, r.created.as_str(), r.size));
            // File times are coarse (a clock tick): a change in the same tick as a recent
            // mtime would not change it, so a recent one is not trusted and lists again.
            let settled =
                |m: &std::time::SystemTime| m.elapsed().is_ok_and(|age| age > MTIME_SETTLED);
            self.tally
                .apply_listing(version, mtime.filter(settled), entries);
        }
        self.tally.read_volume(dir);
        Ok(())
    }

    /// Removes `.<id>.*.tmp` files a crashed create left behind (best effort).
    fn remove_stale_temporaries(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".tmp") && entry.path().is_file() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// `user_version`, schema fingerprint, page count and page size of the database `conn` holds.
pub fn copy_meta(conn: &rusqlite::Connection, path: &Path) -> Result<CopyMeta, AdminError> {
    let pragma = |name: &'static str| -> Result<i64, AdminError> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(AdminError::sqlite(name, path))
    };
    let user_version = pragma("user_version")?;
    let page_count = u64::try_from(pragma("page_count")?).unwrap_or(0);
    Ok(CopyMeta {
        user_version,
        schema_sha256: schema_fingerprint(conn, path)?,
        page_count,
        page_size: sqlite::page_size(conn, path)?,
    })
}

/// Lowercase hex SHA-256 of the rows of `SELECT type, name, tbl_name, sql FROM sqlite_schema
/// ORDER BY type, name`: each row's four values in that order, each followed by a NUL byte (a
/// NULL `sql` counts as empty).
pub fn schema_fingerprint(conn: &rusqlite::Connection, path: &Path) -> Result<String, AdminError> {
    let mut hasher = Sha256::new();
    (|| {
        let mut stmt = conn
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            for i in 0..4 {
                let v: Option<String> = row.get(i)?;
                hasher.update(v.unwrap_or_default().as_bytes());
                hasher.update([0u8]);
            }
        }
        Ok::<_, rusqlite::Error>(())
    })()
    .map_err(AdminError::sqlite("read schema", path))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `path` + `suffix` (SQLite's side files).
pub fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Sets `mode`, fsyncs and hashes the finished copy at `path`: (size, lowercase hex SHA-256).
fn seal(path: &Path, mode: u32) -> Result<(u64, String), AdminError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(AdminError::io("set mode", path))?;
    let file = File::open(path).map_err(AdminError::io("open", path))?;
    file.sync_all().map_err(AdminError::io("fsync", path))?;
    hash_reader(file, path)
}

/// (bytes read, lowercase hex SHA-256) of everything `r` yields.
pub fn hash_reader(mut r: impl Read, path: &Path) -> Result<(u64, String), AdminError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = r.read(&mut buf).map_err(AdminError::io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

/// fsync of a directory (makes renames and unlinks durable).
pub fn sync_dir(dir: &Path) -> Result<(), AdminError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(AdminError::io("fsync folder", dir))
}

#[cfg(test)]
#[path = "backups_tests.rs"]
mod tests;
