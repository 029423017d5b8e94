//! The LTX (Litestream v0.5) side of the crash suite (`--ltx`, `tests/crash_ltx.rs`): the
//! v0.5-shaped config a round runs with, what the writer had staged when it was killed, the
//! replica's listing per level, its gap/overlap rules ([`check_levels`], spec
//! `litestream-v0.5-format.md` §4) and the `-txid` targets a correct restore must be able to
//! reach. The levels drawn per round change between restarts too (levels a round does not
//! configure are neither compacted nor pruned by it), as an operator editing `levels` would.
//!
//! Must stay true: everything here reads the replica and the staging directory only (no
//! walstream code decides what is reachable or clean): reachability is computed from the listed
//! TXID ranges alone, so a restore that cannot reach a target the files allow is a finding.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use walstream::storage::{ReplicaClient, SNAPSHOT_LEVEL, Timestamps};

use super::rng::Rng;
use super::walstream::{Backend, TOKEN, db_pacing};

/// Levels 0..=9 (L9: snapshots).
pub const LEVELS: usize = SNAPSHOT_LEVEL as usize + 1;

/// Per level (index = level), the files' `(min, max)` TXID ranges, sorted.
pub type Listing = Vec<Vec<(u64, u64)>>;

/// The config of one LTX round: the global v0.5 keys (compaction `levels`, `snapshot`,
/// `l0-retention`) drawn short so that compaction, snapshots and retention all run within a
/// round (each fires once at start and then on wall-clock multiples), then each database with
/// the singular `replica:` key and the same per-database pacing draws as v0.3 rounds.
pub fn config(dbs: &[(&Path, &Backend)], rng: &mut Rng) -> String {
    let levels = rng.pick(&[
        "  - interval: 1s\n  - interval: 3s\n",
        "  - interval: 500ms\n  - interval: 2s\n  - interval: 5s\n",
        "  - interval: 1s\n",
    ]);
    let snapshot = rng.pick(&["2s", "4s"]);
    let retention = rng.pick(&["3s", "6s"]);
    let l0_retention = rng.pick(&["500ms", "1s", "3s"]);
    let mut text = format!(
        "addr: \"127.0.0.1:0\"\nhttp-token: \"{TOKEN}\"\nlevels:\n{levels}\
         snapshot:\n  interval: {snapshot}\n  retention: {retention}\n\
         l0-retention: {l0_retention}\nl0-retention-check-interval: 500ms\ndbs:\n"
    );
    for (db, backend) in dbs {
        let (pacing, sync) = db_pacing(rng);
        text.push_str(&format!(
            "  - path: \"{}\"\n{pacing}    replica:\n{}      sync-interval: {sync}\n",
            db.display(),
            backend.replica_yaml(6)
        ));
    }
    text
}

/// The config the real Litestream v0.5.17 restores one database's replica with.
pub fn litestream_config(db: &Path, backend: &Backend) -> String {
    format!(
        "dbs:\n  - path: \"{}\"\n    replica:\n{}",
        db.display(),
        backend.replica_yaml(6)
    )
}

/// Where walstream stages the LTX files of `db` (`<meta>/walstream-ltx/`).
pub fn staging_dir(db: &Path) -> PathBuf {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    db.with_file_name(format!(".{name}-litestream"))
        .join("walstream-ltx")
}

/// What the writer had staged and not yet stored: staging files are `<level>-MIN-MAX.ltx` while
/// a file is written and uploaded, and `in-<level>-…` while a compaction downloads its inputs;
/// each is removed once the upload finished. Read right after a SIGKILL, it says what the kill
/// cut short.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Staged {
    pub l0: bool,
    pub compaction: bool,
    pub snapshot: bool,
}

/// The names in `db`'s staging directory now.
pub fn staged_names(db: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(staging_dir(db)) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

impl Staged {
    /// What is staged in `db`'s directory now, leaving out the names in `before` (what an
    /// earlier kill left there and the writer has not cleared yet).
    pub fn scan(db: &Path, before: &BTreeSet<String>) -> Staged {
        let mut s = Staged::default();
        for name in staged_names(db).difference(before) {
            match name.split('-').next() {
                Some("0") => s.l0 = true,
                Some("9") => s.snapshot = true,
                Some("in") => s.compaction = true,
                Some(l) if l.parse::<u8>().is_ok_and(|l| (1..=8).contains(&l)) => {
                    s.compaction = true
                }
                _ => {}
            }
        }
        s
    }

    /// Both together.
    pub fn or(self, other: Staged) -> Staged {
        Staged {
            l0: self.l0 || other.l0,
            compaction: self.compaction || other.compaction,
            snapshot: self.snapshot || other.snapshot,
        }
    }

    pub fn any(&self) -> bool {
        self.l0 || self.compaction || self.snapshot
    }
}

/// Every level's files (storage listing).
pub async fn list(client: &ReplicaClient) -> Result<Listing, String> {
    let mut out = Vec::with_capacity(LEVELS);
    for level in 0..=SNAPSHOT_LEVEL {
        let files = client
            .ltx_files(level, Timestamps::Listing)
            .await
            .map_err(|e| format!("list level {level}: {e}"))?;
        let mut ranges: Vec<(u64, u64)> = files.iter().map(|f| (f.min_txid, f.max_txid)).collect();
        ranges.sort_unstable();
        out.push(ranges);
    }
    Ok(out)
}

/// The highest TXID stored in any level (0: empty).
pub fn top(listing: &Listing) -> u64 {
    listing.iter().flatten().map(|f| f.1).max().unwrap_or(0)
}

/// What [`check_levels`] found.
#[derive(Debug, Default)]
pub struct LevelCheck {
    /// Violations of the layout's rules.
    pub problems: Vec<String>,
    /// Gaps in L2..L8 that lie below the oldest L9 snapshot (left by snapshot retention, below).
    pub retention_gaps: usize,
}

/// The layout's rules (spec §4): in each level 0..=8 every file starts one past the previous
/// one's end, except that in L2..L8 a gap may lie below the oldest snapshot; every L9 snapshot
/// starts at TXID 1; L0 holds the highest TXID (every TXID is an L0 first); no file ends before
/// it starts.
///
/// The exception is v0.5.17's retention: it deletes the files of L1..Ln below the floor (the
/// newest deleted snapshot's TXID) but a level's newest, so level k-1's files between level k's
/// newest and the floor can go before level k compacts them, and level k's next file starts past
/// them. Those TXIDs are all below the floor, hence below every snapshot kept (each is newer).
/// L0 and L1 have no such gap: L0 retention stops at the first file not yet in L1, and L1
/// compacts L0 only.
pub fn check_levels(listing: &Listing) -> LevelCheck {
    let mut out = LevelCheck::default();
    let oldest_snapshot = listing[usize::from(SNAPSHOT_LEVEL)]
        .iter()
        .map(|f| f.1)
        .min();
    for (level, files) in listing.iter().enumerate() {
        for f in files.iter().filter(|f| f.0 == 0 || f.0 > f.1) {
            out.problems
                .push(format!("L{level}: bad range {}", range(*f)));
        }
        if level == usize::from(SNAPSHOT_LEVEL) {
            for f in files.iter().filter(|f| f.0 != 1) {
                out.problems
                    .push(format!("L9: snapshot {} does not start at 1", range(*f)));
            }
            continue;
        }
        for pair in files.windows(2) {
            let (prev, next) = (pair[0], pair[1]);
            if next.0 == prev.1 + 1 {
                continue;
            }
            if next.0 > prev.1 + 1 && level >= 2 && oldest_snapshot.is_some_and(|s| next.0 <= s) {
                out.retention_gaps += 1;
                continue;
            }
            let what = if next.0 <= prev.1 {
                "an overlap"
            } else {
                "a gap"
            };
            out.problems.push(format!(
                "L{level}: {} then {}: {what} (oldest snapshot ends at {oldest_snapshot:?})",
                range(prev),
                range(next)
            ));
        }
    }
    let l0_top = listing[0].last().map(|f| f.1);
    let highest = top(listing);
    if highest > 0 && l0_top != Some(highest) {
        out.problems.push(format!(
            "L0 ends at {l0_top:?} but TXID {highest} is stored (in another level)"
        ));
    }
    out
}

/// The TXIDs a restore can reach exactly from these files, ascending: starting from the empty
/// database (TXID 0), a file `min..=max` of any level applies on a state `cur` with
/// `min <= cur + 1 <= max` (a compacted file may repeat TXIDs already applied) and leads to
/// `max`. L9 snapshots (`1..=max`) are such files too.
pub fn reachable_ends(listing: &Listing) -> Vec<u64> {
    let mut files: Vec<(u64, u64)> = listing.iter().flatten().copied().collect();
    files.sort_unstable_by_key(|f| (f.1, f.0));
    let mut reached = BTreeSet::from([0u64]);
    for (min, max) in files {
        // Every state below `max` is decided by files ending before it.
        if min >= 1 && reached.range(min - 1..max).next().is_some() {
            reached.insert(max);
        }
    }
    reached.into_iter().filter(|&t| t > 0).collect()
}

/// `-txid`'s format: 16 hex digits.
pub fn txid_hex(txid: u64) -> String {
    format!("{txid:016x}")
}

/// Files per level, for the summary.
pub fn counts(listing: &Listing) -> [usize; LEVELS] {
    let mut out = [0; LEVELS];
    for (i, files) in listing.iter().enumerate().take(LEVELS) {
        out[i] = files.len();
    }
    out
}

fn range((min, max): (u64, u64)) -> String {
    format!("{}-{}", txid_hex(min), txid_hex(max))
}

/// Unit checks of the pure rules above, run by [`self_test`] at the start of every LTX run (a
/// `harness = false` binary has no `#[test]`s): a checker that cannot fail would prove nothing.
pub fn self_test() -> Result<(), String> {
    let clean: Listing = {
        let mut l = vec![Vec::new(); LEVELS];
        l[0] = vec![(5, 5), (6, 6), (7, 7)];
        l[1] = vec![(1, 3), (4, 6)];
        l[9] = vec![(1, 4)];
        l
    };
    let p = check_levels(&clean).problems;
    if !p.is_empty() {
        return Err(format!("clean listing reported: {p:?}"));
    }
    if reachable_ends(&clean) != vec![3, 4, 5, 6, 7] {
        return Err(format!(
            "reachable ends of a clean listing: {:?}",
            reachable_ends(&clean)
        ));
    }
    let mut gap = clean.clone();
    gap[1] = vec![(1, 3), (5, 6)];
    if check_levels(&gap).problems.len() != 1 {
        return Err("a gap in L1 not reported".into());
    }
    // In L2 a gap below the oldest snapshot (4) is retention's; above it, a finding.
    let mut l2 = clean.clone();
    l2[2] = vec![(1, 2), (4, 6)];
    let c = check_levels(&l2);
    if !c.problems.is_empty() || c.retention_gaps != 1 {
        return Err(format!("a retention gap in L2 misjudged: {c:?}"));
    }
    l2[2] = vec![(1, 2), (6, 6)];
    if check_levels(&l2).problems.len() != 1 {
        return Err("a gap in L2 above the oldest snapshot not reported".into());
    }
    let mut overlap = clean.clone();
    overlap[0] = vec![(5, 5), (5, 6), (7, 7)];
    if check_levels(&overlap).problems.is_empty() {
        return Err("an overlap in L0 not reported".into());
    }
    let mut snap = clean.clone();
    snap[9] = vec![(2, 4)];
    if check_levels(&snap).problems.is_empty() {
        return Err("an L9 snapshot not starting at 1 not reported".into());
    }
    let mut short_l0 = clean.clone();
    short_l0[0] = vec![(5, 5)];
    if check_levels(&short_l0).problems.is_empty() {
        return Err("L0 below the highest TXID not reported".into());
    }
    // Without the snapshot and L1's first file, nothing before 4 is reachable and 4..6 only
    // through a file that starts at 4 (which needs 3).
    let mut hole = vec![Vec::new(); LEVELS];
    hole[0] = vec![(5, 5), (6, 6)];
    hole[1] = vec![(4, 6)];
    if !reachable_ends(&hole).is_empty() {
        return Err(format!(
            "unreachable ends reported: {:?}",
            reachable_ends(&hole)
        ));
    }
    Ok(())
}
