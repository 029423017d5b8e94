//! The mutating operations behind `POST /api/v1/databases/{db}/sync` and `…/snapshot`.
//!
//! What must stay true:
//! - sync = one database sync tick, then an immediate upload round of every replica (they run
//!   concurrently; each replica's own lock serialises it with its background loop), and success
//!   only once every replica's stored position covers the position that tick published — so a
//!   Kubernetes preStop hook that gets 200 knows every commit made before the call is in storage;
//! - snapshot = one snapshot per replica, taken the same way the snapshotter does;
//! - both ask the restore-point refresher for a fresh listing afterwards.

use futures::future::join_all;

use super::api::{Position, ReplicaPosition, SnapshotTaken, SnapshotTakenDoc, SyncDoc};
use crate::db::Pos;
use crate::replica::ReplicaError;
use crate::state::DbEntry;

/// Why an action failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("database is not attached")]
    NotAttached,
    #[error("database sync: {0}")]
    DbSync(crate::db::DbError),
    #[error("database has no generation yet")]
    NoGeneration,
    #[error("replica {replica}: {source}")]
    Replica {
        replica: String,
        source: ReplicaError,
    },
    #[error("replica {replica} stopped at {reached} before {target}")]
    Behind {
        replica: String,
        reached: String,
        target: String,
    },
}

impl ActionError {
    /// The replica the error is about, for the JSON body.
    pub fn replica(&self) -> Option<&str> {
        match self {
            ActionError::Replica { replica, .. } | ActionError::Behind { replica, .. } => {
                Some(replica)
            }
            _ => None,
        }
    }
}

fn covers(r: &Pos, p: &Pos) -> bool {
    r.generation == p.generation && (r.index, r.offset) >= (p.index, p.offset)
}

/// Syncs the database, uploads to every replica and checks each holds the synced position.
pub async fn sync(entry: &DbEntry) -> Result<SyncDoc, ActionError> {
    if !entry.handle.is_open() {
        return Err(ActionError::NotAttached);
    }
    let target = entry
        .handle
        .db
        .sync()
        .await
        .map_err(ActionError::DbSync)?
        .pos;
    let rounds = entry.replicas.iter().map(|r| {
        let target = &target;
        async move {
            let name = r.replica.name().to_string();
            let reached = r
                .replica
                .sync()
                .await
                .map_err(|source| ActionError::Replica {
                    replica: name.clone(),
                    source,
                })?;
            match reached {
                Some(p) if covers(&p, target) => Ok(ReplicaPosition {
                    name,
                    position: Position::from(&p),
                }),
                other => Err(ActionError::Behind {
                    replica: name,
                    reached: other.map_or("nothing".into(), |p| Position::from(&p).to_string()),
                    target: Position::from(target).to_string(),
                }),
            }
        }
    });
    let results = join_all(rounds).await;
    entry.refresh.force();
    Ok(SyncDoc {
        database: entry.id.clone(),
        position: Position::from(&target),
        replicas: results.into_iter().collect::<Result<_, _>>()?,
    })
}

/// Takes a snapshot in every replica.
pub async fn snapshot(entry: &DbEntry) -> Result<SnapshotTakenDoc, ActionError> {
    if !entry.handle.is_open() {
        return Err(ActionError::NotAttached);
    }
    if entry.handle.db.state().generation.is_none() {
        return Err(ActionError::NoGeneration);
    }
    let takes = entry.replicas.iter().map(|r| async move {
        let name = r.replica.name().to_string();
        match r.replica.snapshot().await {
            Ok((generation, index)) => Ok(SnapshotTaken {
                name,
                generation,
                index,
            }),
            Err(source) => Err(ActionError::Replica {
                replica: name,
                source,
            }),
        }
    });
    let results = join_all(takes).await;
    entry.refresh.force();
    Ok(SnapshotTakenDoc {
        database: entry.id.clone(),
        replicas: results.into_iter().collect::<Result<_, _>>()?,
    })
}
