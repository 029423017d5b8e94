//! What a comparison or an export reads: a [`Source`] (`live`, a backup id, a point in time)
//! resolved to a readable file ([`resolve`]) — the live database, a backup's file, or the first
//! replica restored to the time into a work folder of the backups folder, removed with it — and
//! [`compare_sources`], which resolves both sides and compares them.
//!
//! What must stay true: a point in time is restored (and integrity-checked) by the live
//! restore's replica restore, never read partially; nothing outside the work folder is written.

use std::path::PathBuf;

use super::compare::{Comparison, Page, Side, Source, compare};
use super::live_restore::{WorkDir, restore_replica};
use super::{AdminError, BackupStore, blocking};
use crate::storage::ReplicaClient;

/// A [`Source`] as a readable file; a point in time is restored into a work folder of the
/// backups folder, removed when this is dropped.
pub struct Resolved {
    path: PathBuf,
    kind: SideKind,
    _work: Option<WorkDir>,
}

#[derive(Debug, Clone, Copy)]
enum SideKind {
    Backup,
    Live,
}

impl Resolved {
    pub fn side(&self) -> Side<'_> {
        match self.kind {
            SideKind::Backup => Side::Backup(&self.path),
            SideKind::Live => Side::Live(&self.path),
        }
    }
}

/// The replica a point-in-time source restores from.
pub struct PointReplica<'a> {
    pub name: &'a str,
    pub client: &'a ReplicaClient,
}

/// Resolves `source` of `store`'s database: the live file, a backup's file (404 when absent),
/// or the replica restored (and integrity-checked) at the time.
pub async fn resolve(
    store: &BackupStore,
    source: &Source,
    replica: Option<PointReplica<'_>>,
) -> Result<Resolved, AdminError> {
    let (path, kind, work) = match source {
        Source::Live => (store.db_path().to_path_buf(), SideKind::Live, None),
        Source::Backup(id) => {
            let (s, id) = (store.clone(), id.clone());
            let path = blocking(move || Ok(s.get(&id)?.1)).await?;
            (path, SideKind::Backup, None)
        }
        Source::At(t) => {
            let Some(r) = replica else {
                return Err(AdminError::NoReplica {
                    path: store.db_path().to_path_buf(),
                });
            };
            let s = store.clone();
            let work = blocking(move || WorkDir::create(&s)).await?;
            let out = work.path().join("point.db");
            restore_replica(r.name, r.client, Some(*t), &out).await?;
            (out, SideKind::Backup, Some(work))
        }
    };
    Ok(Resolved {
        path,
        kind,
        _work: work,
    })
}

/// Compares two sources of `store`'s database (restoring a point in time from `replica`).
pub async fn compare_sources(
    store: &BackupStore,
    (a, b): (&Source, &Source),
    page: Page,
    replica: Option<PointReplica<'_>>,
) -> Result<Comparison, AdminError> {
    let ra = resolve(store, a, replica.as_ref().map(PointReplica::again)).await?;
    let rb = resolve(store, b, replica).await?;
    blocking(move || compare(ra.side(), rb.side(), &page)).await
}

impl PointReplica<'_> {
    fn again(&self) -> PointReplica<'_> {
        PointReplica {
            name: self.name,
            client: self.client,
        }
    }
}
