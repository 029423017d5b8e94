//! Shadow WAL files: frame-aligned copies of the committed frames of one real WAL cycle
//! (spec §3.3 step 3).
//!
//! What must stay true:
//! - a shadow file is the WAL header followed by whole, valid frames; it only grows at its
//!   aligned end and only with whole committed transactions (frames up to the last valid
//!   commit frame), fsynced before the caller publishes the new position;
//! - copying streams through fixed buffers ([`COPY_BUFFER_BYTES`]); a WAL of any size costs a
//!   few MiB of memory, never its size;
//! - a copy validates every frame twice (a read-only first pass finds the last commit, the
//!   second pass re-validates while writing); if the two passes disagree the shadow is cut back
//!   to where it was and [`DbError::WalChanged`] is returned.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::error::DbError;
use super::meta::Perms;
use crate::wal::{
    FrameScanner, ScanSummary, WAL_HEADER_SIZE, WalHeader, align, read_seed_checksum,
};

/// Capacity of each of the two buffers (read side, write side) used to copy frames.
pub const COPY_BUFFER_BYTES: usize = 1 << 20;

/// What one copy did. Sizes are frame-aligned byte lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Copied {
    /// Aligned size of the real WAL file when the copy started.
    pub wal_size: u64,
    /// Aligned size of the shadow file after the copy.
    pub shadow_size: u64,
    /// Bytes appended to the shadow file.
    pub appended: u64,
    /// Bytes of copy buffers allocated (read buffer + write buffer + one frame).
    pub buffer_bytes: usize,
    /// The real WAL's header, read after the copy, equals the shadow's (false: the WAL
    /// restarted, the next shadow index begins).
    pub same_header: bool,
}

/// Appends the committed frames of the real WAL that follow the shadow's aligned end.
pub(crate) fn copy_to_shadow(wal: &Path, shadow: &Path, page_size: u32) -> Result<Copied, DbError> {
    let real = File::open(wal).map_err(DbError::io(wal, "open wal"))?;
    let wal_len = real.metadata().map_err(DbError::io(wal, "stat wal"))?.len();
    let mut out = OpenOptions::new()
        .read(true)
        .write(true)
        .open(shadow)
        .map_err(DbError::io(shadow, "open shadow wal"))?;
    let shadow_len = out
        .metadata()
        .map_err(DbError::io(shadow, "stat shadow wal"))?
        .len();
    let (header, shadow_bytes) = read_shadow_header(&mut out, shadow, page_size)?;
    let seed = read_seed_checksum(&mut out, &header, shadow_len).map_err(DbError::wal(shadow))?;
    let start = align(shadow_len, page_size);
    let mut copied = Copied {
        wal_size: align(wal_len, page_size),
        shadow_size: start,
        appended: 0,
        buffer_bytes: 2 * COPY_BUFFER_BYTES + header.frame_size() as usize,
        same_header: false,
    };

    let found = FrameScanner::new(&header, seed, start)
        .scan(&mut reader_at(&real, wal, start, u64::MAX)?, |_, _| Ok(()))
        .map_err(DbError::wal(wal))?;
    if found.commit_end == start {
        copied.same_header = real_header_is(&real, wal, &shadow_bytes)?;
        return Ok(copied);
    }
    if shadow_len > start {
        // A torn partial frame left by a crash: drop it before appending.
        out.set_len(start)
            .map_err(DbError::io(shadow, "truncate shadow wal"))?;
    }
    append_frames(&real, wal, &mut out, shadow, &header, seed, &found)?;
    copied.appended = found.commit_end - start;
    copied.shadow_size = found.commit_end;
    copied.same_header = real_header_is(&real, wal, &shadow_bytes)?;
    Ok(copied)
}

/// The real WAL's header (read now, through the copy's descriptor) equals `shadow_header`.
fn real_header_is(real: &File, wal: &Path, shadow_header: &[u8]) -> Result<bool, DbError> {
    let bytes = prefix_of(real, WAL_HEADER_SIZE)
        .and_then(whole_header)
        .map_err(DbError::io(wal, "read wal header"))?;
    Ok(bytes == shadow_header)
}

/// Second pass: copies `[found.start, found.commit_end)` while re-validating it.
fn append_frames(
    real: &File,
    wal: &Path,
    out: &mut File,
    shadow: &Path,
    header: &WalHeader,
    seed: (u32, u32),
    found: &ScanSummary,
) -> Result<(), DbError> {
    let start = found.start;
    let len = found.commit_end - start;
    out.seek(SeekFrom::Start(start))
        .map_err(DbError::io(shadow, "seek shadow wal"))?;
    let mut write_err = None;
    let mut writer = BufWriter::with_capacity(COPY_BUFFER_BYTES, &mut *out);
    let again = FrameScanner::new(header, seed, start).scan(
        &mut reader_at(real, wal, start, len)?,
        |_, bytes| {
            writer.write_all(bytes).map_err(|e| {
                let kind = e.kind();
                write_err = Some(e);
                std::io::Error::from(kind)
            })
        },
    );
    let flushed = writer.flush();
    drop(writer);
    if let Some(e) = write_err {
        let _ = out.set_len(start);
        return Err(DbError::io(shadow, "write shadow wal")(e));
    }
    let same = again.as_ref().is_ok_and(|a| {
        a.commit_end == found.commit_end && a.commit_checksum == found.commit_checksum
    });
    if let Err(e) = flushed {
        let _ = out.set_len(start);
        return Err(DbError::io(shadow, "write shadow wal")(e));
    }
    if !same {
        out.set_len(start)
            .map_err(DbError::io(shadow, "truncate shadow wal"))?;
        again.map_err(DbError::wal(wal))?;
        return Err(DbError::WalChanged {
            path: wal.to_path_buf(),
            offset: start,
        });
    }
    out.sync_data()
        .map_err(DbError::io(shadow, "fsync shadow wal"))
}

/// Creates shadow file `shadow` from the real WAL's header (checksum verified), then copies the
/// committed frames that follow it.
pub(crate) fn init_shadow(
    wal: &Path,
    shadow: &Path,
    page_size: u32,
    perms: &Perms,
) -> Result<Copied, DbError> {
    let bytes = read_prefix(wal, WAL_HEADER_SIZE).map_err(DbError::io(wal, "read wal header"))?;
    let header = WalHeader::parse(&bytes).map_err(DbError::wal(wal))?;
    check_page_size(&header, wal, page_size)?;
    if let Some(dir) = shadow.parent() {
        perms.mkdir_all(dir)?;
    }
    let mut f = perms.create_file(shadow)?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(DbError::io(shadow, "write shadow wal header"))?;
    drop(f);
    copy_to_shadow(wal, shadow, page_size)
}

/// Up to `len` bytes from the start of `path` (fewer at EOF).
pub(crate) fn read_prefix(path: &Path, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    File::open(path)?.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Up to `len` bytes from the start of an open file (fewer at EOF), whatever its position.
pub(crate) fn prefix_of(file: &File, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// A WAL header read by [`read_prefix`]/[`prefix_of`]: a shorter one is an `UnexpectedEof`
/// error worded like Go's (`EOF` when empty, else `unexpected EOF`).
pub(crate) fn whole_header(bytes: Vec<u8>) -> std::io::Result<Vec<u8>> {
    match bytes.len() {
        WAL_HEADER_SIZE => Ok(bytes),
        0 => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "EOF",
        )),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "unexpected EOF",
        )),
    }
}

/// A buffered reader over `len` bytes of `file` starting at `offset`.
fn reader_at<'a>(
    file: &'a File,
    path: &Path,
    offset: u64,
    len: u64,
) -> Result<BufReader<std::io::Take<&'a File>>, DbError> {
    let mut f = file;
    f.seek(SeekFrom::Start(offset))
        .map_err(DbError::io(path, "seek wal"))?;
    Ok(BufReader::with_capacity(COPY_BUFFER_BYTES, f.take(len)))
}

fn read_shadow_header(
    f: &mut File,
    path: &Path,
    page_size: u32,
) -> Result<(WalHeader, [u8; WAL_HEADER_SIZE]), DbError> {
    let mut buf = [0u8; WAL_HEADER_SIZE];
    f.read_exact_at(&mut buf, 0)
        .map_err(DbError::io(path, "read shadow wal header"))?;
    let header = WalHeader::parse(&buf).map_err(DbError::wal(path))?;
    check_page_size(&header, path, page_size)?;
    Ok((header, buf))
}

fn check_page_size(header: &WalHeader, path: &Path, page_size: u32) -> Result<(), DbError> {
    if header.page_size == page_size {
        return Ok(());
    }
    Err(DbError::PageSizeMismatch {
        path: path.to_path_buf(),
        expected: page_size,
        found: header.page_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::frame_offset;
    use std::os::unix::fs::MetadataExt;

    const PS: u32 = 512;

    fn perms() -> Perms {
        let m = std::fs::metadata("/proc/self").expect("proc");
        Perms {
            file_mode: 0o600,
            dir_mode: 0o700,
            uid: m.uid(),
            gid: m.gid(),
        }
    }

    /// Appends frames with the given commit fields to `wal` (which starts with `h`).
    fn append(h: &WalHeader, wal: &mut Vec<u8>, seed: &mut (u32, u32), commits: &[u32]) {
        for &commit in commits {
            let n = (wal.len() - 32) / (PS as usize + 24);
            let page = vec![(n as u8).wrapping_mul(7); PS as usize];
            let (frame, next) = h.encode_frame(*seed, n as u32 + 1, commit, &page);
            wal.extend_from_slice(&frame);
            *seed = next;
        }
    }

    #[test]
    fn copies_only_committed_frames_and_continues_the_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal_path, shadow_path) = (dir.path().join("db-wal"), dir.path().join("s/0.wal"));
        let h = WalHeader::new(false, PS, 0, (5, 6));
        let mut wal = h.encode().to_vec();
        let mut seed = h.checksum();
        append(&h, &mut wal, &mut seed, &[0, 2, 0]);
        std::fs::write(&wal_path, &wal).expect("write wal");

        let c = init_shadow(&wal_path, &shadow_path, PS, &perms()).expect("init");
        assert_eq!(c.shadow_size, frame_offset(2, PS));
        assert_eq!(c.appended, frame_offset(2, PS) - 32);
        let shadow = std::fs::read(&shadow_path).expect("shadow");
        assert_eq!(shadow, wal[..frame_offset(2, PS) as usize]);

        // The uncommitted third frame gets its commit later: both are appended.
        append(&h, &mut wal, &mut seed, &[4]);
        std::fs::write(&wal_path, &wal).expect("write wal");
        let c = copy_to_shadow(&wal_path, &shadow_path, PS).expect("copy");
        assert_eq!(
            (c.appended, c.shadow_size),
            (2 * frame_size(), wal.len() as u64)
        );
        assert_eq!(std::fs::read(&shadow_path).expect("shadow"), wal);
        assert!(c.buffer_bytes <= 2 * COPY_BUFFER_BYTES + frame_size() as usize);

        // Nothing new: nothing appended.
        let c = copy_to_shadow(&wal_path, &shadow_path, PS).expect("copy");
        assert_eq!(c.appended, 0);
    }

    fn frame_size() -> u64 {
        crate::wal::frame_size(PS)
    }

    #[test]
    fn stops_at_foreign_salt_and_drops_torn_shadow_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal_path, shadow_path) = (dir.path().join("db-wal"), dir.path().join("0.wal"));
        let h = WalHeader::new(true, PS, 3, (9, 9));
        let mut wal = h.encode().to_vec();
        let mut seed = h.checksum();
        append(&h, &mut wal, &mut seed, &[1]);
        let other = WalHeader::new(true, PS, 3, (8, 9));
        let mut other_seed = seed;
        append(&other, &mut wal, &mut other_seed, &[2]);
        std::fs::write(&wal_path, &wal).expect("write wal");
        // Shadow: header + 10 bytes of a torn frame.
        let mut torn = h.encode().to_vec();
        torn.extend_from_slice(&[1u8; 10]);
        std::fs::write(&shadow_path, &torn).expect("write shadow");

        let c = copy_to_shadow(&wal_path, &shadow_path, PS).expect("copy");
        assert_eq!(c.shadow_size, frame_offset(1, PS));
        assert_eq!(
            std::fs::read(&shadow_path).expect("shadow"),
            wal[..frame_offset(1, PS) as usize]
        );
    }

    #[test]
    fn init_rejects_a_bad_header_checksum_and_wrong_page_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal_path, shadow_path) = (dir.path().join("db-wal"), dir.path().join("0.wal"));
        let mut hdr = WalHeader::new(false, PS, 0, (1, 2)).encode();
        std::fs::write(&wal_path, hdr).expect("write");
        let err = init_shadow(&wal_path, &shadow_path, 4096, &perms()).expect_err("page size");
        assert!(
            matches!(err, DbError::PageSizeMismatch { found: 512, .. }),
            "{err}"
        );
        hdr[31] ^= 1;
        std::fs::write(&wal_path, hdr).expect("write");
        let err = init_shadow(&wal_path, &shadow_path, PS, &perms()).expect_err("checksum");
        assert!(matches!(err, DbError::Wal { .. }), "{err}");
        std::fs::write(&wal_path, &hdr[..20]).expect("write");
        let err = init_shadow(&wal_path, &shadow_path, PS, &perms()).expect_err("short");
        assert!(err.to_string().contains("db-wal"), "{err}");
    }
}
