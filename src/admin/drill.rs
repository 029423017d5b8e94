//! Restore drills: prove, on a schedule or on demand, that the database can actually be brought
//! back — the replica's latest point restored to a temporary file (with its `integrity_check`)
//! and the newest backup copied with its SHA-256 verified and `integrity_check`ed — and measure
//! how long each took (the recovery time an operator can count on).
//!
//! What must stay true: a drill only reads (the live database, the replica, the backups) and
//! writes only inside a private work folder of the backups folder, removed afterwards whatever
//! happened; each part's failure is recorded with its error (naming the object or backup), never
//! raised; the replica part also says whether the restored schema equals the live one (a
//! difference is reported, not a failure: the live database may have migrated since).

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::live_restore::{WorkDir, copy_backup, restore_replica};
use super::{AdminError, BackupKind, BackupStore, blocking, guard, sqlite};
use crate::storage::ReplicaClient;

/// The outcome of one part of a drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillPart {
    pub ok: bool,
    /// What was restored: the replica's name, or the backup's id.
    pub source: String,
    pub duration_seconds: f64,
    /// Replica part: whether the restored user schema and `user_version` equal the live ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_matches_live: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One drill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillReport {
    /// When it finished.
    #[serde(skip)]
    pub finished: SystemTime,
    /// Both parts that ran passed.
    pub ok: bool,
    pub duration_seconds: f64,
    /// `None`: the database has no replica.
    pub replica: Option<DrillPart>,
    /// `None`: there is no backup yet.
    pub backup: Option<DrillPart>,
}

/// The replica a drill restores from: its name and client.
pub struct DrillReplica<'a> {
    pub name: &'a str,
    pub client: &'a ReplicaClient,
}

/// Runs a drill of `store`'s database: the replica's latest point (when given) and the newest
/// backup of any kind but `pre-restore` (when there is one).
pub async fn run(store: &BackupStore, replica: Option<DrillReplica<'_>>) -> DrillReport {
    let started = Instant::now();
    let replica_part = match replica {
        Some(r) => Some(replica_part(store, r).await),
        None => None,
    };
    let backup_part = backup_part(store).await;
    let ok = replica_part.iter().chain(&backup_part).all(|p| p.ok);
    DrillReport {
        finished: SystemTime::now(),
        ok,
        duration_seconds: started.elapsed().as_secs_f64(),
        replica: replica_part,
        backup: backup_part,
    }
}

fn part(source: String, took: Duration, result: Result<Option<bool>, AdminError>) -> DrillPart {
    let duration_seconds = took.as_secs_f64();
    match result {
        Ok(matches) => DrillPart {
            ok: true,
            source,
            duration_seconds,
            schema_matches_live: matches,
            error: None,
        },
        Err(e) => DrillPart {
            ok: false,
            source,
            duration_seconds,
            schema_matches_live: None,
            error: Some(e.to_string()),
        },
    }
}

async fn replica_part(store: &BackupStore, r: DrillReplica<'_>) -> DrillPart {
    let started = Instant::now();
    let result = async {
        let s = store.clone();
        let work = blocking(move || WorkDir::create(&s)).await?;
        let out = work.path().join("drill-replica.db");
        restore_replica(r.name, r.client, None, &out).await?;
        let took = started.elapsed();
        let live = store.db_path().to_path_buf();
        let matches = blocking(move || {
            let conflict = guard::check(&out, &live)?;
            drop(work);
            Ok(conflict.is_none())
        })
        .await?;
        Ok::<_, AdminError>((took, matches))
    }
    .await;
    match result {
        Ok((took, matches)) => part(r.name.to_string(), took, Ok(Some(matches))),
        Err(e) => part(r.name.to_string(), started.elapsed(), Err(e)),
    }
}

async fn backup_part(store: &BackupStore) -> Option<DrillPart> {
    let s = store.clone();
    let newest = blocking(move || s.list())
        .await
        .ok()?
        .into_iter()
        .filter(|r| r.kind != BackupKind::PreRestore)
        .max_by(|a, b| a.created.cmp(&b.created))?;
    let started = Instant::now();
    let (s, id) = (store.clone(), newest.id.clone());
    let result = blocking(move || {
        let work = WorkDir::create(&s)?;
        let out = work.path().join("drill-backup.db");
        copy_backup(&s, &id, &out)?;
        let conn = sqlite::open_read_only(&out)?;
        sqlite::integrity_check(&conn, &out)?;
        drop(conn);
        drop(work);
        Ok(None)
    })
    .await;
    Some(part(newest.id, started.elapsed(), result))
}
