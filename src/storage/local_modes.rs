//! File-replica objects get the database file's permission bits, as Litestream v0.3.13 gives
//! them (its file replica creates objects with the database file's mode and directories with
//! the database directory's mode): a replica of a 0640 database must not be world-readable.
//!
//! What must stay true: only paths below the replica root are changed (never the root itself,
//! which the operator owns); modes come from the database at the time of each upload, so a
//! `chmod` of the database applies to the objects written after it.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Gives `root/key` the mode of `db` and every directory between it and `root` the mode of
/// `db`'s directory.
pub fn apply(root: &Path, key: &str, db: &Path) -> io::Result<()> {
    let file_mode = fs::metadata(db)?.permissions().mode() & 0o7777;
    let db_dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir_mode = fs::metadata(db_dir)?.permissions().mode() & 0o7777;
    let target = root.join(key);
    fs::set_permissions(&target, fs::Permissions::from_mode(file_mode))?;
    let mut dir = target.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) {
            break;
        }
        fs::set_permissions(d, fs::Permissions::from_mode(dir_mode))?;
        dir = d.parent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).expect("stat").permissions().mode() & 0o7777
    }

    #[test]
    fn objects_and_their_directories_take_the_database_modes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = tmp.path().join("data");
        fs::create_dir(&data).expect("mkdir");
        fs::set_permissions(&data, fs::Permissions::from_mode(0o750)).expect("chmod");
        let db = data.join("app.db");
        fs::write(&db, b"x").expect("db");
        fs::set_permissions(&db, fs::Permissions::from_mode(0o640)).expect("chmod");
        let root = tmp.path().join("replica");
        let key = "generations/0123456789abcdef/wal/00000000_00000000.wal.lz4";
        let object = root.join(key);
        fs::create_dir_all(object.parent().expect("parent")).expect("mkdir -p");
        fs::write(&object, b"y").expect("object");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod");

        apply(&root, key, &db).expect("apply");
        assert_eq!(mode(&object), 0o640);
        for dir in [
            "generations",
            "generations/0123456789abcdef",
            "generations/0123456789abcdef/wal",
        ] {
            assert_eq!(mode(&root.join(dir)), 0o750, "{dir}");
        }
        assert_eq!(mode(&root), 0o755, "the replica root is left alone");
    }

    #[test]
    fn a_missing_database_is_an_error() {
        let tmp = tempfile::tempdir().expect("tmp");
        let err = apply(tmp.path(), "x", &tmp.path().join("gone.db")).expect_err("missing db");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
