//! [`Tally`]: the in-memory summary of one database's backups folder — count, bytes and newest
//! backup per kind, and the free and total bytes of the volume the folder is on — that the
//! metrics and `/api/v1/status` show without touching the disk.
//!
//! What must stay true:
//! - reading a summary ([`Tally::summary`]) takes one short-held lock and never does I/O, so a
//!   scrape of a fleet costs no listing and no `statvfs`;
//! - every create, upload and delete of a [`BackupStore`] sharing the tally updates it after
//!   the change is on disk (and reads the volume's space again: it just changed);
//! - changes made by another process (`walstream backup …` beside a running `replicate`) are
//!   picked up by [`BackupStore::refresh_tally`]: one `stat` of the folder, a listing only when
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
use super::backups::{BackupKind, BackupRecord, BackupStore};

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
    /// When [`BackupStore::refresh_tally`] last ran.
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

    /// A backup was recorded.
    pub(super) fn added(&self, r: &BackupRecord) {
        let mut inner = crate::rt::lock(&self.inner);
        inner.version += 1;
        inner.backups.insert(r.id.clone(), entry(r));
    }

    /// A backup's record was deleted.
    pub(super) fn removed(&self, id: &str) {
        let mut inner = crate::rt::lock(&self.inner);
        inner.version += 1;
        inner.backups.remove(id);
    }

    /// Replaces the summary with a listing taken at `version` of a folder last modified at
    /// `mtime`; false (nothing changed) when this process changed the folder since.
    fn apply_listing(
        &self,
        version: u64,
        mtime: Option<SystemTime>,
        records: &[BackupRecord],
    ) -> bool {
        let mut inner = crate::rt::lock(&self.inner);
        if inner.version != version {
            return false;
        }
        inner.backups = records.iter().map(|r| (r.id.clone(), entry(r))).collect();
        inner.dir_mtime = mtime;
        inner.loaded = true;
        true
    }

    fn set_volume(&self, volume: Option<Volume>) {
        crate::rt::lock(&self.inner).volume = volume;
    }

    /// True when the last refresh is older than `every` (or there was none).
    pub fn refresh_due(&self, now: SystemTime, every: std::time::Duration) -> bool {
        crate::rt::lock(&self.inner)
            .refreshed_at
            .is_none_or(|t| now.duration_since(t).map_or(true, |d| d >= every))
    }
}

fn entry(r: &BackupRecord) -> Entry {
    Entry {
        kind: r.kind,
        created: DateTime::parse_from_rfc3339(&r.created)
            .ok()
            .map(SystemTime::from),
        size: r.size,
    }
}

impl BackupStore {
    /// Brings the tally in step with the folder: a listing when the folder changed since the
    /// last one (or was never listed), then the volume's space.
    pub fn refresh_tally(&self) -> Result<(), AdminError> {
        let tally = self.tally();
        let dir = self.dir();
        let mtime = match std::fs::metadata(dir) {
            Ok(m) => Some(m.modified().map_err(AdminError::io("stat", dir))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(AdminError::io("stat", dir)(e)),
        };
        let (loaded, known, version) = {
            let mut inner = crate::rt::lock(&tally.inner);
            inner.refreshed_at = Some(SystemTime::now());
            (inner.loaded, inner.dir_mtime, inner.version)
        };
        if !loaded || mtime != known {
            let records = match mtime {
                Some(_) => self.list()?,
                None => Vec::new(),
            };
            tally.apply_listing(version, mtime, &records);
        }
        self.read_volume();
        Ok(())
    }

    /// Reads the volume's space into the tally (`None` when the folder is missing).
    pub(super) fn read_volume(&self) {
        self.tally().set_volume(volume_of(self.dir()).ok());
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
    use std::collections::BTreeMap;

    use super::*;

    fn record(id: &str, kind: BackupKind, created: &str, size: u64) -> BackupRecord {
        BackupRecord {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            kind,
            created: created.into(),
            size,
            sha256: String::new(),
            source: None,
            labels: BTreeMap::new(),
            user_version: None,
            schema_sha256: None,
            page_count: None,
            page_size: None,
            created_by: None,
            pinned: false,
        }
    }

    #[test]
    fn unknown_until_loaded_then_counts_bytes_and_newest_per_kind() {
        let t = Tally::default();
        t.added(&record("a", BackupKind::Manual, "2026-01-01T00:00:00Z", 10));
        assert_eq!(t.summary(), None);
        crate::rt::lock(&t.inner).loaded = true;
        t.added(&record("b", BackupKind::Manual, "2026-01-02T00:00:00Z", 5));
        t.added(&record(
            "c",
            BackupKind::Uploaded,
            "2026-01-03T00:00:00Z",
            7,
        ));
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
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = crate::config::BackupsConfig {
            path: dir.path().join("backups"),
            ..crate::config::BackupsConfig::for_db(&dir.path().join("app.db"))
        };
        let store = BackupStore::new(&dir.path().join("app.db"), &cfg);
        store.refresh_tally().expect("refresh");
        let s = store
            .tally()
            .summary()
            .expect("loaded: no folder is no backups");
        assert!(s.kinds.iter().all(|k| k.count == 0));
        assert_eq!(s.volume, None);
        std::fs::create_dir_all(store.dir()).expect("mkdir");
        store.refresh_tally().expect("refresh");
        let v = store
            .tally()
            .summary()
            .and_then(|s| s.volume)
            .expect("volume");
        assert!(v.total_bytes > 0 && v.free_bytes <= v.total_bytes);
        // A listing that started before an in-process change is not applied.
        let version = crate::rt::lock(&store.tally().inner).version;
        let x = record("x", BackupKind::Manual, "2026-01-01T00:00:00Z", 1);
        store.tally().added(&x);
        assert!(!store.tally().apply_listing(version, None, &[]));
        assert_eq!(store.tally().summary().expect("loaded").kinds[0].count, 1);
        // The next refresh lists again (the folder's time is not the one recorded).
        store
            .tally()
            .added(&record("y", BackupKind::Manual, "2026-01-01T00:00:00Z", 1));
        crate::rt::lock(&store.tally().inner).dir_mtime = None;
        store.refresh_tally().expect("refresh");
        assert_eq!(store.tally().summary().expect("loaded").kinds[0].count, 0);
    }
}
