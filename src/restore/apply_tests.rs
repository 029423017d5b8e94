//! Unit tests for the snapshot sink and the WAL index applier, on WALs built frame by frame.

use super::*;

const PS: u32 = 512;
const GEN: &str = "0123456789abcdef";
const KEY0: &str = "generations/0123456789abcdef/wal/00000000_00000000.wal.lz4";

fn header() -> WalHeader {
    WalHeader::new(false, PS, 0, (0x1111, 0x2222))
}

fn page(fill: u8) -> Vec<u8> {
    vec![fill; PS as usize]
}

/// A WAL with the given (pgno, commit, fill) frames.
fn wal(h: &WalHeader, frames: &[(u32, u32, u8)]) -> Vec<u8> {
    let mut out = h.encode().to_vec();
    let mut sum = h.checksum();
    for &(pgno, commit, fill) in frames {
        let (bytes, next) = h.encode_frame(sum, pgno, commit, &page(fill));
        out.extend_from_slice(&bytes);
        sum = next;
    }
    out
}

fn db_file(pages: &[u8]) -> (tempfile::NamedTempFile, File) {
    let tmp = tempfile::NamedTempFile::new().expect("temp file");
    let file = tmp.reopen().expect("reopen");
    for (i, fill) in pages.iter().enumerate() {
        file.write_all_at(&page(*fill), (i as u64) * u64::from(PS))
            .expect("write");
    }
    (tmp, file)
}

fn read_all(tmp: &tempfile::NamedTempFile) -> Vec<u8> {
    std::fs::read(tmp.path()).expect("read back")
}

/// Applies `segments` (offset, bytes) as one index.
fn apply(
    file: &File,
    path: &Path,
    segments: &[(u64, &[u8])],
) -> Result<IndexSummary, RestoreError> {
    let mut a = IndexApplier::new(file, path, GEN, 0, Some(PS));
    for (offset, bytes) in segments {
        a.begin_segment(&format!("seg-{offset}"), *offset)?;
        a.feed(bytes)?;
    }
    a.finish()
}

#[test]
fn applies_committed_frames_and_truncates_to_commit_size() {
    let (tmp, file) = db_file(&[1, 2, 3, 4]);
    let w = wal(&header(), &[(2, 0, 20), (5, 0, 50), (2, 3, 21)]);
    let s = apply(&file, tmp.path(), &[(0, &w)]).expect("apply");
    assert_eq!(s.frames, 3);
    assert_eq!(s.db_pages, Some(3));
    let mut want = page(1);
    want.extend(page(21));
    want.extend(page(3));
    assert_eq!(
        read_all(&tmp),
        want,
        "page 2 newest version, file cut to 3 pages"
    );
}

#[test]
fn split_feeding_gives_identical_result() {
    let w = wal(&header(), &[(1, 0, 9), (3, 0, 8), (4, 4, 7), (2, 4, 6)]);
    let (tmp_a, file_a) = db_file(&[1, 2]);
    apply(&file_a, tmp_a.path(), &[(0, &w)]).expect("whole");
    let (tmp_b, file_b) = db_file(&[1, 2]);
    let mut a = IndexApplier::new(&file_b, tmp_b.path(), GEN, 0, Some(PS));
    a.begin_segment(KEY0, 0).expect("begin");
    for chunk in w.chunks(7) {
        a.feed(chunk).expect("feed");
    }
    a.finish().expect("finish");
    assert_eq!(read_all(&tmp_a), read_all(&tmp_b));
    assert_eq!(
        read_all(&tmp_a).len(),
        4 * PS as usize,
        "grown to the commit size"
    );
}

#[test]
fn segments_must_be_contiguous() {
    let w = wal(&header(), &[(1, 1, 9), (1, 1, 8)]);
    let fs = FRAME_HEADER_SIZE + PS as usize;
    let (first, second) = w.split_at(32 + fs);
    let (tmp, file) = db_file(&[1]);
    let ok = apply(
        &file,
        tmp.path(),
        &[(0, first), (first.len() as u64, second)],
    );
    assert!(ok.is_ok(), "{ok:?}");
    let err = apply(
        &file,
        tmp.path(),
        &[(0, first), (first.len() as u64 + 8, second)],
    )
    .expect_err("gap");
    assert_eq!(
        err.to_string(),
        format!(
            "wal segment gap: seg-{} starts at wal offset {} but the previous segments end at {}",
            first.len() + 8,
            first.len() + 8,
            first.len()
        )
    );
}

#[test]
fn flipped_byte_breaks_the_checksum_chain() {
    let mut w = wal(&header(), &[(1, 0, 9), (2, 2, 8)]);
    let fs = FRAME_HEADER_SIZE + PS as usize;
    w[32 + fs + 100] ^= 1; // inside the second frame's page
    let (tmp, file) = db_file(&[1, 2]);
    let err = apply(&file, tmp.path(), &[(0, &w)]).expect_err("checksum");
    assert!(
        matches!(&err, RestoreError::FrameChecksum { offset, .. } if *offset == (32 + fs) as u64),
        "{err}"
    );
}

#[test]
fn salt_from_another_cycle_is_rejected() {
    let h = header();
    let mut w = wal(&h, &[(1, 1, 9)]);
    let other = WalHeader::new(false, PS, 1, (0x1112, 0x9999));
    let (frame, _) = other.encode_frame(h.checksum(), 2, 2, &page(3));
    w.extend_from_slice(&frame);
    let (tmp, file) = db_file(&[1, 2]);
    let err = apply(&file, tmp.path(), &[(0, &w)]).expect_err("salt");
    assert!(matches!(err, RestoreError::FrameSalt { .. }), "{err}");
}

#[test]
fn index_must_end_on_a_commit_frame() {
    let w = wal(&header(), &[(1, 1, 9), (2, 0, 8)]);
    let (tmp, file) = db_file(&[1, 2]);
    let err = apply(&file, tmp.path(), &[(0, &w)]).expect_err("uncommitted");
    let fs = (FRAME_HEADER_SIZE + PS as usize) as u64;
    assert_eq!(
        err.to_string(),
        format!(
            "wal index {GEN}/00000000 does not end on a commit frame: last frame in seg-0 at wal offset {}",
            32 + fs
        )
    );
}

#[test]
fn partial_frame_is_an_error() {
    let w = wal(&header(), &[(1, 1, 9)]);
    let (tmp, file) = db_file(&[1]);
    let err = apply(&file, tmp.path(), &[(0, &w[..w.len() - 1])]).expect_err("partial");
    assert!(
        matches!(err, RestoreError::TruncatedFrame { offset: 32, .. }),
        "{err}"
    );
}

#[test]
fn header_only_index_changes_nothing() {
    let (tmp, file) = db_file(&[1, 2, 3]);
    let before = read_all(&tmp);
    let w = wal(&header(), &[]);
    let s = apply(&file, tmp.path(), &[(0, &w)]).expect("apply");
    assert_eq!((s.frames, s.db_pages), (0, None));
    assert_eq!(read_all(&tmp), before, "no truncation without a commit");
}

#[test]
fn bad_header_and_page_size_mismatch() {
    let (tmp, file) = db_file(&[1]);
    let mut w = wal(&header(), &[(1, 1, 9)]);
    w[20] ^= 1; // salt-2 changes, header checksum no longer matches
    let err = apply(&file, tmp.path(), &[(0, &w)]).expect_err("header");
    assert!(matches!(err, RestoreError::WalHeader { .. }), "{err}");

    let big = WalHeader::new(false, 1024, 0, (1, 2));
    let w = big.encode().to_vec();
    let err = apply(&file, tmp.path(), &[(0, &w)]).expect_err("page size");
    assert!(
        matches!(
            err,
            RestoreError::PageSize {
                wal: 1024,
                db: 512,
                ..
            }
        ),
        "{err}"
    );

    let err = apply(&file, tmp.path(), &[(0, &w[..10])]).expect_err("short");
    assert!(matches!(err, RestoreError::WalHeader { .. }), "{err}");
}

fn sqlite_header(page_size: u16, pages: u32) -> Vec<u8> {
    let mut h = vec![0u8; 100];
    h[..16].copy_from_slice(SQLITE_MAGIC);
    h[16..18].copy_from_slice(&page_size.to_be_bytes());
    h[24..28].copy_from_slice(&7u32.to_be_bytes());
    h[28..32].copy_from_slice(&pages.to_be_bytes());
    h[92..96].copy_from_slice(&7u32.to_be_bytes());
    h
}

fn sink(parts: &[&[u8]]) -> Result<DbInfo, RestoreError> {
    sink_then(parts, false)
}

/// `index_replayed`: the snapshot's WAL index is replayed next.
fn sink_then(parts: &[&[u8]], index_replayed: bool) -> Result<DbInfo, RestoreError> {
    let tmp = tempfile::NamedTempFile::new().expect("temp");
    let file = tmp.reopen().expect("reopen");
    let mut s = SnapshotSink::new(&file, tmp.path(), "snap");
    for p in parts {
        s.write(p)?;
    }
    s.finish(index_replayed)
}

#[test]
fn snapshot_header_is_checked() {
    let mut db = sqlite_header(512, 2);
    db.resize(1024, 0);
    let info = sink(&[&db[..3], &db[3..]]).expect("valid");
    assert_eq!(
        info,
        DbInfo {
            len: 1024,
            page_size: Some(512),
            torn: None,
        }
    );

    let err = sink(&[&db[..1000]]).expect_err("short");
    assert_eq!(
        err.to_string(),
        "snapshot snap is truncated: 1000 bytes, but its header says 2 pages of 512 bytes"
    );
    // A snapshot torn by a checkpoint (Litestream v0.3 copies the live file) is repaired by
    // replaying its WAL index from the start, so it is accepted when that replay follows.
    let torn = sink_then(&[&db[..1000]], true).expect("short, replayed");
    assert_eq!(
        torn.torn,
        Some(TornSnapshot {
            key: "snap".into(),
            len: 1000,
            pages: 2,
            page_size: 512
        })
    );

    let err = sink(&[b"not a database at all, definitely not"]).expect_err("magic");
    assert_eq!(err.to_string(), "snapshot snap is not an SQLite database");

    assert_eq!(
        sink(&[]).expect("empty"),
        DbInfo {
            len: 0,
            page_size: None,
            torn: None,
        }
    );

    let mut stale = sqlite_header(1, 9); // 65536-byte pages; stale in-header size is ignored
    stale[92..96].copy_from_slice(&1u32.to_be_bytes());
    stale.resize(65_536, 0);
    assert_eq!(
        sink(&[&stale]).expect("stale count").page_size,
        Some(65_536)
    );
}

#[test]
fn consecutive_pages_are_written_in_runs_without_reordering() {
    let (tmp, file) = db_file(&[1, 2, 3, 4, 5]);
    // 3,4,5 form one run; page 4 is then rewritten by a later transaction and must win.
    let w = wal(
        &header(),
        &[(3, 0, 30), (4, 0, 40), (5, 5, 50), (4, 5, 41), (1, 5, 10)],
    );
    apply(&file, tmp.path(), &[(0, &w)]).expect("apply");
    let got = read_all(&tmp);
    let page_fill = |pgno: usize| got[(pgno - 1) * PS as usize];
    assert_eq!(
        (1..=5).map(page_fill).collect::<Vec<u8>>(),
        vec![10, 2, 30, 41, 50]
    );
}

#[test]
fn preallocation_never_changes_the_file_length() {
    for written in [4096usize, 3000] {
        let tmp = tempfile::NamedTempFile::new().expect("temp");
        let file = tmp.reopen().expect("reopen");
        let mut db = sqlite_header(512, 64); // announces 32 KiB
        db.resize(written, 0);
        let mut s = SnapshotSink::new(&file, tmp.path(), "snap");
        s.write(&db[..50]).expect("first part");
        s.write(&db[50..]).expect("rest");
        assert!(s.finish(false).is_err(), "shorter than announced");
        let len = file.metadata().expect("stat").len();
        assert_eq!(len, written as u64, "only the written bytes count");
    }
    assert_eq!(header_db_len(&sqlite_header(512, 64)), Some(32 << 10));
    let mut stale = sqlite_header(512, 64);
    stale[92..96].copy_from_slice(&1u32.to_be_bytes());
    assert_eq!(header_db_len(&stale), None, "untrusted in-header size");
}

#[test]
fn a_torn_snapshot_needs_every_missing_page_from_its_index() {
    let torn = TornSnapshot {
        key: "snap".into(),
        len: 2 * 512,
        pages: 5,
        page_size: 512,
    };
    // Pages 3..=5 are missing; the index writes 3 and 5 only.
    let mut c = Coverage::new(torn.clone());
    c.note(3);
    c.note(5);
    c.note(1);
    let err = c.check(Some(5)).expect_err("page 4 never written");
    assert_eq!(
        err.to_string(),
        "snapshot snap is truncated: 1024 bytes, but its header says 5 pages of 512 bytes"
    );
    // Pages past the size the index ends with do not matter.
    let mut c = Coverage::new(torn.clone());
    c.note(3);
    assert!(c.check(Some(3)).is_ok());
    // All written.
    let mut c = Coverage::new(torn);
    (3..=5).for_each(|p| c.note(p));
    assert!(c.check(Some(5)).is_ok());
}
