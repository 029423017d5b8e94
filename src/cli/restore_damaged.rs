//! `walstream restore -if-db-not-exists -if-db-damaged …`: the init container's mode for a
//! damaged database. An existing database that passes `PRAGMA quick_check` is kept (the
//! `-if-db-not-exists` skip); one that fails it is replaced from the replica, and the damaged
//! file (with its `-wal` and `-shm`) is moved aside as `<db>.damaged-<UTC time>`, never deleted.
//!
//! What must stay true: the damaged file is moved only after the replacement has been restored
//! and verified beside it (under a temporary name in the same folder), so a failed or skipped
//! restore leaves the database exactly where and as it was; the `-wal` and `-shm` move with it
//! (a restored file beside the damaged one's WAL would be read together with it); a check that
//! runs out of time is not damage (the database is kept, with a warning).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tracing::{error, info, warn};

use crate::db::check::{SourceCheck, quick_check};
use crate::restore::output::with_suffix;

/// Longest `quick_check` of an existing database.
const CHECK_LIMIT: Duration = Duration::from_secs(600);
/// SQLite's side files that belong to a database file.
const SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

/// What the existing output holds.
pub(super) enum Existing {
    /// Keep it (it passed the check, or the check ran out of time).
    Keep,
    /// Damaged: restore into `temp`, then [`swap_in`].
    Replace { temp: PathBuf, reason: String },
}

/// Checks the existing database at `output`.
pub(super) fn check(output: &Path) -> Existing {
    match quick_check(output, CHECK_LIMIT) {
        SourceCheck::Ok => {
            info!(path = %output.display(), "database already exists and passes quick_check, skipping");
            Existing::Keep
        }
        SourceCheck::OutOfTime => {
            warn!(
                path = %output.display(),
                limit_seconds = CHECK_LIMIT.as_secs(),
                "quick_check of the existing database ran out of time; keeping it"
            );
            Existing::Keep
        }
        SourceCheck::Damaged(reason) => {
            error!(path = %output.display(), reason = %reason, "existing database fails quick_check; restoring it from the replica");
            let name = output
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "db".into());
            let temp =
                output.with_file_name(format!(".{name}.restore-{:08x}", rand::random::<u32>()));
            Existing::Replace { temp, reason }
        }
    }
}

/// Moves the damaged `output` (and its side files) aside and the verified `restored` file into
/// its place; returns where the damaged file went.
pub(super) fn swap_in(restored: &Path, output: &Path) -> anyhow::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let aside = with_suffix(output, &format!(".damaged-{stamp}"));
    std::fs::rename(output, &aside)
        .with_context(|| format!("move the damaged {} aside", output.display()))?;
    for side in SIDE_FILES {
        let from = with_suffix(output, side);
        if from.exists() {
            let to = with_suffix(&aside, side);
            std::fs::rename(&from, &to)
                .with_context(|| format!("move {} aside", from.display()))?;
        }
    }
    std::fs::rename(restored, output).with_context(|| {
        format!(
            "move the restored {} to {}",
            restored.display(),
            output.display()
        )
    })?;
    if let Some(dir) = output.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    error!(
        path = %output.display(),
        damaged = %aside.display(),
        "damaged database replaced from the replica; the damaged file is kept aside"
    );
    Ok(aside)
}

/// Removes a temporary restore target left by a failed or skipped restore.
pub(super) fn discard(temp: &Path) {
    let _ = std::fs::remove_file(temp);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::check::testkit;

    #[test]
    fn a_healthy_database_is_kept_a_damaged_one_replaced_and_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let db = testkit::filled_database(dir.path());
        assert!(matches!(check(&db), Existing::Keep));
        testkit::damage(&db);
        std::fs::write(with_suffix(&db, "-wal"), b"old wal").unwrap();
        let Existing::Replace { temp, reason } = check(&db) else {
            panic!("damage not seen");
        };
        assert!(!reason.is_empty());
        assert_eq!(temp.parent(), db.parent());
        let damaged = std::fs::read(&db).unwrap();
        std::fs::write(&temp, b"restored").unwrap();
        let aside = swap_in(&temp, &db).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), b"restored");
        assert_eq!(std::fs::read(&aside).unwrap(), damaged);
        assert_eq!(
            std::fs::read(with_suffix(&aside, "-wal")).unwrap(),
            b"old wal"
        );
        assert!(!with_suffix(&db, "-wal").exists());
        assert!(!temp.exists());
        assert!(
            aside
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("app.db.damaged-")
        );
    }
}
