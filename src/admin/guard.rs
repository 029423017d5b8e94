//! The schema guard of a live restore: restoring content whose schema or `user_version`
//! differs from the live database's would hand the running application a schema it may not
//! expect (an older migration level, a dropped table), so such a restore is refused with both
//! versions and the differences unless the caller says `force`.
//!
//! What must stay true: only the user's schema counts — `sqlite_*` objects and Litestream's
//! `_litestream_*` tables are left out, as in [`super::compare`] (a backup taken before walstream
//! ever ran still matches); the check reads both files read-only and never changes either; the
//! differences are seen from the live database (`added` = what the restore would add).

use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::AdminError;
use super::compare::{SchemaDiff, SchemaObject, Side, attach, schema, schema_diff};

/// One side's schema version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaFacts {
    pub user_version: i64,
    /// Lowercase hex SHA-256 of the user's schema objects (type, name, SQL; sorted).
    pub schema_sha256: String,
}

/// Why a restore was refused: the live database's and the restored content's schemas.
#[derive(Debug, Serialize)]
pub struct SchemaConflict {
    pub live: SchemaFacts,
    pub restore: SchemaFacts,
    /// Seen from the live database: `added` are objects the restore would bring in.
    pub differences: SchemaDiff,
}

impl std::fmt::Display for SchemaConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the restore would change the schema")?;
        if self.live.user_version != self.restore.user_version {
            write!(
                f,
                " (user_version {} → {})",
                self.live.user_version, self.restore.user_version
            )?;
        }
        let d = &self.differences;
        let names = |v: &[SchemaObject]| -> String {
            v.iter()
                .map(|o| format!("{} {}", o.kind, o.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !d.added.is_empty() {
            write!(f, "; adds {}", names(&d.added))?;
        }
        if !d.removed.is_empty() {
            write!(f, "; removes {}", names(&d.removed))?;
        }
        if !d.changed.is_empty() {
            let changed: Vec<String> = d
                .changed
                .iter()
                .map(|c| format!("{} {}", c.kind, c.name))
                .collect();
            write!(f, "; changes {}", changed.join(", "))?;
        }
        write!(f, "; ask again with force to restore anyway")
    }
}

/// The conflict between `live` and the restore `target`, if their schemas differ.
pub fn check(target: &Path, live: &Path) -> Result<Option<SchemaConflict>, AdminError> {
    let conn = attach(&[(Side::Live(live), "a"), (Side::Backup(target), "b")])?;
    let facts = |db: &str, path: &Path| -> Result<(SchemaFacts, Vec<SchemaObject>), AdminError> {
        let read = |e| AdminError::sqlite("read schema", path)(e);
        let user_version: i64 = conn
            .query_row(&format!("PRAGMA {db}.user_version"), [], |r| r.get(0))
            .map_err(read)?;
        let objects = schema(&conn, db).map_err(read)?;
        let mut hasher = Sha256::new();
        for o in &objects {
            for part in [o.kind.as_str(), &o.name, o.sql.as_deref().unwrap_or("")] {
                hasher.update(part.as_bytes());
                hasher.update([0u8]);
            }
        }
        let schema_sha256 = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok((
            SchemaFacts {
                user_version,
                schema_sha256,
            },
            objects,
        ))
    };
    let (live_facts, live_objects) = facts("a", live)?;
    let (restore_facts, restore_objects) = facts("b", target)?;
    if live_facts == restore_facts {
        return Ok(None);
    }
    Ok(Some(SchemaConflict {
        live: live_facts,
        restore: restore_facts,
        differences: schema_diff(&live_objects, &restore_objects),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &Path, name: &str, sql: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        rusqlite::Connection::open(&p)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        p
    }

    #[test]
    fn same_schema_passes_and_walstreams_tables_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let live = db(
            dir.path(),
            "live.db",
            "CREATE TABLE t(x); INSERT INTO t VALUES (1);
             CREATE TABLE _litestream_seq(id INTEGER PRIMARY KEY, seq INTEGER);
             PRAGMA user_version = 3;",
        );
        let target = db(
            dir.path(),
            "target.db",
            "CREATE TABLE t(x); INSERT INTO t VALUES (2); PRAGMA user_version = 3;",
        );
        assert!(check(&target, &live).unwrap().is_none());
    }

    #[test]
    fn an_older_migration_is_a_conflict_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let live = db(
            dir.path(),
            "live.db",
            "CREATE TABLE t(x, y); CREATE TABLE audit(a); PRAGMA user_version = 5;",
        );
        let target = db(
            dir.path(),
            "target.db",
            "CREATE TABLE t(x); CREATE INDEX t_x ON t(x); PRAGMA user_version = 4;",
        );
        let c = check(&target, &live).unwrap().expect("conflict");
        assert_eq!((c.live.user_version, c.restore.user_version), (5, 4));
        assert_ne!(c.live.schema_sha256, c.restore.schema_sha256);
        let text = c.to_string();
        assert_eq!(
            text,
            "the restore would change the schema (user_version 5 → 4); adds index t_x; \
             removes table audit; changes table t; ask again with force to restore anyway"
        );
        // Only the version differs: still a conflict.
        let same_schema = db(
            dir.path(),
            "v.db",
            "CREATE TABLE t(x, y); CREATE TABLE audit(a);",
        );
        let c = check(&same_schema, &live).unwrap().expect("conflict");
        assert_eq!(c.live.schema_sha256, c.restore.schema_sha256);
        assert!(c.differences.added.is_empty() && c.differences.changed.is_empty());
    }
}
