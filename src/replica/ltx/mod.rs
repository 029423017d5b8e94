//! The Litestream v0.5 (LTX) writer of one replica (spec §3, §4, §7): per sync one L0 file
//! `N-N` holding the pages the shadow WAL gained since the last one, compaction of L(k-1) into
//! Lk on the configured `levels`, L9 snapshots on `snapshot.interval`, and retention.
//!
//! Pieces: [`plan`] (pure: page plans, shadow ranges, compaction inputs, retention, schedule),
//! [`stage`] (blocking: frames → staging files, full images, merges), `sync` (L0 files and
//! recovery), `adopt` (Litestream v0.5's local L0 files at hand-over), `jobs` (compaction,
//! snapshots, retention), `run` (the loops), `validate` (`validation-interval`: the L0 ending at
//! the validated position, then restore and compare).
//!
//! What must stay true:
//! - TXIDs only grow: N = previous + 1, one per stored L0; the first L0 of a replica is TXID 1
//!   and a full image. Whenever continuity with the last stored L0 cannot be proven (new
//!   generation, a shadow file gone, restart without a matching L0) the next L0 is a full image
//!   (min = max = N, every page).
//! - The cursor (last TXID, the shadow position it covers, its timestamp) advances only after
//!   the file is stored; on any error it is forgotten and recovered from storage.
//! - Where the counter lives across restarts: in the replica itself (max TXID over all levels).
//!   The shadow position is proven from the newest L0's WAL salts, offset and size matching a
//!   shadow WAL file of the current generation. Litestream v0.5 keeps its counter in its meta
//!   directory (`<meta>/ltx/0/`): L0 files it left there past the replica are uploaded before
//!   the cursor is chosen and the directory is then removed (`adopt`).
//! - Header timestamps never go backwards in TXID order and are never before the capture of the
//!   newest transaction they hold; storage timestamps equal them (`put_ltx`).
//! - Staging files live in `<meta>/walstream-ltx/` and are removed after upload or failure;
//!   whatever a crash left there is removed when the cursor is recovered.
//! - An idle database makes no storage request: compaction, L0 retention and snapshots skip
//!   when what this process knows of each level ([`Known`], from its own listings and uploads;
//!   it is the replica's only writer) says there is nothing to do.

mod adopt;
mod jobs;
pub mod plan;
#[cfg(test)]
mod replica_tests;
mod run;
pub mod stage;
mod sync;
#[cfg(test)]
mod tests;
mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::config::V05Settings;
use crate::db::Pos;

/// Directory under the meta path where LTX files are staged before upload.
pub const STAGING_DIR: &str = "walstream-ltx";

/// Where the writer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Highest TXID stored (0: the replica is empty).
    pub txid: u64,
    /// Shadow WAL position that TXID covers (`None`: the next L0 must be a full image).
    pub pos: Option<Pos>,
    /// Header timestamp (ms) of TXID.
    pub ts_ms: i64,
}

/// LTX state of a replica writing the v0.5 layout.
pub struct LtxWriter {
    pub(super) settings: Arc<V05Settings>,
    /// `None`: unknown, recover from storage. Held for a whole sync or snapshot.
    pub(super) cursor: Mutex<Option<Cursor>>,
    /// Serializes compactions and retention (they list and delete the same levels).
    pub(super) jobs: Mutex<()>,
    pub(super) staging: PathBuf,
    /// What this process knows of the replica, so idle jobs skip without a request.
    pub(super) known: std::sync::Mutex<Known>,
}

/// The highest TXID stored per level (`None` until listed or written), and where L0 and
/// snapshot retention last found nothing that could become deletable without a new file.
#[derive(Debug, Default)]
pub(super) struct Known {
    pub level_max: [Option<u64>; 10],
    pub l0_settled_at: Option<u64>,
    /// After snapshot retention: the newest snapshot's TXID then, and when the next kept
    /// snapshot ages out (`None`: only the newest is left). Nothing to do before that.
    pub snapshots_quiet: Option<(u64, Option<std::time::SystemTime>)>,
    /// The replica holds no v0.3 generation any more (after a move to LTX): retention need not
    /// list `generations/` again.
    pub v3_gone: bool,
}

impl Known {
    /// Records that `level` holds a file ending at `max`.
    pub fn saw(&mut self, level: u8, max: u64) {
        let slot = &mut self.level_max[usize::from(level)];
        *slot = Some(slot.map_or(max, |m| m.max(max)));
    }

    /// True when level `level - 1` holds nothing newer than `level` (nothing to compact).
    pub fn compacted(&self, level: u8) -> bool {
        let (lo, hi) = (
            self.level_max[usize::from(level) - 1],
            self.level_max[usize::from(level)],
        );
        matches!((lo, hi), (Some(lo), Some(hi)) if lo <= hi)
    }
}

impl LtxWriter {
    pub fn new(settings: Arc<V05Settings>, meta_path: &std::path::Path) -> LtxWriter {
        LtxWriter {
            settings,
            cursor: Mutex::new(None),
            jobs: Mutex::new(()),
            staging: meta_path.join(STAGING_DIR),
            known: std::sync::Mutex::new(Known::default()),
        }
    }

    /// The cursor as of the last completed operation.
    pub async fn cursor(&self) -> Option<Cursor> {
        self.cursor.lock().await.clone()
    }

    /// Compaction levels 1..=n with their intervals.
    pub fn levels(&self) -> impl Iterator<Item = (u8, std::time::Duration)> + '_ {
        self.settings
            .levels
            .iter()
            .enumerate()
            .map(|(i, d)| (i as u8 + 1, *d))
    }
}

/// Errors of the LTX writer that are not storage or database errors.
#[derive(Debug, thiserror::Error)]
pub enum LtxWriteError {
    #[error(transparent)]
    Stage(#[from] stage::StageError),
    #[error("{0}")]
    Plan(String),
    #[error("download {name}: {source}")]
    Download {
        name: String,
        source: std::io::Error,
    },
}
