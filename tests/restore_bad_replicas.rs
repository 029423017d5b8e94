//! `walstream restore` on damaged replicas: each damage must end the restore with exit 1 and a
//! clear error naming the object (and WAL offset where it applies), with nothing at `-o` and no
//! temporary file beside it. Litestream v0.3.13 silently restores an older database for several
//! of these (spec §5.2); walstream must not.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use walstream::lz4;
use walstream::restore::testkit::{Event, ReplicaWriter};

use common::walstream_bin;

const GEN: &str = "00ff00ff00ff00ff";
const STEP: Duration = Duration::from_secs(10);
const PAGE: usize = 4096;
const FRAME: usize = 24 + PAGE;

/// A replica: snapshot of index 0, WAL indices 0..=2 with three segments each.
struct Fixture {
    _dir: tempfile::TempDir,
    replica: PathBuf,
    out_dir: PathBuf,
    events: Vec<Event>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let replica = dir.path().join("replica");
        let out_dir = dir.path().join("out");
        fs::create_dir_all(&out_dir).expect("mkdir out");
        let start = UNIX_EPOCH + Duration::from_secs(1_760_000_000) + Duration::from_millis(250);
        let mut w = ReplicaWriter::new(dir.path(), &replica, GEN, PAGE as u32, start, STEP)
            .expect("writer");
        w.snapshot().expect("snapshot");
        for _ in 0..3 {
            for n in [4, 6, 8] {
                w.insert(n, 500).expect("insert");
                w.upload_segment().expect("segment");
            }
            w.checkpoint().expect("checkpoint");
        }
        let events = w.events.clone();
        Fixture {
            _dir: dir,
            replica,
            out_dir,
            events,
        }
    }

    fn segment(&self, index: u32, nth: usize) -> &Event {
        self.events
            .iter()
            .filter(|e| e.index == index && e.offset.is_some())
            .nth(nth)
            .expect("segment exists")
    }

    fn snapshot(&self) -> &Event {
        self.events
            .iter()
            .find(|e| e.offset.is_none())
            .expect("snapshot")
    }

    fn path(&self, e: &Event) -> PathBuf {
        self.replica.join(&e.key)
    }

    /// Replaces an object's stored bytes, keeping its timestamp.
    fn rewrite(&self, e: &Event, bytes: &[u8]) {
        let path = self.path(e);
        fs::write(&path, bytes).expect("rewrite object");
        fs::File::options()
            .write(true)
            .open(&path)
            .expect("open object")
            .set_modified(e.created_at)
            .expect("keep mtime");
    }

    /// Decompresses, edits and recompresses an object (valid LZ4, damaged content).
    fn edit(&self, e: &Event, f: impl FnOnce(&mut Vec<u8>)) {
        let stored = fs::read(self.path(e)).expect("read object");
        let mut plain = lz4::decompress(&stored).expect("decompress object");
        f(&mut plain);
        self.rewrite(e, &lz4::compress(&plain));
    }

    /// Runs a restore that must fail; returns stderr.
    fn restore_fails(&self, extra: &[&str]) -> String {
        let out = self.out_dir.join("restored.db");
        let mut cmd = Command::new(walstream_bin());
        cmd.arg("restore").arg("-o").arg(&out).args(extra);
        cmd.arg(format!("file://{}", self.replica.display()));
        let run = cmd
            .env_remove("LITESTREAM_CONFIG")
            .output()
            .expect("run walstream");
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        assert_eq!(run.status.code(), Some(1), "must fail; stderr:\n{stderr}");
        let left: Vec<_> = fs::read_dir(&self.out_dir)
            .expect("list out dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "files left beside -o: {left:?}\n{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 1, "one error line:\n{stderr}");
        stderr
    }
}

fn assert_has(stderr: &str, want: &str) {
    assert!(stderr.contains(want), "want {want:?} in:\n{stderr}");
}

fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

#[test]
fn deleted_middle_segment_is_a_gap() {
    let f = Fixture::new();
    let (gone, next) = (f.segment(1, 1), f.segment(1, 2));
    fs::remove_file(f.path(gone)).expect("delete");
    let err = f.restore_fails(&[]);
    assert_has(
        &err,
        &format!(
            "wal segment gap: {} starts at wal offset {} but the previous segments end at {}",
            next.key,
            next.offset.expect("offset"),
            gone.offset.expect("offset")
        ),
    );
}

#[test]
fn truncated_segment() {
    let f = Fixture::new();
    let seg = f.segment(0, 1);
    let stored = fs::read(f.path(seg)).expect("read");
    f.rewrite(seg, &stored[..stored.len() / 2]);
    let err = f.restore_fails(&[]);
    assert_has(
        &err,
        &format!("decompress {}: lz4: truncated frame", seg.key),
    );
}

#[test]
fn flipped_byte_in_snapshot() {
    let f = Fixture::new();
    let snap = f.snapshot();
    let mut stored = fs::read(f.path(snap)).expect("read");
    let at = stored.len() / 2;
    stored[at] ^= 0x20;
    f.rewrite(snap, &stored);
    let err = f.restore_fails(&[]);
    assert_has(&err, &format!("decompress {}: lz4: ", snap.key));
}

#[test]
fn flipped_byte_in_segment() {
    let f = Fixture::new();
    let seg = f.segment(2, 2);
    let mut stored = fs::read(f.path(seg)).expect("read");
    let at = stored.len() - 20; // inside the last block's data
    stored[at] ^= 0x01;
    f.rewrite(seg, &stored);
    let err = f.restore_fails(&[]);
    assert_has(&err, &format!("decompress {}: lz4: ", seg.key));
}

#[test]
fn object_that_is_not_lz4() {
    let f = Fixture::new();
    let seg = f.segment(1, 0);
    f.rewrite(seg, b"age-encryption.org/v1\n-> X25519 not really\n");
    let err = f.restore_fails(&[]);
    assert_has(
        &err,
        &format!("decompress {}: lz4: bad magic number", seg.key),
    );
}

#[test]
fn broken_wal_checksum_chain_names_key_and_offset() {
    let f = Fixture::new();
    let seg = f.segment(1, 1);
    // Second frame of the segment, inside its page: LZ4 stays valid, the WAL chain breaks.
    f.edit(seg, |wal| wal[FRAME + 24 + 100] ^= 0xff);
    let offset = seg.offset.expect("offset") + FRAME as u64;
    let err = f.restore_fails(&[]);
    assert_has(
        &err,
        &format!(
            "wal frame checksum mismatch in {} at wal offset {offset}",
            seg.key
        ),
    );
}

#[test]
fn index_not_ending_on_a_commit_frame() {
    let f = Fixture::new();
    let seg = f.segment(2, 2);
    f.edit(seg, |wal| wal.truncate(wal.len() - FRAME));
    let err = f.restore_fails(&[]);
    assert_has(
        &err,
        &format!(
            "wal index {GEN}/00000002 does not end on a commit frame: last frame in {}",
            seg.key
        ),
    );
}

#[test]
fn snapshot_shorter_than_its_header() {
    let f = Fixture::new();
    let snap = f.snapshot();
    f.edit(snap, |db| db.truncate(db.len() - PAGE));
    let err = f.restore_fails(&[]);
    assert_has(&err, &format!("snapshot {} is truncated: ", snap.key));
}

#[test]
fn missing_initial_segment() {
    let f = Fixture::new();
    let first = f.segment(2, 0);
    let second = f.segment(2, 1);
    fs::remove_file(f.path(first)).expect("delete");
    let err = f.restore_fails(&[]);
    assert_has(
        &err,
        &format!(
            "missing initial wal segment: generation={GEN} index=00000002 offset={}",
            second.offset.expect("offset")
        ),
    );
}

#[test]
fn missing_index_in_range() {
    let f = Fixture::new();
    for nth in 0..3 {
        fs::remove_file(f.path(f.segment(1, nth))).expect("delete");
    }
    let err = f.restore_fails(&[]);
    assert_has(&err, &format!("missing WAL index: {GEN}/00000001"));
}

#[test]
fn no_generations() {
    let f = Fixture::new();
    fs::remove_dir_all(f.replica.join("generations")).expect("delete all");
    let err = f.restore_fails(&[]);
    assert_has(&err, "no matching backups found");
}

#[test]
fn timestamp_outside_the_generation() {
    let f = Fixture::new();
    let first = f.events.first().expect("events").created_at;
    let last = f.events.last().expect("events").created_at;
    for t in [
        first - Duration::from_nanos(1),
        last + Duration::from_secs(1),
    ] {
        let err = f.restore_fails(&["-timestamp", &rfc3339(t)]);
        assert_has(&err, "no matching backups found");
    }
}

#[test]
fn timestamp_before_an_overwritten_snapshot() {
    let f = Fixture::new();
    // A re-snapshot of the same index overwrites the object with a new mtime (spec §5.2 gotcha):
    // a time covered by segments then has no snapshot at or before it.
    let snap = f.snapshot();
    let newer = f.events.last().expect("events").created_at;
    fs::File::options()
        .write(true)
        .open(f.path(snap))
        .expect("open snapshot")
        .set_modified(newer)
        .expect("touch");
    let t = f.segment(1, 0).created_at;
    let err = f.restore_fails(&["-timestamp", &rfc3339(t)]);
    assert_has(
        &err,
        "cannot find snapshot index by timestamp: no snapshots available",
    );
}

#[test]
fn output_path_that_cannot_be_created_leaves_nothing() {
    let f = Fixture::new();
    let blocker = f.out_dir.join("file");
    fs::write(&blocker, b"x").expect("write");
    let out = blocker.join("sub/restored.db");
    let run = Command::new(walstream_bin())
        .arg("restore")
        .arg("-o")
        .arg(&out)
        .arg(format!("file://{}", f.replica.display()))
        .output()
        .expect("run walstream");
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_has(&stderr, "create directory");
    fs::remove_file(&blocker).expect("cleanup");
    assert_eq!(fs::read_dir(&f.out_dir).expect("list").count(), 0);
    assert!(!Path::new(&out).exists());
}
