//! A read-through SQLite VFS for the integrity check: the same as the default `unix` VFS, except
//! that reads of the main database file are copied from a private read-only memory map of the
//! file instead of one `pread` system call per page.
//!
//! `PRAGMA integrity_check` reads every page of the database once; on a 1 GiB database that is
//! 262 144 `pread`s, most of the check's time. SQLite's own `mmap_size` would avoid them, but
//! every page it touches stays mapped and counts toward the process's resident memory (a 1 GiB
//! restore would show a 1 GiB peak RSS). Here the mapping is dropped from the page tables
//! (`MADV_DONTNEED` over the range read since the last trim; the page cache keeps the data) after
//! every [`TRIM_EVERY`] bytes copied, so resident memory stays at a few MiB whatever the database
//! size.
//!
//! What must stay true:
//! - Every operation other than a read of the main database inside its mapped length is the
//!   `unix` VFS's own, called on the `unix` file (writes, locks, WAL shared memory, sync).
//! - A write or truncate of the main database drops the mapping first, so no read can come from
//!   a stale or shortened mapping; a read past the mapped length is the `unix` VFS's read.
//! - No `xFetch`: the methods are version 2, so SQLite never asks for pointers into a mapping.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// Name the VFS is registered under.
pub const VFS_NAME: &str = "walstream-verify";
const VFS_NAME_C: &CStr = c"walstream-verify";
/// Bytes copied out of the mapping between two `MADV_DONTNEED`s.
const TRIM_EVERY: usize = 8 << 20;

/// Registers the VFS once per process; `false` if that failed (the caller then uses `unix`).
pub fn available() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    // SAFETY: `register` only reads SQLite's default VFS and registers a leaked, 'static copy.
    *REGISTERED.get_or_init(|| unsafe { register() })
}

/// The `unix` VFS this one wraps (set once, before registration).
static UNIX: OnceLock<usize> = OnceLock::new();

fn unix_vfs() -> *mut ffi::sqlite3_vfs {
    UNIX.get().copied().unwrap_or(0) as *mut ffi::sqlite3_vfs
}

unsafe fn register() -> bool {
    // SAFETY (whole body): the default VFS lives for the process; our copy is leaked.
    unsafe {
        let unix = ffi::sqlite3_vfs_find(ptr::null());
        if unix.is_null() || UNIX.set(unix as usize).is_err() {
            return false;
        }
        let mut vfs: ffi::sqlite3_vfs = ptr::read(unix);
        let Ok(sz) = c_int::try_from(size_of::<VerifyFile>()) else {
            return false;
        };
        vfs.szOsFile = sz + (*unix).szOsFile.max(0);
        vfs.pNext = ptr::null_mut();
        vfs.zName = VFS_NAME_C.as_ptr();
        vfs.xOpen = Some(x_open);
        let vfs = Box::leak(Box::new(vfs));
        ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK
    }
}

/// Our file object; the `unix` file follows it in the same allocation.
#[repr(C)]
struct VerifyFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    map: *mut u8,
    map_len: usize,
    since_trim: usize,
    /// Byte range read from the mapping since the last trim.
    touched: (usize, usize),
}

impl VerifyFile {
    /// Drops the pages read since the last trim from the page tables (not from the page cache).
    unsafe fn trim(&mut self) {
        const PAGE: usize = 4096;
        let start = self.touched.0 / PAGE * PAGE;
        let end = self.touched.1.min(self.map_len);
        if start < end {
            // SAFETY: [start, end) lies inside the live read-only mapping.
            unsafe { libc::madvise(self.map.add(start).cast(), end - start, libc::MADV_DONTNEED) };
        }
        self.since_trim = 0;
        self.touched = (usize::MAX, 0);
    }

    /// Drops the mapping (all later reads go to the `unix` VFS).
    unsafe fn unmap(&mut self) {
        if !self.map.is_null() {
            // SAFETY: `map`/`map_len` came from a successful mmap and are unmapped once.
            unsafe { libc::munmap(self.map.cast(), self.map_len) };
        }
        self.map = ptr::null_mut();
        self.map_len = 0;
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// Maps the file at `name` read-only; `None` if it cannot be opened, is empty or mmap fails.
unsafe fn map_file(name: *const c_char) -> Option<(*mut u8, usize)> {
    if name.is_null() {
        return None;
    }
    // SAFETY: SQLite passes a NUL-terminated path.
    let path = std::ffi::OsStr::from_bytes(unsafe { CStr::from_ptr(name) }.to_bytes());
    let file = std::fs::File::open(path).ok()?;
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    if len == 0 {
        return None;
    }
    // SAFETY: a fresh read-only shared mapping of an open descriptor; checked for failure.
    let map = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    (map != libc::MAP_FAILED).then_some((map.cast(), len))
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite gives us `szOsFile` zeroed bytes at `file`, room for both objects.
    unsafe {
        let f = file.cast::<VerifyFile>();
        let real = file.cast::<u8>().add(size_of::<VerifyFile>()).cast();
        (*f).base.pMethods = ptr::null();
        let unix = unix_vfs();
        let Some(open) = unix.as_ref().and_then(|u| u.xOpen) else {
            return ffi::SQLITE_ERROR;
        };
        let rc = open(unix, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK || (*real).pMethods.is_null() {
            return rc;
        }
        let (map, map_len) = if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
            map_file(name).unwrap_or((ptr::null_mut(), 0))
        } else {
            (ptr::null_mut(), 0)
        };
        f.write(VerifyFile {
            base: ffi::sqlite3_file { pMethods: &METHODS },
            real,
            map,
            map_len,
            since_trim: 0,
            touched: (usize::MAX, 0),
        });
        ffi::SQLITE_OK
    }
}

/// The `unix` file and its methods.
unsafe fn real(
    file: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    // SAFETY: only called on files opened by `x_open`, whose `real` file is open.
    unsafe {
        let real = (*file.cast::<VerifyFile>()).real;
        (real, &*(*real).pMethods)
    }
}

/// Calls method `$m` of the `unix` file with the remaining arguments.
macro_rules! delegate {
    ($file:expr, $m:ident $(, $arg:expr)*) => {{
        // SAFETY: see `real`; the method belongs to that file.
        let (real, methods) = unsafe { real($file) };
        match methods.$m {
            Some(m) => unsafe { m(real $(, $arg)*) },
            None => ffi::SQLITE_IOERR,
        }
    }};
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: `file` is one of ours; it is not used after close.
    unsafe { (*file.cast::<VerifyFile>()).unmap() };
    delegate!(file, xClose)
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: `file` is one of ours; the copy stays inside the mapping and `buf` has `amt` bytes.
    unsafe {
        let f = &mut *file.cast::<VerifyFile>();
        if let (Ok(at), Ok(n)) = (usize::try_from(offset), usize::try_from(amt))
            && !f.map.is_null()
            && at.checked_add(n).is_some_and(|end| end <= f.map_len)
        {
            ptr::copy_nonoverlapping(f.map.add(at), buf.cast::<u8>(), n);
            f.since_trim += n;
            f.touched = (f.touched.0.min(at), f.touched.1.max(at + n));
            if f.since_trim >= TRIM_EVERY {
                f.trim();
            }
            return ffi::SQLITE_OK;
        }
    }
    delegate!(file, xRead, buf, amt, offset)
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: `file` is one of ours.
    unsafe { (*file.cast::<VerifyFile>()).unmap() };
    delegate!(file, xWrite, buf, amt, offset)
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: `file` is one of ours.
    unsafe { (*file.cast::<VerifyFile>()).unmap() };
    delegate!(file, xTruncate, size)
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    delegate!(file, xSync, flags)
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    delegate!(file, xFileSize, size)
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    delegate!(file, xLock, level)
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    delegate!(file, xUnlock, level)
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    delegate!(file, xCheckReservedLock, out)
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    delegate!(file, xFileControl, op, arg)
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    delegate!(file, xSectorSize)
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    delegate!(file, xDeviceCharacteristics)
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    delegate!(file, xShmMap, region, size, extend, out)
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    delegate!(file, xShmLock, offset, n, flags)
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: see `real`.
    let (real, methods) = unsafe { real(file) };
    if let Some(m) = methods.xShmBarrier {
        // SAFETY: the method belongs to that file.
        unsafe { m(real) };
    }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    delegate!(file, xShmUnmap, delete)
}
