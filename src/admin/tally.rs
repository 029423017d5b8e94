//! [`Tally`]: the in-memory summary of one database's backups folder — count, bytes and newest
//! backup per kind, and the free and total bytes of the volume the folder is on — that the
//! metrics and `/api/v1/status` show without touching the disk.
//!
//! What must stay true:
//! - reading a summary ([`Tally::summary`]) takes one short-held lock and never does I/O, so a
//!   scrape of a fleet costs no listing and no `statvfs`;
//! - every create, upload and delete of a `BackupStore` sharing the tally updates it after
//!   the change is on disk (and reads the volume's space again: it just changed);
//! - changes made by another process (`walstream backup …` beside a running `replicate`) are
//!   picked up by `BackupStore::refresh_tally`: one `stat` of the folder, a listing only when
//!   the folder's modification time changed (or it was never listed), then one `statvfs`;
//! - a listing taken while this process changed the folder is not applied (the `version`
//!   check): the in-memory updates are never overwritten by an older view, and the next
//!   refresh lists again;
//! - until the first listing the summary is `None` ("not known yet"), never a false zero.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use chrono::DateTime;

use super::AdminError;
use super::kind::BackupKind;

/// The summary of one database's backups.
#[derive(Debug, Default)]
pub struct Tally {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// True once the folder was listed.
    loaded: bool,
    /// Bumped by every in-process change.
    version: u64,
    backups: HashMap<String, Entry>,
    /// Modification time of the folder at the last applied listing (`None`: no folder).
    dir_mtime: Option<SystemTime>,
    volume: Option<Volume>,
    /// When the folder was last checked (`BackupStore::refresh_tally`).
    refreshed_at: Option<SystemTime>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    kind: BackupKind,
    created: Option<SystemTime>,
    size: u64,
}

/// Count, bytes and newest backup of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSummary {
    pub kind: BackupKind,
    pub count: u64,
    pub bytes: u64,
    /// `created` of the newest backup of this kind (`None`: none, or no readable time).
    pub newest: Option<SystemTime>,
}

/// Space of the volume holding the backups folder (`statvfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Volume {
    /// Bytes available to unprivileged users (`f_bavail`).
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub checked_at: SystemTime,
}

/// What the tally knows, copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// One per kind, in [`BackupKind::ALL`] order.
    pub kinds: Vec<KindSummary>,
    /// `None` while the backups folder does not exist (or its volume could not be read).
    pub volume: Option<Volume>,
}

impl Tally {
    /// The summary, or `None` before the folder was first listed.
    pub fn summary(&self) -> Option<Summary> {
        let inner = crate::rt::lock(&self.inner);
        if !inner.loaded {
            return None;
        }
        let kinds = BackupKind::ALL
            .iter()
            .map(|&kind| {
                let mut k = KindSummary {
                    kind,
                    count: 0,
                    bytes: 0,
                    newest: None,
                };
                for e in inner.backups.values().filter(|e| e.kind == kind) {
                    k.count += 1;
                    k.bytes += e.size;
                    k.newest = k.newest.max(e.created);
                }
                k
            })
            .collect();
        Some(Summary {
            kinds,
            volume: inner.volume,
        })
    }

    /// Backup `id` of `kind`, created at `created` (RFC 3339), `size` bytes, was recorded.
    pub(super) fn added(&self, id: &str, kind: BackupKind, created: &str, size: u64) {
        let mut inner = crate::rt::lock(&self.inner);
        inner.version += 1;
        inner
            .backups
            .insert(id.to_string(), entry(kind, created, size));
    }

    /// A backup's record was deleted.
    pub(super) fn removed(&self, id: &str) {
        let mut inner = crate::rt::lock(&self.inner);
        inner.version += 1;
        inner.backups.remove(id);
    }

    /// Notes a check of the folder, last modified at `mtime` (`None`: missing); the version to
    /// hand to [`Tally::apply_listing`] when the folder must be listed (never listed, or changed
    /// since the last listing).
    pub(super) fn listing_due(&self, mtime: Option<SystemTime>) -> Option<u64> {
        let mut inner = crate::rt::lock(&self.inner);
        inner.refreshed_at = Some(SystemTime::now());
        (!inner.loaded || inner.dir_mtime != mtime).then_some(inner.version)
    }

    /// Replaces the summary with a listing — (id, kind, created, size) of every backup — taken
    /// at `version` of a folder last modified at `mtime`; false (nothing changed) when this
    /// process changed the folder since.
    pub(super) fn apply_listing<'a>(
        &self,
        version: u64,
        mtime: Option<SystemTime>,
        listing: impl Iterator<Item = (&'a str, BackupKind, &'a str, u64)>,
    ) -> bool {
        let mut inner = crate::rt::lock(&self.inner);
        if inner.version != version {
            return false;
        }
        inner.backups = listing
            .map(|(id, kind, created, size)| (id.to_string(), entry(kind, created, size)))
            .collect();
        inner.dir_mtime = mtime;
        inner.loaded = true;
        true
    }

    /// Reads the space of the volume of `dir` (`None` when the folder is missing).
    pub(super) fn read_volume(&self, dir: &Path) {
        let volume = volume_of(dir).ok();
        crate::rt::lock(&self.inner).volume = volume;
    }

    /// True when the last refresh is older than `every` (or there was none).
    pub fn refresh_due(&self, now: SystemTime, every: std::time::Duration) -> bool {
        crate::rt::lock(&self.inner)
            .refreshed_at
            .is_none_or(|t| now.duration_since(t).map_or(true, |d| d >= every))
    }
}

fn entry(kind: BackupKind, created: &str, size: u64) -> Entry {
    Entry {
        kind,
        created: DateTime::parse_from_rfc3339(created)
            .ok()
            .map(SystemTime::from),
        size,
    }
}

/// `statvfs` of `dir`.
pub fn volume_of(dir: &Path) -> Result<Volume, AdminError> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        AdminError::io("statvfs", dir)(std::io::Error::from(std::io::ErrorKind::InvalidInput))
    })?;
    // SAFETY: `c` is a NUL-terminated path and `st` a writable, zeroed statvfs the call fills.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above; both pointers are valid for the duration of the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(AdminError::io("statvfs", dir)(
            std::io::Error::last_os_error(),
        ));
    }
    let unit = st.f_frsize as u64;
    Ok(Volume {
        free_bytes: (st.f_bavail as u64).saturating_mul(unit),
        total_bytes: (st.f_blocks as u64).saturating_mul(unit),
        checked_at: SystemTime::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY1: &str = "2026-01-01T00:00:00Z";

    #[test]
    fn unknown_until_loaded_then_counts_bytes_and_newest_per_kind() {
        let t = Tally::default();
        t.added("a", BackupKind::Manual, DAY1, 10);
        assert_eq!(t.summary(), None);
        let version = t.listing_due(None).expect("never listed");
        assert!(t.apply_listing(
            version,
            None,
            [("a", BackupKind::Manual, DAY1, 10)].into_iter()
        ));
        assert_eq!(t.listing_due(None), None, "listed, folder unchanged");
        t.added("b", BackupKind::Manual, "2026-01-02T00:00:00Z", 5);
        t.added("c", BackupKind::Uploaded, "2026-01-03T00:00:00Z", 7);
        t.removed("missing");
        let s = t.summary().expect("loaded");
        let manual = s.kinds[0];
        assert_eq!(
            (manual.kind, manual.count, manual.bytes),
            (BackupKind::Manual, 2, 15)
        );
        let day2 = DateTime::parse_from_rfc3339("2026-01-02T00:00:00Z").expect("time");
        assert_eq!(manual.newest, Some(SystemTime::from(day2)));
        assert_eq!(s.kinds[3].count, 1);
        assert_eq!((s.kinds[1].count, s.kinds[1].newest), (0, None));
        t.removed("b");
        assert_eq!(t.summary().expect("loaded").kinds[0].bytes, 10);
    }

    #[test]
    fn a_listing_older_than_an_in_process_change_is_not_applied() {
        let t = Tally::default();
        let version = t.listing_due(None).expect("never listed");
        t.added("x", BackupKind::Manual, DAY1, 1);
        assert!(!t.apply_listing(version, None, std::iter::empty()));
        assert_eq!(t.summary(), None, "still not listed");
        let version = t.listing_due(None).expect("still due");
        assert!(t.apply_listing(
            version,
            None,
            [("x", BackupKind::Manual, DAY1, 1)].into_iter()
        ));
        assert_eq!(t.summary().expect("loaded").kinds[0].count, 1);
    }

    #[test]
    fn volume_of_a_folder_and_of_a_missing_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = volume_of(dir.path()).expect("statvfs");
        assert!(v.total_bytes > 0 && v.free_bytes <= v.total_bytes, "{v:?}");
        let t = Tally::default();
        t.read_volume(&dir.path().join("missing"));
        assert_eq!(crate::rt::lock(&t.inner).volume, None);
    }
}
