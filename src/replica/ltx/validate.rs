//! Validation of an LTX replica (`validation-interval`, spec §4.6 on Litestream v0.5's layout):
//! the middle part of [`Replica::validate`] for a replica the LTX writer keeps.
//!
//! Steps: with the writer's cursor held (no L0 is stored meanwhile), the restart checkpoint and
//! guard of v0.3 validation give `P = (gen, index, 0)`, whose database file holds exactly the
//! shadow indices `< P.index`; the writer then stores the L0 that ends exactly at `P` (none when
//! the shadow gained no frame since its cursor), so its TXID `T` holds exactly that file. The
//! cursor is released (syncs go on), the file's CRC-64 is streamed under the guard, then `T` is
//! restored with the LTX restore (`restore::ltx_plan` + `restore::ltx_apply`) into the private
//! temporary directory, its CRC-64 streamed and compared.
//!
//! While a snapshot guard of another holder keeps the checkpoint from running, the retries of
//! `restart_snapshot` (every 500 ms, at most 10 s) happen with the cursor held, so uploads wait
//! that long at most; the writer's own snapshots and full images release their guard before the
//! cursor, so they never cause it.
//!
//! Why not wait for the upload loop as v0.3 does: an L0 holds whatever the shadow gained since
//! the previous one, so the one after `P` may also hold frames of index `P.index` written after
//! the checkpoint, and then no TXID holds exactly `P`. Storing up to `P` under the cursor makes
//! the boundary.
//!
//! What must stay true: the cursor is held from before the checkpoint until the L0 ending at `P`
//! is stored (so `T` maps to `P` exactly) and moves only after that L0 is stored (on an error it
//! is forgotten and recovered from storage, as after a failed sync); a cursor without a position
//! or of another generation is left to the upload path (its full image comes with its source
//! check), so a full image is read here only if the shadow files since the cursor were gone,
//! which the replica floor prevents; the jobs lock is held while `T` is listed and restored, so retention cannot delete a
//! planned file under the restore; a mismatch names `T` and both checksums.

use std::path::Path;
use std::time::SystemTime;

use crate::replica::validate::{Progress, TempDir, ValidateError, file_checksum};
use crate::replica::{FilterRefusal, Replica};
use crate::restore::ExecOptions;
use crate::restore::IntegrityCheck;
use crate::restore::ltx_apply::execute_ltx;
use crate::restore::ltx_plan::{LtxTarget, plan};
use crate::restore::ltx_select::list_levels;
use crate::storage::Timestamps;

impl Replica {
    /// One validation of an LTX replica (module steps); `p` records what was computed.
    pub(in crate::replica) async fn ltx_validate_steps(
        &self,
        p: &mut Progress,
    ) -> Result<(), ValidateError> {
        let tmp = TempDir::create()?;
        let (txid, guard) = self.ltx_validation_point(p).await?;
        let db_crc = self.db_checksum(guard).await?;
        p.db_crc = Some(db_crc);

        let out = tmp.path().join("replica");
        self.ltx_restore_txid(txid, &out).await?;
        let replica_crc = file_checksum(out).await?;
        p.replica_crc = Some(replica_crc);
        if db_crc != replica_crc {
            return Err(ValidateError::LtxMismatch {
                txid,
                db: db_crc,
                replica: replica_crc,
            });
        }
        Ok(())
    }

    /// The restart guard at `P` and the TXID that holds exactly `P` (module steps).
    async fn ltx_validation_point(
        &self,
        p: &mut Progress,
    ) -> Result<(u64, crate::db::SnapshotGuard), ValidateError> {
        let ltx = self.ltx().map_err(ValidateError::Writer)?;
        // The L0 below is a write: this process must own the replica path.
        self.ensure_owner(false)
            .await
            .map_err(ValidateError::Writer)?;
        if ltx.cursor().await.and_then(|c| c.pos).is_none() {
            // Unknown or without a position: the upload path recovers it (a full image, with
            // its source check, when continuity is lost).
            self.sync()
                .await
                .filter_refusal()
                .map_err(ValidateError::Writer)?;
        }
        let started = SystemTime::now();
        let mut cursor = ltx.cursor.lock().await;
        let Some(mut cur) = cursor.take() else {
            return Err(ValidateError::NoLtxPosition);
        };
        let Some(from) = cur.pos.clone() else {
            *cursor = Some(cur);
            return Err(ValidateError::NoLtxPosition);
        };
        let guard = match self.restart_snapshot().await {
            Ok(g) => g,
            Err(e) => {
                *cursor = Some(cur);
                return Err(e);
            }
        };
        let pos = guard.pos.clone();
        p.pos = Some(pos.clone());
        if from.generation != pos.generation {
            // A new generation needs a full image: the upload loop's to take.
            *cursor = Some(cur);
            return Err(ValidateError::GenerationChanged);
        }
        match self.ltx_advance(&mut cur, &pos, Some(&guard)).await {
            Ok(()) => {
                *cursor = Some(cur);
                self.ltx_synced(cursor.as_ref(), started);
            }
            Err(e) => return Err(ValidateError::Writer(e)), // the cursor stays forgotten
        }
        let txid = cursor.as_ref().map_or(0, |c| c.txid);
        drop(cursor);
        if txid == 0 {
            return Err(ValidateError::NoLtxPosition);
        }
        p.txid = Some(txid);
        Ok((txid, guard))
    }

    /// Restores TXID `txid` of this replica into `out` (no integrity check: the checksum
    /// comparison is the check), with the jobs lock held.
    async fn ltx_restore_txid(&self, txid: u64, out: &Path) -> Result<(), ValidateError> {
        let ltx = self.ltx().map_err(ValidateError::Writer)?;
        let _jobs = ltx.jobs.lock().await;
        let levels = list_levels(&self.client, Timestamps::Listing).await?;
        let target = LtxTarget {
            txid: Some(txid),
            timestamp: None,
        };
        let files = plan(&levels, &target).map_err(crate::restore::RestoreError::from)?;
        let exec = ExecOptions {
            integrity_check: IntegrityCheck::None,
            progress: false,
            ..ExecOptions::default()
        };
        execute_ltx(&self.client, &files, out, &exec).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::config::V05Settings;
    use crate::replica::test_fixture::{DbFixture, fixture_wrapper};
    use crate::replica::{Replica, ValidationOutcome, ValidationResult};
    use crate::storage::Timestamps;

    fixture_wrapper!(Fixture);

    impl Fixture {
        async fn new() -> Fixture {
            Fixture(DbFixture::new("PRAGMA wal_autocheckpoint=0;").await)
        }

        fn replica(&self) -> Arc<Replica> {
            Replica::with_ltx(
                Arc::clone(&self.db),
                self.cfg.clone(),
                self.client.clone(),
                None,
                Arc::new(V05Settings::default()),
            )
        }

        async fn l0_max(&self) -> u64 {
            let files = self.client.ltx_files(0, Timestamps::Listing).await;
            let files = files.expect("list l0");
            files.iter().map(|f| f.max_txid).max().unwrap_or(0)
        }
    }

    fn assert_ok(result: ValidationResult) -> ValidationResult {
        assert_eq!(
            result.outcome,
            ValidationOutcome::Ok,
            "{:?}",
            result.message
        );
        result
    }

    /// Commits the upload loop has not stored yet when the validation starts: the validation
    /// stores the L0 that ends exactly at its restart checkpoint, restores that TXID and finds
    /// the database file's checksum; commits after it go to the next TXID.
    #[tokio::test]
    async fn validation_stores_the_l0_ending_at_its_checkpoint_and_matches() {
        let mut f = Fixture::new().await;
        let replica = f.replica();
        f.insert(5).await;
        replica.sync().await.expect("round");
        let before = f.l0_max().await;
        assert!(before >= 1);
        // In the shadow WAL, not in the replica.
        f.insert(7).await;

        let result = assert_ok(replica.validate().await);
        let txid = result.txid.expect("an ltx validation names its txid");
        assert_eq!(txid, before + 1, "one L0 up to the checkpoint");
        assert_eq!(f.l0_max().await, txid);
        assert_eq!(result.db_checksum, result.replica_checksum);
        let pos = result.position.expect("position");
        assert_eq!(pos.offset, 0);
        let status = replica.status();
        assert_eq!((status.validations_ok, status.validations_failed), (1, 0));
        assert_eq!(status.ltx_txid, Some(txid));

        // The writer goes on from the validated position; the next validation matches too.
        f.insert(4).await;
        replica.sync().await.expect("round");
        let next = assert_ok(replica.validate().await);
        assert!(next.txid > Some(txid), "{:?}", next.txid);
        let rows = crate::replica::test_fixture::restored_rows(
            &f.client,
            &f.dir.path().join("restored.db"),
        )
        .await;
        assert_eq!(rows, 16);
    }

    /// A replica whose writer has no position yet (nothing stored) is first brought up by a
    /// regular round (its full image), then validated.
    #[tokio::test]
    async fn validation_of_a_replica_without_a_position_starts_it_first() {
        let mut f = Fixture::new().await;
        let replica = f.replica();
        f.insert(3).await;
        let result = assert_ok(replica.validate().await);
        assert!(result.txid >= Some(1), "{:?}", result.txid);
    }

    /// A page changed in a stored file (re-encoded, so it still restores) is a mismatch that
    /// names the TXID and both checksums.
    #[tokio::test]
    async fn altered_page_in_a_stored_file_is_a_mismatch_naming_the_txid() {
        let mut f = Fixture::new().await;
        let replica = f.replica();
        f.insert(5).await;
        replica.sync().await.expect("round");
        // The first L0 is the full image: flip a byte of one of its pages' row data.
        let first = f
            .client
            .ltx_files(0, Timestamps::Listing)
            .await
            .expect("list");
        let first = first.first().expect("an l0").clone();
        let path = f.dir.path().join("replica/ltx/0").join(first.file_name());
        let bytes = std::fs::read(&path).expect("read l0");
        let mut reader = crate::ltx::Reader::new(bytes.as_slice(), "l0").expect("header");
        let header = *reader.header();
        let mut pages = Vec::new();
        while let Some((pgno, data)) = reader.next_page().expect("page") {
            pages.push((pgno, data.to_vec()));
        }
        // A byte inside a row's value (nothing rewrites table `t` before the validation).
        let run = vec![b'v'; 300];
        let (page, at) = pages
            .iter()
            .enumerate()
            .find_map(|(i, (_, d))| {
                d.windows(300)
                    .position(|w| w == run.as_slice())
                    .map(|at| (i, at))
            })
            .expect("a row in the full image");
        pages[page].1[at + 150] = b'w';
        let refs: Vec<(u32, &[u8])> = pages.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        let encoded = crate::ltx::writer::encode_to_vec(header, &refs).expect("encode");
        std::fs::write(&path, encoded).expect("rewrite l0");

        let result = replica.validate().await;
        assert_eq!(
            result.outcome,
            ValidationOutcome::Mismatch,
            "{:?}",
            result.message
        );
        let (db, rep) = (
            result.db_checksum.expect("db"),
            result.replica_checksum.expect("replica"),
        );
        assert_ne!(db, rep);
        let txid = result.txid.expect("txid");
        assert_eq!(
            result.message.as_deref(),
            Some(
                format!(
                    "invalid replica, checksum mismatch at txid {}: db {db:016x}, replica {rep:016x}",
                    crate::ltx::format_txid(txid)
                )
                .as_str()
            )
        );
        assert_eq!(replica.status().validations_failed, 1);
    }
}
