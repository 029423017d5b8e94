//! Unit tests of the LTX writer's planning (page plans, shadow ranges, compaction inputs,
//! retention, schedule) and staging (shadow frames → L0, full images, merges), every staged
//! file decoded back through [`crate::ltx::Reader`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::plan::*;
use super::stage::{self, StageError};
use crate::db::Pos;
use crate::ltx::{FLAG_NO_CHECKSUM, Header, Reader};
use crate::storage::LtxFileInfo;
use crate::wal::{WAL_HEADER_SIZE, WalHeader, frame_size};

const PS: u32 = 512;

fn pos(index: u32, offset: u64) -> Pos {
    Pos {
        generation: "0123456789abcdef".into(),
        index,
        offset,
    }
}

fn file(level: u8, min: u64, max: u64, secs: i64) -> LtxFileInfo {
    LtxFileInfo {
        level,
        min_txid: min,
        max_txid: max,
        size: 1,
        created_at: DateTime::<Utc>::from_timestamp(secs, 0).expect("time"),
    }
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn page(tag: u32) -> Vec<u8> {
    (0..PS).map(|i| (i ^ tag.wrapping_mul(7)) as u8).collect()
}

fn ranges(list: &[(u64, u64, u64)]) -> Vec<(u64, u64, u64)> {
    list.to_vec()
}

fn as_tuples(r: &[ShadowRange]) -> Vec<(u64, u64, u64)> {
    r.iter()
        .map(|r| (u64::from(r.index), r.start, r.end))
        .collect()
}

#[test]
fn page_plan_keeps_the_last_frame_and_cuts_at_the_last_commit() {
    let mut plan = PagePlan::default();
    let loc = |offset| FrameLoc { index: 0, offset };
    plan.add_frame(3, 0, loc(32));
    plan.add_frame(5, 5, loc(100));
    plan.add_frame(3, 0, loc(200));
    plan.add_frame(5, 0, loc(300));
    // A VACUUM shrinks the database to 4 pages: page 5 goes.
    plan.add_frame(1, 4, loc(400));
    let plan = plan.finish(PS);
    assert_eq!(plan.commit, 4);
    let pages: Vec<(u32, u64)> = plan.pages.iter().map(|(p, l)| (*p, l.offset)).collect();
    assert_eq!(pages, vec![(1, 400), (3, 200)]);
    // The lock page is never kept.
    let lock = crate::ltx::lock_page(PS);
    let mut big = PagePlan::default();
    big.add_frame(lock, 0, loc(32));
    big.add_frame(lock + 1, lock + 1, loc(64));
    let big = big.finish(PS);
    assert_eq!(
        big.pages.keys().copied().collect::<Vec<_>>(),
        vec![lock + 1]
    );
}

#[test]
fn shadow_ranges_span_indices_and_detect_lost_continuity() {
    let len = |i: u32| [Some(1000u64), Some(2000), None][i as usize];
    // Within one index; an offset 0 start skips the WAL header.
    let r = shadow_ranges(&pos(0, 0), &pos(0, 600), len).expect("same index");
    assert_eq!(as_tuples(&r), ranges(&[(0, 32, 600)]));
    // Across indices: the rest of the old one, whole middle ones, the start of the new one.
    let r = shadow_ranges(&pos(0, 600), &pos(1, 32), len).expect("next index");
    assert_eq!(as_tuples(&r), ranges(&[(0, 600, 1000)]));
    let r = shadow_ranges(&pos(0, 600), &pos(1, 500), len).expect("next index");
    assert_eq!(as_tuples(&r), ranges(&[(0, 600, 1000), (1, 32, 500)]));
    // Not past the cursor: nothing to do, not a continuity loss.
    assert_eq!(shadow_ranges(&pos(1, 500), &pos(1, 300), len), Some(vec![]));
    assert_eq!(shadow_ranges(&pos(1, 500), &pos(1, 500), len), Some(vec![]));
    // A shadow file gone, or another generation: a full image is needed.
    assert_eq!(shadow_ranges(&pos(2, 40), &pos(3, 100), len), None);
    let other = Pos {
        generation: "fedcba9876543210".into(),
        ..pos(0, 600)
    };
    assert_eq!(shadow_ranges(&pos(0, 32), &other, len), None);
}

#[test]
fn wal_fields_end_at_the_target_position() {
    let within = [ShadowRange {
        index: 2,
        start: 4152,
        end: 8272,
    }];
    assert_eq!(wal_fields(&within, &pos(2, 8272)), (4152, 4120));
    // A run that started in an earlier index: offset 32 of the new one.
    let across = [
        ShadowRange {
            index: 1,
            start: 600,
            end: 1000,
        },
        ShadowRange {
            index: 2,
            start: 32,
            end: 4152,
        },
    ];
    assert_eq!(wal_fields(&across, &pos(2, 4152)), (32, 4120));
    // Ends exactly at an index's start: offset 32, size 0 (never offset 0, §7.3).
    assert_eq!(wal_fields(&across[..1], &pos(2, 32)), (32, 0));
}

#[test]
fn compaction_takes_contiguous_files_after_the_target() {
    let lower = [file(0, 1, 1, 10), file(0, 2, 2, 11), file(0, 3, 3, 12)];
    let got = compaction_inputs(&lower, 1).expect("ok").expect("inputs");
    assert_eq!(
        got.iter().map(|f| f.min_txid).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(compaction_inputs(&lower, 3).expect("ok"), None);
    let gap = [file(0, 1, 1, 10), file(0, 3, 3, 12)];
    let err = compaction_inputs(&gap, 0).expect_err("gap");
    assert!(err.contains("does not follow"), "{err}");
    let overlap = [file(1, 1, 5, 10), file(1, 3, 4, 12)];
    assert!(check_contiguous(&overlap).is_err());
    // Overlapping but extending (a full image after a compaction) is contiguous.
    assert!(check_contiguous(&[file(1, 1, 5, 1), file(1, 3, 7, 2)]).is_ok());
    // The merge's timestamp is its newest input's, not the last one's when clocks disagree.
    let ts = merged_timestamp(&[file(0, 1, 1, 30), file(0, 2, 2, 20)]);
    assert_eq!(ts.timestamp(), 30);
}

#[test]
fn boundaries_are_wall_clock_multiples() {
    let min = Duration::from_secs(60);
    assert_eq!(last_boundary(at(125), min), at(120));
    assert_eq!(next_boundary(at(125), min), at(180));
    assert_eq!(next_boundary(at(120), min), at(180));
    let day = Duration::from_secs(86_400);
    assert_eq!(next_boundary(at(86_400 * 3 + 5), day), at(86_400 * 4));
}

#[test]
fn snapshot_retention_keeps_the_newest_and_floors_the_levels() {
    let snaps = [
        file(9, 1, 10, 100),
        file(9, 1, 20, 200),
        file(9, 1, 30, 900),
    ];
    let l1 = vec![
        file(1, 1, 9, 90),
        file(1, 10, 19, 190),
        file(1, 20, 29, 290),
    ];
    let l2 = vec![file(2, 1, 15, 150)];
    // Retention 500 s at t=1000: snapshots before 500 go; the floor is 20.
    let doomed = snapshot_retention(&snaps, &[l1.clone(), l2.clone()], secs(500), at(1000));
    let names: Vec<(u8, u64, u64)> = doomed
        .iter()
        .map(|f| (f.level, f.min_txid, f.max_txid))
        .collect();
    assert_eq!(names, vec![(9, 1, 10), (9, 1, 20), (1, 1, 9), (1, 10, 19)]);
    // L2's only file is its newest: kept although below the floor.
    // Nothing old enough: nothing deleted; the newest snapshot is kept however old.
    assert!(snapshot_retention(&snaps, std::slice::from_ref(&l1), secs(5000), at(1000)).is_empty());
    let alone = snapshot_retention(&snaps[2..], &[l1], secs(1), at(10_000));
    assert!(alone.is_empty());
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn l0_retention_deletes_compacted_old_files_oldest_first() {
    let l0 = [
        file(0, 1, 1, 100),
        file(0, 2, 2, 100),
        file(0, 3, 3, 950),
        file(0, 4, 4, 100),
        file(0, 5, 5, 100),
    ];
    // L1 holds up to 4; at t=1000 with 100 s retention: 1 and 2 go, 3 is too new and stops
    // the scan (no hole), 5 is newest.
    let doomed = l0_retention(&l0, Some(4), secs(100), at(1000));
    assert_eq!(
        doomed.iter().map(|f| f.max_txid).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // Not yet compacted, or disabled: nothing.
    assert!(l0_retention(&l0, None, secs(100), at(1000)).is_empty());
    assert!(l0_retention(&l0, Some(1), secs(100), at(1000)).len() == 1);
    assert!(l0_retention(&l0, Some(9), Duration::ZERO, at(1000)).is_empty());
    // The newest L0 stays even when compacted and old.
    let old = [file(0, 1, 1, 1), file(0, 2, 2, 1)];
    assert_eq!(l0_retention(&old, Some(2), secs(1), at(1000)).len(), 1);
}

/// A shadow WAL at `path` with `frames` (pgno, commit, page tag); returns each frame's offset.
fn write_shadow(path: &Path, salts: (u32, u32), frames: &[(u32, u32, u32)]) -> Vec<u64> {
    let h = WalHeader::new(false, PS, 0, salts);
    let mut bytes = h.encode().to_vec();
    let mut seed = h.checksum();
    let mut offsets = Vec::new();
    for &(pgno, commit, tag) in frames {
        offsets.push(bytes.len() as u64);
        let (frame, next) = h.encode_frame(seed, pgno, commit, &page(tag));
        seed = next;
        bytes.extend_from_slice(&frame);
    }
    std::fs::write(path, bytes).expect("write shadow");
    offsets
}

fn decode(path: &Path) -> (Header, BTreeMap<u32, Vec<u8>>) {
    let f = std::fs::File::open(path).expect("open staged");
    let mut r = Reader::new(f, "staged").expect("header");
    let mut pages = BTreeMap::new();
    while let Some((pgno, data)) = r.next_page().expect("page") {
        pages.insert(pgno, data.to_vec());
    }
    let (h, _) = r.finish().expect("valid file");
    (h, pages)
}

fn header(min: u64, max: u64, commit: u32) -> Header {
    Header {
        flags: FLAG_NO_CHECKSUM,
        page_size: PS,
        commit,
        min_txid: min,
        max_txid: max,
        timestamp_ms: 1_700_000_000_000,
        ..Header::default()
    }
}

#[test]
fn frames_become_an_l0_with_the_newest_page_versions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    let shadow = move |i: u32| dir.join(format!("{i:08x}.wal"));
    // Index 0: tx1 = pages 1,2 (commit 2); tx2 = page 2 again, page 3 (commit 3).
    write_shadow(
        &shadow(0),
        (7, 9),
        &[(1, 0, 10), (2, 2, 20), (2, 0, 21), (3, 3, 30)],
    );
    // Index 1: tx3 = page 1 (commit 3).
    write_shadow(&shadow(1), (8, 9), &[(1, 3, 11)]);
    let fs = frame_size(PS);
    let start = WAL_HEADER_SIZE as u64;
    // The cursor covers tx1; the run is tx2 and tx3.
    let from = pos(0, start + 2 * fs);
    let to = pos(1, start + fs);
    let lens = |i: u32| std::fs::metadata(shadow(i)).ok().map(|m| m.len());
    let rs = shadow_ranges(&from, &to, lens).expect("continuous");
    let mut plan = PagePlan::default();
    stage::scan_frames(&mut plan, &rs, PS, &shadow).expect("scan");
    let plan = plan.finish(PS);
    assert_eq!(plan.commit, 3);
    assert_eq!(stage::shadow_salts(&shadow(1)).expect("salts"), (8, 9));
    let out = tmp.path().join("stage/0-l0.ltx");
    let size = stage::stage_delta(&out, header(2, 2, 3), &plan, &shadow).expect("stage");
    assert_eq!(size, std::fs::metadata(&out).expect("staged").len());
    let (h, pages) = decode(&out);
    assert_eq!(h.commit, 3);
    assert_eq!(pages.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(pages[&1], page(11));
    assert_eq!(pages[&2], page(21));
    assert_eq!(pages[&3], page(30));
}

#[test]
fn small_l0s_are_built_in_memory_as_staged_and_large_ones_are_staged() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    let shadow = move |i: u32| dir.join(format!("{i:08x}.wal"));
    let fs = frame_size(PS);
    let start = WAL_HEADER_SIZE as u64;
    let scan = |frames: usize| {
        let ranges = [ShadowRange {
            index: 0,
            start,
            end: start + frames as u64 * fs,
        }];
        let mut files = stage::ShadowFiles::new(&shadow);
        let mut plan = PagePlan::default();
        stage::scan_frames_in(&mut plan, &ranges, PS, &mut files).expect("scan");
        assert_eq!(files.salts(0).expect("salts"), (7, 9));
        (plan.finish(PS), files)
    };

    write_shadow(&shadow(0), (7, 9), &[(1, 0, 10), (2, 2, 20), (1, 2, 11)]);
    let (plan, mut files) = scan(3);
    let out = tmp.path().join("stage/0-small.ltx");
    let built = stage::encode_delta(&out, header(2, 2, 2), &plan, &mut files).expect("encode");
    let stage::Encoded::Memory(bytes) = built else {
        panic!("a two-page L0 is staged: {built:?}");
    };
    assert!(!out.exists(), "nothing staged for an L0 built in memory");
    stage::stage_delta(&out, header(2, 2, 2), &plan, &shadow).expect("stage");
    assert_eq!(
        std::fs::read(&out).expect("staged"),
        bytes,
        "same bytes either way"
    );
    let (_, pages) = decode(&out);
    assert_eq!(pages[&1], page(11));
    assert_eq!(pages[&2], page(20));

    // Past IN_MEMORY_MAX of pages: staged in the file, like before.
    let n = u32::try_from(stage::IN_MEMORY_MAX / u64::from(PS)).expect("pages") + 1;
    let frames: Vec<(u32, u32, u32)> = (1..=n)
        .map(|p| (p, if p == n { n } else { 0 }, p))
        .collect();
    write_shadow(&shadow(0), (7, 9), &frames);
    let (plan, mut files) = scan(frames.len());
    let out = tmp.path().join("stage/0-large.ltx");
    let built = stage::encode_delta(&out, header(3, 3, n), &plan, &mut files).expect("encode");
    let stage::Encoded::File(size) = built else {
        panic!("a {n}-page L0 is built in memory");
    };
    assert_eq!(size, std::fs::metadata(&out).expect("staged").len());
    let (h, pages) = decode(&out);
    assert_eq!((h.commit, pages.len()), (n, n as usize));
    assert_eq!(pages[&n], page(n));
}

#[test]
fn full_image_overlays_frames_on_the_database_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    let shadow = move |i: u32| dir.join(format!("{i:08x}.wal"));
    // The database file holds pages 1..=3; the WAL then rewrites page 2 and adds page 4.
    let db = tmp.path().join("app.db");
    let file_bytes: Vec<u8> = [1, 2, 3].iter().flat_map(|&t| page(t)).collect();
    std::fs::write(&db, file_bytes).expect("db");
    write_shadow(&shadow(0), (1, 2), &[(2, 0, 22), (4, 4, 44)]);
    let fs = frame_size(PS);
    let rs = [ShadowRange {
        index: 0,
        start: WAL_HEADER_SIZE as u64,
        end: WAL_HEADER_SIZE as u64 + 2 * fs,
    }];
    let mut plan = PagePlan::default();
    stage::scan_frames(&mut plan, &rs, PS, &shadow).expect("scan");
    let plan = plan.finish(PS);
    let db_file = std::fs::File::open(&db).expect("open db");
    let out = tmp.path().join("stage/image.ltx");
    stage::stage_image(&out, header(1, 5, 4), &plan, &shadow, &db_file).expect("image");
    let (_, pages) = decode(&out);
    let want: BTreeMap<u32, Vec<u8>> = [(1, page(1)), (2, page(22)), (3, page(3)), (4, page(44))]
        .into_iter()
        .collect();
    assert_eq!(pages, want);
    // A page in neither place is an error, and no staged file is left behind.
    let bad = tmp.path().join("stage/bad.ltx");
    let err = stage::stage_image(&bad, header(1, 5, 6), &plan, &shadow, &db_file)
        .expect_err("page 5 missing");
    assert!(matches!(err, StageError::MissingPage(5)), "{err}");
    assert!(!bad.exists());
}

fn staged_ltx(dir: &Path, name: &str, h: Header, pages: &[(u32, u32)]) -> PathBuf {
    let data: Vec<(u32, Vec<u8>)> = pages.iter().map(|&(p, t)| (p, page(t))).collect();
    let refs: Vec<(u32, &[u8])> = data.iter().map(|(p, d)| (*p, d.as_slice())).collect();
    let bytes = crate::ltx::writer::encode_to_vec(h, &refs).expect("encode");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write input");
    path
}

#[test]
fn merge_keeps_the_newest_page_and_the_last_commit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let a = staged_ltx(d, "a", header(1, 1, 4), &[(1, 1), (2, 2), (3, 3), (4, 4)]);
    let b = staged_ltx(d, "b", header(2, 2, 5), &[(2, 20), (5, 50)]);
    // The last input shrank the database to 3 pages (pages 4 and 5 go).
    let c = staged_ltx(d, "c", header(3, 4, 3), &[(1, 100)]);
    let out = d.join("out/merged.ltx");
    let (h, size) = stage::stage_merge(&out, (1, 4), 1234, &[a, b, c]).expect("merge");
    assert_eq!(
        (h.min_txid, h.max_txid, h.commit, h.timestamp_ms),
        (1, 4, 3, 1234)
    );
    assert_eq!(size, std::fs::metadata(&out).expect("out").len());
    let (got_h, pages) = decode(&out);
    assert_eq!(got_h, h);
    let want: BTreeMap<u32, Vec<u8>> = [(1, page(100)), (2, page(20)), (3, page(3))]
        .into_iter()
        .collect();
    assert_eq!(pages, want);
    // Inputs of different page sizes are refused.
    let other = Header {
        page_size: 1024,
        ..header(5, 5, 1)
    };
    let data = vec![0u8; 1024];
    let bytes = crate::ltx::writer::encode_to_vec(other, &[(1, &data)]).expect("encode");
    let odd = d.join("odd");
    std::fs::write(&odd, bytes).expect("write");
    let a2 = staged_ltx(d, "a2", header(1, 1, 1), &[(1, 1)]);
    let err = stage::stage_merge(&d.join("out/x.ltx"), (1, 5), 0, &[a2, odd]).expect_err("sizes");
    assert!(matches!(err, StageError::PageSizes(_)), "{err}");
}

#[test]
fn v3_generations_retire_only_past_retention_and_with_a_snapshot() {
    let t = |s: i64| Some(DateTime::<Utc>::from_timestamp(s, 0).expect("time"));
    let gens = vec![
        ("old".to_string(), t(100)),
        ("young".to_string(), t(900)),
        ("empty".to_string(), None),
    ];
    assert_eq!(
        retired_v3_generations(&gens, true, secs(500), at(1000)),
        vec!["old".to_string(), "empty".to_string()]
    );
    assert!(retired_v3_generations(&gens, false, secs(500), at(1000)).is_empty());
    assert!(retired_v3_generations(&gens[..2], true, secs(5000), at(1000)).is_empty());
}

#[test]
fn verify_level_reports_overlaps_and_gaps_a_restore_would_need() {
    let l = |ranges: &[(u64, u64)]| -> Vec<LtxFileInfo> {
        ranges.iter().map(|&(a, b)| file(2, a, b, 0)).collect()
    };
    assert_eq!(
        verify_level(&l(&[(1, 10), (11, 20), (21, 21)]), None),
        Ok(())
    );
    let overlap = verify_level(&l(&[(1, 10), (10, 20)]), None).expect_err("overlap");
    assert!(overlap.contains("overlap"), "{overlap}");
    // A gap (11..=14 missing): reported without a snapshot past it, or with one below it.
    let gap = l(&[(1, 10), (15, 20)]);
    assert!(verify_level(&gap, None).expect_err("gap").contains("gap"));
    assert!(verify_level(&gap, Some(13)).is_err());
    // The oldest kept snapshot holds TXID 14: no restore needs 11..=14.
    assert_eq!(verify_level(&gap, Some(14)), Ok(()));
    assert_eq!(verify_level(&gap, Some(30)), Ok(()));
    assert_eq!(verify_level(&l(&[]), None), Ok(()));
}
