//! When a restore of the latest point fails on damaged replica data (an integrity check, a bad
//! checksum, a truncated object, a gap), the newest earlier point that restores intact, named in
//! the error so the operator knows exactly what to restore instead (`-generation G -index N`).
//!
//! Candidates, newest first: the failed generation's WAL indexes below the one that was planned
//! (down to its snapshots' indexes), then every other generation of the same replica by last
//! write. Each candidate is really restored (into a probe file beside the output, removed
//! afterwards) and checked like the restore itself; at most [`MAX_TRIES`] are tried.
//!
//! What must stay true: nothing is left at or beside the output path; the search only runs for
//! a latest restore (no `-generation`, `-index` or `-timestamp`), only after damage (not after
//! storage or configuration errors), and its result is advice in the error — it never restores
//! an older point on its own.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::error::{GoodAt, GoodPoint, MAX_TRIES};
use super::plan::{self, GenerationListing, Target};
use super::select::{self, ReplicaRef};
use super::{ExecOptions, RestoreError, RestoreRequest, execute};

impl RestoreError {
    /// Damage in the replica's data (as opposed to storage, configuration or output errors).
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            RestoreError::Decompress { .. }
                | RestoreError::Gap { .. }
                | RestoreError::WalHeader { .. }
                | RestoreError::FrameSalt { .. }
                | RestoreError::FrameChecksum { .. }
                | RestoreError::FramePageZero { .. }
                | RestoreError::TruncatedFrame { .. }
                | RestoreError::NotCommitted { .. }
                | RestoreError::PageSize { .. }
                | RestoreError::SnapshotNotSqlite { .. }
                | RestoreError::SnapshotTruncated { .. }
                | RestoreError::Integrity { .. }
                | RestoreError::Ltx(_)
                | RestoreError::LtxFile { .. }
        )
    }
}

/// `(generation listing, highest index to include)` candidates, newest first.
fn candidates(
    failed: &GenerationListing,
    others: &[GenerationListing],
) -> Vec<(GenerationListing, u32)> {
    let mut out = Vec::new();
    let lowest = failed.snapshots.iter().map(|s| s.index).min();
    let highest = failed.segments.iter().map(|s| s.index).max();
    if let (Some(lowest), Some(highest)) = (lowest, highest) {
        for index in (lowest..highest).rev() {
            out.push((failed.clone(), index));
        }
    }
    let mut rest: Vec<&GenerationListing> = others
        .iter()
        .filter(|l| l.generation != failed.generation)
        .collect();
    rest.sort_by_key(|l| std::cmp::Reverse(plan::generation_bounds(l).map(|b| b.updated_at)));
    for l in rest {
        let top = l
            .segments
            .iter()
            .map(|s| s.index)
            .chain(l.snapshots.iter().map(|s| s.index))
            .max();
        if let Some(top) = top {
            out.push((l.clone(), top));
        }
    }
    out
}

/// The newest object time of `listing` up to `index`.
fn time_of(listing: &GenerationListing, index: u32) -> Option<DateTime<Utc>> {
    listing
        .segments
        .iter()
        .filter(|s| s.index <= index)
        .map(|s| s.created_at)
        .chain(
            listing
                .snapshots
                .iter()
                .filter(|s| s.index <= index)
                .map(|s| s.created_at),
        )
        .max()
}

/// A probe path beside `output` (same folder, hidden).
pub(super) fn probe_path(output: &Path, n: usize) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "db".into());
    output.with_file_name(format!(".{name}.probe-{n}-{:08x}", rand::random::<u32>()))
}

/// Tries the candidates of `replica` after the latest point of `failed` was damaged; the first
/// that restores intact, if any within [`MAX_TRIES`].
pub async fn newest_good_point(
    replica: ReplicaRef<'_>,
    failed: &GenerationListing,
    req: &RestoreRequest,
) -> Option<GoodPoint> {
    let others = select::list_generations(replica, None, req.exec.parallelism.max(1))
        .await
        .unwrap_or_default();
    let opts = ExecOptions {
        progress: false,
        ..req.exec.clone()
    };
    for (n, (listing, index)) in candidates(failed, &others)
        .into_iter()
        .take(MAX_TRIES)
        .enumerate()
    {
        let Ok(plan) = plan::plan(&listing, &Target::Index(i64::from(index))) else {
            continue;
        };
        let probe = probe_path(&req.output, n);
        let result = execute(replica.client, &plan, &probe, &opts).await;
        let _ = std::fs::remove_file(&probe);
        match result {
            Ok(_) => {
                let time = time_of(&listing, index)?;
                info!(generation = %listing.generation, index, "found the newest intact point");
                return Some(GoodPoint {
                    replica: replica.name.to_string(),
                    at: GoodAt::Index {
                        generation: listing.generation,
                        index,
                    },
                    time,
                });
            }
            Err(e) => {
                warn!(generation = %listing.generation, index, error = %e, "earlier point does not restore either")
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{SegmentInfo, SnapshotInfo};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn listing(generation: &str, snapshot: u32, segments: &[(u32, i64)]) -> GenerationListing {
        GenerationListing {
            generation: generation.into(),
            snapshots: vec![SnapshotInfo {
                generation: generation.into(),
                index: snapshot,
                size: 1,
                created_at: t(0),
            }],
            segments: segments
                .iter()
                .map(|&(index, at)| SegmentInfo {
                    generation: generation.into(),
                    index,
                    offset: 0,
                    size: 1,
                    created_at: t(at),
                })
                .collect(),
        }
    }

    #[test]
    fn earlier_indexes_first_then_other_generations_by_last_write() {
        let failed = listing("b", 1, &[(1, 10), (2, 20), (3, 30)]);
        let older = listing("a", 0, &[(0, 5), (4, 8)]);
        let newer = listing("c", 0, &[(0, 50)]);
        let got: Vec<(String, u32)> = candidates(&failed, &[older, failed.clone(), newer])
            .into_iter()
            .map(|(l, i)| (l.generation, i))
            .collect();
        assert_eq!(
            got,
            [
                ("b".into(), 2),
                ("b".into(), 1),
                ("c".into(), 0),
                ("a".into(), 4)
            ]
        );
        assert_eq!(time_of(&failed, 2), Some(t(20)));
        assert_eq!(time_of(&failed, 0), None);
    }
}
