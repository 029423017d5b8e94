//! Choosing where to restore from: list every candidate generation of every candidate replica
//! and apply Litestream's choice rules (`DB.CalcRestoreTarget` over `Replica.CalcRestoreTarget`,
//! spec §5.1).
//!
//! What must stay true: replicas are considered in configuration order and generations in id
//! order; a later candidate wins only with a strictly greater `updatedAt`. Listing errors end
//! the restore (as in Litestream) and name the replica.

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use crate::storage::{ReplicaClient, StorageError};

use super::error::RestoreError;
use super::plan::{GenerationListing, Target, choose_generation};

/// One replica that may be restored from.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaRef<'a> {
    /// Replica name (for errors and logs).
    pub name: &'a str,
    pub client: &'a ReplicaClient,
}

/// The winning replica and generation.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Position in the slice given to [`choose_target`].
    pub replica: usize,
    pub listing: GenerationListing,
    pub updated_at: DateTime<Utc>,
}

/// Lists the snapshots and segments of every generation of `client` (only `generation` when
/// given), `parallelism` generations at a time, in generation-id order.
pub async fn list_generations(
    r: ReplicaRef<'_>,
    generation: Option<&str>,
    parallelism: usize,
) -> Result<Vec<GenerationListing>, RestoreError> {
    let list_err = |e: StorageError| RestoreError::List {
        replica: r.name.to_string(),
        source: Box::new(e),
    };
    let mut ids = r.client.generations().await.map_err(list_err)?;
    ids.sort();
    ids.retain(|g| generation.is_none_or(|want| want == g));
    futures::stream::iter(ids)
        .map(|g| async move {
            let snapshots = r.client.snapshots(&g).await?;
            let segments = r.client.wal_segments(&g).await?;
            Ok(GenerationListing {
                generation: g,
                snapshots,
                segments,
            })
        })
        .buffered(parallelism.max(1))
        .try_collect()
        .await
        .map_err(list_err)
}

/// Picks the replica and generation to restore from; `None` = no matching backups.
pub async fn choose_target(
    replicas: &[ReplicaRef<'_>],
    generation: Option<&str>,
    target: &Target,
    parallelism: usize,
) -> Result<Option<Choice>, RestoreError> {
    let mut best: Option<Choice> = None;
    for (i, r) in replicas.iter().enumerate() {
        let listings = list_generations(*r, generation, parallelism).await?;
        let Some((listing, updated_at)) = choose_generation(&listings, generation, target) else {
            continue;
        };
        if best.as_ref().is_none_or(|b| updated_at > b.updated_at) {
            best = Some(Choice {
                replica: i,
                listing: listing.clone(),
                updated_at,
            });
        }
    }
    Ok(best)
}
