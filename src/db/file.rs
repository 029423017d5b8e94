//! Read access to the attached database file without a descriptor of walstream's own.
//!
//! POSIX record locks belong to the process and are all released when *any* descriptor of the
//! file is closed, so walstream may never open and close the live database file beside SQLite.
//! Snapshots therefore read through the descriptor SQLite's reader connection already holds (one
//! open file fewer per attached database), and the [`DbFile`] keeps that connection alive until
//! the last reader is done, so the descriptor is never closed — or its number reused — under a
//! running snapshot.
//!
//! What must stay true: a borrowed descriptor is only used after checking that it names the
//! attached file (same device and inode); when that check fails walstream falls back to one
//! handle of its own, opened at attach and closed only at detach (the earlier behaviour).
//! Nothing here ever writes through the handle.

use std::any::Any;
use std::fs::File;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use rusqlite::{Connection, ffi};

/// A read handle on the database file: either SQLite's own descriptor (borrowed, with the
/// connection that owns it kept alive) or a file walstream opened itself.
pub struct DbFile {
    file: ManuallyDrop<File>,
    /// `Some` while the descriptor belongs to a SQLite connection that this keeps alive.
    owner: Option<Arc<dyn Any + Send + Sync>>,
}

impl DbFile {
    /// Borrows the descriptor of `conn`'s main database when it names the file `identity`
    /// (device, inode). `owner` must own `conn` and is kept alive as long as this handle.
    pub(crate) fn borrow_from(
        conn: &Connection,
        identity: (u64, u64),
        owner: Arc<dyn Any + Send + Sync>,
    ) -> Option<DbFile> {
        let fd = sqlite_fd(conn)?;
        // SAFETY: the descriptor belongs to `conn`, which `owner` keeps open for as long as the
        // returned handle lives; ManuallyDrop makes sure this handle never closes it.
        let file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
        let meta = file.metadata().ok()?;
        ((meta.dev(), meta.ino()) == identity).then_some(DbFile {
            file,
            owner: Some(owner),
        })
    }

    /// True when the descriptor is SQLite's (no extra open file).
    pub fn is_borrowed(&self) -> bool {
        self.owner.is_some()
    }
}

impl From<File> for DbFile {
    fn from(file: File) -> DbFile {
        DbFile {
            file: ManuallyDrop::new(file),
            owner: None,
        }
    }
}

impl Deref for DbFile {
    type Target = File;

    fn deref(&self) -> &File {
        &self.file
    }
}

impl Drop for DbFile {
    fn drop(&mut self) {
        if self.owner.is_none() {
            // SAFETY: an owned file is dropped exactly once, here; borrowed ones never are.
            unsafe { ManuallyDrop::drop(&mut self.file) }
        }
    }
}

impl std::fmt::Debug for DbFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbFile")
            .field("file", &*self.file)
            .field("borrowed", &self.is_borrowed())
            .finish()
    }
}

/// The first fields of the unix VFS's `unixFile` (stable across SQLite 3.x): the method table,
/// the VFS, the inode record, then the descriptor.
#[repr(C)]
struct UnixFileHead {
    methods: *const std::ffi::c_void,
    vfs: *const std::ffi::c_void,
    inode: *const std::ffi::c_void,
    fd: std::ffi::c_int,
}

/// The descriptor of `conn`'s main database file, when SQLite's default (unix) VFS opened it.
fn sqlite_fd(conn: &Connection) -> Option<RawFd> {
    let mut vfs: *mut ffi::sqlite3_vfs = std::ptr::null_mut();
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `conn` owns a live handle; both file controls write one pointer through `arg`.
    let ok = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_VFS_POINTER,
            (&mut vfs as *mut *mut ffi::sqlite3_vfs).cast(),
        ) == ffi::SQLITE_OK
            && ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast(),
            ) == ffi::SQLITE_OK
    };
    if !ok || vfs.is_null() || file.is_null() || !is_unix_vfs(vfs) {
        return None;
    }
    // SAFETY: the unix VFS allocates a `unixFile` for every open file, whose leading fields are
    // `UnixFileHead`; the pointer is valid while `conn` is open (the caller holds it).
    let fd = unsafe { (*(file as *const UnixFileHead)).fd };
    (fd >= 0).then_some(fd)
}

/// The default VFS on Linux is `unix`; its `-none`/`-dotfile`/`-excl` variants share `unixFile`.
fn is_unix_vfs(vfs: *mut ffi::sqlite3_vfs) -> bool {
    // SAFETY: `vfs` is a registered VFS; its name is a NUL-terminated string that lives as long
    // as the registration (process lifetime for built-in VFSes).
    let name = unsafe { std::ffi::CStr::from_ptr((*vfs).zName) };
    name.to_bytes() == b"unix" || name.to_bytes().starts_with(b"unix-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;
    use std::sync::Mutex;

    #[test]
    fn borrows_sqlite_descriptor_of_the_same_file_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .expect("write");
        let meta = std::fs::metadata(&path).expect("stat");
        let owner: Arc<dyn Any + Send + Sync> = Arc::new(Mutex::new(()));
        let file = DbFile::borrow_from(&conn, (meta.dev(), meta.ino()), owner.clone())
            .expect("borrow the descriptor");
        assert!(file.is_borrowed());
        let mut magic = [0u8; 16];
        file.read_exact_at(&mut magic, 0).expect("read header");
        assert_eq!(&magic, b"SQLite format 3\0");
        drop(file);
        // Dropping the borrowed handle left SQLite's descriptor open.
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("query after drop");
        assert_eq!(n, 1);
        // A different identity is refused.
        assert!(DbFile::borrow_from(&conn, (meta.dev(), meta.ino() + 1), owner).is_none());
    }
}
