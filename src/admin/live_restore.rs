//! Safe live restore: put the content of a backup or of a replica (point in time) INTO the
//! running database while the application keeps its connections open.
//!
//! ```text
//! target → WORK/target.db (backup: copy + SHA-256 check; replica: library restore)
//!        → schema guard (unless force: same user schema and user_version as live, else 409)
//!        → prepare (walstream tables, page size, PRAGMA integrity_check)
//!        → pre-restore safety backup of the live database (online backup API)
//!        → WORK/target.db ──▶ live database, one write transaction: the pages that differ
//!          (admin::page_copy), or every page with the backup API where that is not possible
//!        → PRAGMA integrity_check on the live database
//! ```
//!
//! What must stay true:
//! - the live file is never replaced, renamed or truncated by us: the copy is one SQLite write
//!   transaction on a connection to the live database, so other connections (the application's,
//!   walstream's read transaction) stay valid, see either the old or the restored content, and
//!   walstream copies the transaction's WAL frames to its replicas like any commit;
//! - nothing touches the live database before the target is complete and verified; a failure
//!   before the copy leaves the live database as it was (the safety backup is kept);
//! - the target always has `_litestream_seq` and `_litestream_lock` (walstream's read
//!   transaction and checkpoints need them) and the live page size (a WAL-mode destination
//!   cannot change page size);
//! - the safety backup is taken after the target is ready, right before the copy, so it holds
//!   every commit up to the restore; WORK is removed afterwards whatever happened.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tracing::info;

use super::backups::{
    BackupKind, BackupRecord, BackupStore, CreatedBy, NewBackup, SourcePos, hash_reader,
};
use super::page_copy::{self, PageCopy};
use super::{AdminError, blocking, sqlite};
use crate::restore::{ExecOptions, IntegrityCheck, ReplicaRef, RestoreRequest};
use crate::storage::ReplicaClient;

/// Where the restored content comes from.
pub enum RestoreSource<'a> {
    /// A backup of the store, by id.
    Backup(String),
    /// A replica at `timestamp` (`None` = latest).
    Replica {
        name: &'a str,
        client: &'a ReplicaClient,
        timestamp: Option<DateTime<Utc>>,
    },
}

/// A private folder inside the backups folder, removed with its content on drop.
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    /// `<backups>/.work-<random>` (same file system as the backups).
    pub fn create(store: &BackupStore) -> Result<WorkDir, AdminError> {
        store.ensure_dir()?;
        let path = store
            .dir()
            .join(format!(".work-{:016x}", rand::random::<u64>()));
        fs::create_dir(&path).map_err(AdminError::io("create work folder", &path))?;
        Ok(WorkDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Restores the content named by `source` into the live database of `store`; returns the
/// pre-restore safety backup. `position` is walstream's current position, recorded in it.
/// Unless `force`, content whose schema or `user_version` differs from the live database's is
/// refused ([`AdminError::SchemaConflict`]) before anything is changed. `phase` is told what
/// the restore does now (`fetching`, `checking schema`, `safety backup`, `copying`).
pub async fn restore_live(
    store: &BackupStore,
    source: RestoreSource<'_>,
    position: Option<SourcePos>,
    force: bool,
    phase: &(dyn Fn(&'static str) + Send + Sync),
) -> Result<BackupRecord, AdminError> {
    let work = WorkDir::create(store)?;
    let target = work.path().join("target.db");
    phase("fetching");
    let what = fetch_target(store, source, &target).await?;
    if !force {
        phase("checking schema");
        let (t, live) = (target.clone(), store.db_path().to_path_buf());
        if let Some(conflict) = blocking(move || super::guard::check(&t, &live)).await? {
            return Err(AdminError::SchemaConflict(Box::new(conflict)));
        }
    }
    let live = store.db_path().to_path_buf();
    let t = target.clone();
    blocking(move || prepare_target(&t, &live)).await?;
    let s = store.clone();
    let description = format!("taken before restoring {what}");
    phase("safety backup");
    let safety = blocking(move || {
        s.create(NewBackup {
            kind: BackupKind::PreRestore,
            name: None,
            description: Some(&description),
            source: position,
            labels: Default::default(),
            created_by: CreatedBy::Restore,
        })
    })
    .await?;
    let live = store.db_path().to_path_buf();
    phase("copying");
    let pages = blocking(move || copy_into_live(&target, &live)).await?;
    let copied = match pages {
        Some(p) => p.to_string(),
        None => "whole file (backup API)".to_string(),
    };
    info!(db = %store.db_path().display(), from = %what, safety = %safety.id, %copied, "live restore finished");
    drop(work);
    Ok(safety)
}

/// Brings the target content to `out`; returns a description of it for logs.
async fn fetch_target(
    store: &BackupStore,
    source: RestoreSource<'_>,
    out: &Path,
) -> Result<String, AdminError> {
    match source {
        RestoreSource::Backup(id) => {
            let (s, o, i) = (store.clone(), out.to_path_buf(), id.clone());
            blocking(move || copy_backup(&s, &i, &o)).await?;
            Ok(format!("backup {id}"))
        }
        RestoreSource::Replica {
            name,
            client,
            timestamp,
        } => {
            restore_replica(name, client, timestamp, out).await?;
            let at = timestamp.map_or("latest".to_string(), |t| t.to_rfc3339());
            Ok(format!("replica {name} at {at}"))
        }
    }
}

/// Restores `replica` at `timestamp` into `out` with the library restore (integrity checked).
pub async fn restore_replica(
    name: &str,
    client: &ReplicaClient,
    timestamp: Option<DateTime<Utc>>,
    out: &Path,
) -> Result<(), AdminError> {
    let req = RestoreRequest {
        output: out.to_path_buf(),
        generation: None,
        index: None,
        timestamp,
        exec: ExecOptions {
            integrity_check: IntegrityCheck::Full,
            progress: false,
            ..ExecOptions::default()
        },
        if_replica_exists: false,
    };
    let replicas = [ReplicaRef { name, client }];
    crate::restore::restore(&replicas, &req)
        .await
        .map(|_| ())
        .map_err(|source| AdminError::Restore {
            replica: name.to_string(),
            source,
        })
}

/// Copies backup `id` to `out`, checking its SHA-256 against the record on the way.
pub(super) fn copy_backup(store: &BackupStore, id: &str, out: &Path) -> Result<(), AdminError> {
    let (record, data) = store.get(id)?;
    let src = File::open(&data).map_err(AdminError::io("open", &data))?;
    let mut dst = File::create(out).map_err(AdminError::io("create", out))?;
    let tee = Tee { src, dst: &mut dst };
    let (_, actual) = hash_reader(tee, &data)?;
    if actual != record.sha256 {
        return Err(AdminError::Checksum {
            id: id.to_string(),
            expected: record.sha256,
            actual,
        });
    }
    dst.sync_all().map_err(AdminError::io("fsync", out))
}

/// A reader that writes everything it reads to `dst`.
struct Tee<'a> {
    src: File,
    dst: &'a mut File,
}

impl std::io::Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.src.read(buf)?;
        std::io::Write::write_all(self.dst, &buf[..n])?;
        Ok(n)
    }
}

/// Makes the target fit the live database: walstream's tables, the live page size (rebuilt
/// with VACUUM when it differs), then `PRAGMA integrity_check`.
pub fn prepare_target(target: &Path, live: &Path) -> Result<(), AdminError> {
    let live_page_size = {
        let conn = sqlite::open_read_only(live)?;
        sqlite::page_size(&conn, live)?
    };
    let conn = sqlite::open_existing(target)?;
    sqlite::integrity_check(&conn, target)?;
    sqlite::ensure_litestream_tables(&conn, target)?;
    if sqlite::page_size(&conn, target)? != live_page_size {
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = DELETE; PRAGMA page_size = {live_page_size}; VACUUM;"
        ))
        .map_err(AdminError::sqlite("change page size", target))?;
        sqlite::integrity_check(&conn, target)?;
    }
    conn.close()
        .map_err(|(_, e)| AdminError::sqlite("close", target)(e))
}

/// The copy into the live database (one write transaction), then its integrity check: only the
/// pages that differ ([`page_copy`]), or every page through the backup API (retried while busy)
/// where that copy is not possible. Returns what the page copy did (`None`: whole file).
pub fn copy_into_live(target: &Path, live: &Path) -> Result<Option<PageCopy>, AdminError> {
    let src = sqlite::open_read_only(target)?;
    let mut dst = sqlite::open_existing(live)?;
    // Our connection must never checkpoint: walstream decides when the WAL is checkpointed.
    dst.execute_batch("PRAGMA wal_autocheckpoint = 0")
        .map_err(AdminError::sqlite("disable autocheckpoint", live))?;
    let pages = page_copy::copy_changed_pages(&src, &dst, live)?;
    if pages.is_none() {
        sqlite::copy_database(&src, &mut dst, live)?;
    }
    drop(src);
    drop(dst);
    // A fresh connection: the page copy changed the schema under the one that wrote it.
    let check = sqlite::open_read_only(live)?;
    sqlite::integrity_check(&check, live)?;
    Ok(pages)
}
