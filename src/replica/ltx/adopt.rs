//! Taking over Litestream v0.5's local state (spec §7 hand-over): `litestream replicate` v0.5
//! writes every L0 file into `<meta>/ltx/0/` first and uploads it afterwards, so a Litestream
//! that was stopped between the two leaves L0 files the replica lacks (an L9 snapshot, which
//! Litestream reads from the database, may even be past them). Its own restart uploads them after
//! the replica's newest L0; walstream does the same when it recovers its cursor, then removes
//! `<meta>/ltx/`.
//!
//! What must stay true:
//! - only a chain continuing the replica's L0 level is uploaded: the first file starts at its
//!   newest TXID + 1 and each next one at the previous one's end + 1, every file names the TXIDs
//!   its header holds and reads back whole (page checksums, trailer); the chain stops at the
//!   first file that is not so (what it held is still in the WAL or the database file, and the
//!   next L0 or a full image takes it from there);
//! - files are uploaded in TXID order with their own header timestamps, before the cursor is
//!   chosen, so the newest of them is the L0 the cursor continues from;
//! - afterwards `<meta>/ltx/` is removed: walstream's own L0 files make it stale, and a Litestream
//!   started later finds no local state and fetches the replica's newest L0 (as it does whenever
//!   its local state is behind the replica), instead of trusting files another writer's TXIDs
//!   have since replaced.

use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::sync::join_error;
use crate::ltx::reader::Reader;
use crate::ltx::{Header, format_txid, parse_file_name};
use crate::replica::{Replica, ReplicaError};
use crate::storage::LtxFileInfo;

/// Litestream v0.5's local LTX directory under a database's meta path.
pub const LITESTREAM_LTX_DIR: &str = "ltx";

/// A local L0 file that may continue the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LocalL0 {
    pub path: PathBuf,
    pub min_txid: u64,
    pub max_txid: u64,
}

/// The local L0 files (by name) that continue `replica_max` without a gap, in TXID order. Files
/// at or below `replica_max` are the replica's already; a gap ends the chain.
pub(super) fn continuing_chain(mut files: Vec<LocalL0>, replica_max: u64) -> Vec<LocalL0> {
    files.retain(|f| f.max_txid > replica_max && f.min_txid <= f.max_txid);
    files.sort_by_key(|f| (f.min_txid, f.max_txid));
    let mut chain = Vec::new();
    let mut next = replica_max + 1;
    for f in files {
        if f.min_txid != next {
            break;
        }
        next = f.max_txid + 1;
        chain.push(f);
    }
    chain
}

/// `<dir>/*.ltx` named `<min>-<max>.ltx`; no directory is no files.
fn local_l0_files(dir: &Path) -> std::io::Result<Vec<LocalL0>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some((min_txid, max_txid)) = name.to_str().and_then(parse_file_name) else {
            continue;
        };
        files.push(LocalL0 {
            path: entry.path(),
            min_txid,
            max_txid,
        });
    }
    Ok(files)
}

/// Reads `f` whole; its header when it is an intact LTX file naming the TXIDs of its name.
fn check_local(f: &LocalL0) -> Result<(Header, u64), String> {
    let name = f.path.display().to_string();
    let file = std::fs::File::open(&f.path).map_err(|e| format!("{name}: {e}"))?;
    let size = file.metadata().map_err(|e| format!("{name}: {e}"))?.len();
    let reader = Reader::new(file, &name).map_err(|e| e.to_string())?;
    let (header, _) = reader.finish().map_err(|e| e.to_string())?;
    if (header.min_txid, header.max_txid) != (f.min_txid, f.max_txid) {
        return Err(format!(
            "{name}: header holds {}-{}",
            format_txid(header.min_txid),
            format_txid(header.max_txid)
        ));
    }
    Ok((header, size))
}

impl Replica {
    /// Uploads the L0 files Litestream v0.5 left in `<meta>/ltx/0/` past `l0_max`, the replica's
    /// newest L0 (see the module header), then removes `<meta>/ltx/`. Returns the uploaded files
    /// in TXID order.
    pub(super) async fn ltx_adopt_litestream_local(
        &self,
        l0_max: u64,
    ) -> Result<Vec<LtxFileInfo>, ReplicaError> {
        let root = self.db.meta_path().join(LITESTREAM_LTX_DIR);
        let l0 = root.join("0");
        let (found, root_exists) = {
            let root = root.clone();
            crate::rt::spawn_blocking(move || Ok((local_l0_files(&l0)?, root.exists())))
                .await
                .map_err(join_error)?
                .map_err(ReplicaError::SnapshotFile)?
        };
        if !root_exists {
            return Ok(Vec::new());
        }
        let total = found.len();
        let mut uploaded = Vec::new();
        for f in continuing_chain(found, l0_max) {
            let checked = {
                let f = f.clone();
                crate::rt::spawn_blocking(move || check_local(&f))
                    .await
                    .map_err(join_error)?
            };
            let (header, size) = match checked {
                Ok(h) => h,
                Err(why) => {
                    warn!(db = %self.db_label, replica = %self.name(), file = %f.path.display(), error = %why, "litestream local ltx file not taken over");
                    break;
                }
            };
            // `ltx_upload` removes the file after the upload, as for a staged one.
            uploaded.push(self.ltx_upload(0, &header, &f.path, size).await?);
        }
        let root2 = root.clone();
        crate::rt::spawn_blocking(move || match std::fs::remove_dir_all(&root2) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
        .map_err(join_error)?
        .map_err(ReplicaError::SnapshotFile)?;
        info!(
            db = %self.db_label,
            replica = %self.name(),
            dir = %root.display(),
            local_files = total,
            uploaded = uploaded.len(),
            "litestream v0.5 local state taken over"
        );
        Ok(uploaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(min: u64, max: u64) -> LocalL0 {
        LocalL0 {
            path: PathBuf::from(crate::ltx::file_name(min, max)),
            min_txid: min,
            max_txid: max,
        }
    }

    #[test]
    fn only_files_continuing_the_replica_without_a_gap_are_taken() {
        let files = vec![f(12, 12), f(9, 9), f(10, 10), f(11, 11), f(14, 14)];
        assert_eq!(
            continuing_chain(files.clone(), 9),
            vec![f(10, 10), f(11, 11), f(12, 12)]
        );
        assert_eq!(continuing_chain(files.clone(), 12), Vec::<LocalL0>::new());
        assert_eq!(continuing_chain(files.clone(), 13), vec![f(14, 14)]);
        // A chain must start right after the replica's newest TXID.
        assert_eq!(continuing_chain(files, 7), Vec::<LocalL0>::new());
        assert_eq!(
            continuing_chain(vec![f(1, 1), f(2, 3)], 0),
            vec![f(1, 1), f(2, 3)]
        );
    }
}
