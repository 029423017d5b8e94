//! What a listing (or restore) command reads from: the `DB_PATH | REPLICA_URL` argument plus
//! `-config`, `-no-expand-env` and `-replica`, resolved the way Litestream v0.3.13 does.
//!
//! What must stay true:
//! - an argument matching `^\w+://` is a replica URL; with a non-empty `-config` flag that is an
//!   error (`cannot specify a replica URL and the -config flag`) — `LITESTREAM_CONFIG` alone is
//!   not; no config file is read in URL mode, so logging stays in the pre-config format;
//! - otherwise the config (flag, else `config::default_config_path()`) is loaded, its warnings are
//!   logged on stderr, logging is switched to the configured format, and the DB is looked up by
//!   its absolute path (`database not found in config: <abs path>`) among the explicit entries,
//!   then among the databases the directory entries derive (`config::DirConfig::db_config`);
//! - `-replica NAME` (DB mode only; ignored with a URL, as in Litestream) keeps one replica or
//!   fails with `replica "NAME" not found for database "<abs path>"`.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::flags::FlagSet;
use super::log;
use crate::admin::BackupStore;
use crate::config::{self, Config, DbConfig, LogLevel, ReplicaConfig};
use crate::gofmt::go_quote;
use crate::storage::ReplicaClient;

/// One replica to read from.
pub struct SourceReplica {
    /// Replica name as printed in tables (`file`, `s3`, or the configured `name`).
    pub name: String,
    pub config: ReplicaConfig,
    pub client: ReplicaClient,
}

/// The resolved source of a command.
pub struct Source {
    /// The database from the config file; `None` for a replica URL.
    pub db: Option<DbConfig>,
    pub replicas: Vec<SourceReplica>,
}

/// The raw values of the common flags and the positional argument.
#[derive(Debug, Clone, Copy)]
pub struct SourceArgs<'a> {
    /// `-config` as given (empty = not given).
    pub config: &'a str,
    pub no_expand_env: bool,
    /// `-replica` as given (empty = all replicas).
    pub replica: &'a str,
    /// `DB_PATH` or `REPLICA_URL`.
    pub target: &'a str,
}

/// Defines `-config` and `-no-expand-env` (Litestream's `registerConfigFlag`).
pub fn register_config_flags(fs: &mut FlagSet) -> &mut FlagSet {
    fs.string("config", "").bool("no-expand-env", false)
}

/// Loads the config named by `-config` (or the default path), logs its warnings on stderr and
/// switches logging to the configured format.
pub fn load_config(flag_config: &str, no_expand_env: bool) -> anyhow::Result<Config> {
    let path = if flag_config.is_empty() {
        config::default_config_path()
    } else {
        PathBuf::from(flag_config)
    };
    let loaded = config::load(&path, !no_expand_env)?;
    for warning in &loaded.warnings {
        log::emit(LogLevel::Warn, &warning.to_string(), &[]);
    }
    log::configure(&loaded.config.logging);
    Ok(loaded.config)
}

/// Resolves `args` to the replicas to read.
pub fn resolve(args: SourceArgs<'_>) -> anyhow::Result<Source> {
    if config::is_url(args.target) {
        if !args.config.is_empty() {
            bail!("cannot specify a replica URL and the -config flag");
        }
        let rc = config::replica_from_url(args.target)?;
        return Ok(Source {
            db: None,
            replicas: vec![open_replica(rc)?],
        });
    }
    let cfg = load_config(args.config, args.no_expand_env)?;
    resolve_in(&cfg, args)
}

/// [`resolve`] of a `DB_PATH` in an already loaded config.
pub fn resolve_in(cfg: &Config, args: SourceArgs<'_>) -> anyhow::Result<Source> {
    let db = find_db(cfg, args.target)?;
    let mut replicas = db
        .replicas
        .iter()
        .map(|rc| open_replica(rc.clone()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !args.replica.is_empty() {
        replicas.retain(|r| r.name == args.replica);
        if replicas.is_empty() {
            bail!(
                "replica {} not found for database {}",
                go_quote(args.replica),
                go_quote(&db.path.display().to_string())
            );
        }
    }
    Ok(Source {
        db: Some(db),
        replicas,
    })
}

/// Looks a DB up by the absolute form of `target`: an explicit entry, else a database a
/// directory entry would derive for that path (it need not exist on disk).
fn find_db(cfg: &Config, target: &str) -> anyhow::Result<DbConfig> {
    let path = config::normalize_db_path(target)?;
    if let Some(db) = cfg.db_by_path(&path) {
        return Ok(db.clone());
    }
    match cfg.dirs.iter().find_map(|d| d.db_config(&path)) {
        Some(db) => Ok(db),
        None => bail!("database not found in config: {}", path.display()),
    }
}

pub fn open_replica(rc: ReplicaConfig) -> anyhow::Result<SourceReplica> {
    let client = ReplicaClient::for_replica(&rc)?;
    Ok(SourceReplica {
        name: rc.name.clone(),
        config: rc,
        client,
    })
}

/// Latest modification time of the database or its `-wal` file (Litestream's `DB.UpdatedAt`),
/// with Go's error text when the database is missing (`stat <path>: no such file or directory`).
pub fn db_updated_at(db_path: &Path) -> anyhow::Result<std::time::SystemTime> {
    let db_mtime = stat_mtime(db_path)?;
    let mut wal = db_path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    match std::fs::metadata(&wal) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(db_mtime),
        Err(e) => Err(go_stat_error(&wal, &e)),
        Ok(m) => {
            let wal_mtime = m.modified().map_err(|e| go_stat_error(&wal, &e))?;
            Ok(db_mtime.max(wal_mtime))
        }
    }
}

fn stat_mtime(path: &Path) -> anyhow::Result<std::time::SystemTime> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| go_stat_error(path, &e))
}

/// `stat <path>: <reason>` with Go's lowercase reason texts for the common cases.
fn go_stat_error(path: &Path, e: &std::io::Error) -> anyhow::Error {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::NotADirectory => "not a directory".to_string(),
        _ => e.to_string(),
    };
    anyhow::anyhow!("stat {}: {reason}", path.display())
}

/// A flag set with the config flags plus the command's own (`extra`).
pub fn config_flag_set(extra: impl FnOnce(&mut FlagSet)) -> FlagSet {
    let mut fs = FlagSet::new();
    register_config_flags(&mut fs);
    extra(&mut fs);
    fs
}

/// The backups folder of the database at `db_arg` as the config file describes it.
pub fn backup_store(
    config_flag: &str,
    no_expand_env: bool,
    db_arg: &str,
) -> anyhow::Result<BackupStore> {
    let cfg = load_config(config_flag, no_expand_env)?;
    let Some(db) = cfg.db_by_path(Path::new(db_arg)) else {
        let abs = config::normalize_db_path(db_arg)?;
        bail!("database not found in config: {}", abs.display());
    };
    Ok(BackupStore::new(&db.path, &db.backups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updated_at_prefers_later_wal() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(&db, b"db").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        std::fs::File::options()
            .write(true)
            .open(&db)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(db_updated_at(&db).unwrap(), old);
        let wal = dir.path().join("x.db-wal");
        std::fs::write(&wal, b"wal").unwrap();
        let wal_mtime = std::fs::metadata(&wal).unwrap().modified().unwrap();
        assert_eq!(db_updated_at(&db).unwrap(), wal_mtime);
    }

    #[test]
    fn missing_db_reports_go_stat_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("nope.db");
        let err = db_updated_at(&db).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("stat {}: no such file or directory", db.display())
        );
    }
}
