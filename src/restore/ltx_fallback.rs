//! The LTX side of [`super::fallback`]: when a restore of an LTX replica's latest state fails on
//! damaged data (an undecodable or inconsistent file, a failed integrity check), the newest
//! earlier TXID that restores intact, named in the error (`-txid T`).
//!
//! Candidates, newest first: every distinct `max_txid` of the replica's files (all levels)
//! below the failed plan's, each planned as `-txid T` would plan it (so a damaged file above T
//! is never read) and really restored into a probe file beside the output, removed afterwards;
//! at most [`MAX_TRIES`] are tried.
//!
//! What must stay true: nothing is left at or beside the output path; it runs only for a latest
//! restore (no `-txid`, no `-timestamp`) after damage, and its result is advice in the error —
//! it never restores an older point on its own.

use tracing::{info, warn};

use super::error::{GoodAt, GoodPoint, MAX_TRIES};
use super::fallback::probe_path;
use super::ltx_apply::execute_ltx;
use super::ltx_plan::{Levels, LtxTarget, plan};
use super::{ExecOptions, ReplicaRef, RestoreRequest};

/// The TXIDs to try, newest first: distinct file ends below `failed_top`.
fn candidates(levels: &Levels, failed_top: u64) -> Vec<u64> {
    let mut out: Vec<u64> = levels
        .iter()
        .flatten()
        .map(|f| f.max_txid)
        .filter(|&t| t < failed_top)
        .collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out.dedup();
    out
}

/// Tries the candidates of `replica` after its latest state (up to `failed_top`) was damaged;
/// the first that restores intact, if any within [`MAX_TRIES`].
pub async fn newest_good_txid(
    replica: ReplicaRef<'_>,
    levels: &Levels,
    failed_top: u64,
    req: &RestoreRequest,
) -> Option<GoodPoint> {
    let opts = ExecOptions {
        progress: false,
        ..req.exec.clone()
    };
    for (n, txid) in candidates(levels, failed_top)
        .into_iter()
        .take(MAX_TRIES)
        .enumerate()
    {
        let target = LtxTarget {
            txid: Some(txid),
            timestamp: None,
        };
        let Ok(files) = plan(levels, &target) else {
            continue;
        };
        let probe = probe_path(&req.output, n);
        let result = execute_ltx(replica.client, &files, &probe, &opts).await;
        let _ = std::fs::remove_file(&probe);
        match result {
            Ok(_) => {
                let time = files.iter().map(|f| f.created_at).max()?;
                info!(txid = %crate::ltx::format_txid(txid), "found the newest intact point");
                return Some(GoodPoint {
                    replica: replica.name.to_string(),
                    at: GoodAt::Txid(txid),
                    time,
                });
            }
            Err(e) => {
                warn!(txid = %crate::ltx::format_txid(txid), error = %e, "earlier point does not restore either")
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LtxFileInfo;

    fn file(level: u8, min: u64, max: u64) -> LtxFileInfo {
        LtxFileInfo {
            level,
            min_txid: min,
            max_txid: max,
            size: 1,
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
        }
    }

    #[test]
    fn candidates_are_the_distinct_file_ends_below_the_failure_newest_first() {
        let mut levels: Levels = vec![Vec::new(); 10];
        levels[0] = vec![file(0, 5, 5), file(0, 6, 6), file(0, 7, 7)];
        levels[1] = vec![file(1, 1, 4), file(1, 5, 6)];
        levels[9] = vec![file(9, 1, 4)];
        assert_eq!(candidates(&levels, 7), [6, 5, 4]);
        assert_eq!(candidates(&levels, 4), Vec::<u64>::new());
    }
}
