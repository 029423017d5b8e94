//! `walstream restore` on damaged replicas: each damage must end the restore with exit 1 and a
//! clear error naming the object (and WAL offset where it applies), with nothing at `-o` and no
//! temporary file beside it. Litestream v0.3.13 silently restores an older database for several
//! of these (spec §5.2: gaps, reordered or duplicated segments, a snapshot of another page
//! size); walstream must not.
//!
//! Entries that are not part of the layout (stray files, `*.tmp`, upper-case hex, directories
//! with other names) are ignored like Litestream does; the tests that compare with the real
//! Litestream v0.3.13 need `WALSTREAM_TEST_LITESTREAM` (scripts/test.sh sets it).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use walstream::lz4;
use walstream::restore::testkit::{Event, ReplicaWriter};

use common::sqlite::{assert_restores_to, restored_rows};
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

    /// Swaps the stored bytes of two objects (names, sizes and LZ4 stay valid), keeping their
    /// timestamps.
    fn swap(&self, a: &Event, b: &Event) {
        let (bytes_a, bytes_b) = (
            fs::read(self.path(a)).expect("read"),
            fs::read(self.path(b)).expect("read"),
        );
        self.rewrite(a, &bytes_b);
        self.rewrite(b, &bytes_a);
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

impl Fixture {
    /// Runs a restore that must succeed into `name` beside the fixture; returns its path.
    fn restore_ok(&self, name: &str) -> PathBuf {
        let out = self._dir.path().join(name);
        let run = Command::new(walstream_bin())
            .arg("restore")
            .arg("-o")
            .arg(&out)
            .arg(format!("file://{}", self.replica.display()))
            .env_remove("LITESTREAM_CONFIG")
            .output()
            .expect("run walstream");
        assert!(
            run.status.success(),
            "restore failed:\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        out
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
    // Every point of the only generation needs that snapshot: none restores intact.
    assert_has(
        &err,
        "no earlier point of the replica restored intact either",
    );
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
    // The error names the newest point that restores intact (index 1), and it does.
    let t = f.segment(1, 2).created_at;
    assert_has(
        &err,
        &format!(
            "the newest point that restores intact is replica file generation {GEN} index 00000001 (written up to {}): restore it with -generation {GEN} -index 1",
            DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
    );
    let out = f.out_dir.join("index1.db");
    let run = Command::new(walstream_bin())
        .args(["restore", "-generation", GEN, "-index", "1", "-o"])
        .arg(&out)
        .arg(format!("file://{}", f.replica.display()))
        .env_remove("LITESTREAM_CONFIG")
        .output()
        .expect("run walstream");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    common::sqlite::checked(&out);
}

#[test]
fn object_that_is_not_lz4() {
    let f = Fixture::new();
    let seg = f.segment(1, 0);
    f.rewrite(seg, b"PK\x03\x04 a zip archive, not an lz4 frame\n");
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

/// A snapshot shorter than its header, as Litestream v0.3 writes when a checkpoint extends the
/// file while it copies: the replay of the snapshot's own WAL index writes the missing page, so
/// the restore succeeds and equals the restore of the intact replica (the case where the replay
/// does not supply it is an error naming the snapshot: `restore::apply` unit tests).
#[test]
fn snapshot_torn_by_a_checkpoint_is_repaired_by_its_wal_index() {
    let f = Fixture::new();
    let intact = f.restore_ok("intact.db");
    let snap = f.snapshot();
    f.edit(snap, |db| db.truncate(db.len() - PAGE));
    let repaired = f.restore_ok("repaired.db");
    assert!(
        fs::read(&intact).expect("read intact") == fs::read(&repaired).expect("read repaired"),
        "the repaired restore differs from the intact one"
    );
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

/// A full disk, as a file size limit (`ulimit -f`, SIGXFSZ ignored so writes fail with EFBIG the
/// way they fail with ENOSPC): the restore fails naming the file it was writing, and nothing is
/// left at or beside `-o`.
#[test]
fn a_full_disk_fails_naming_the_file_and_leaves_nothing() {
    let f = Fixture::new();
    let out = f.out_dir.join("restored.db");
    let script = format!(
        "trap '' XFSZ; ulimit -f 8; exec '{}' restore -o '{}' 'file://{}'",
        walstream_bin().display(),
        out.display(),
        f.replica.display()
    );
    let run = Command::new("bash")
        .args(["-c", &script])
        .env_remove("LITESTREAM_CONFIG")
        .output()
        .expect("run walstream under a file size limit");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert_has(
        &stderr,
        &format!("write {}.tmp: File too large", out.display()),
    );
    assert_eq!(
        fs::read_dir(&f.out_dir).expect("list").count(),
        0,
        "files left beside -o"
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

/// Restores the fixture with `bin` (walstream or Litestream) into `out_dir/name`.
fn restore_with(bin: &Path, f: &Fixture, name: &str) -> (PathBuf, std::process::Output) {
    let out = f.out_dir.join(name);
    let run = Command::new(bin)
        .arg("restore")
        .arg("-o")
        .arg(&out)
        .arg(format!("file://{}", f.replica.display()))
        .env_remove("LITESTREAM_CONFIG")
        .output()
        .expect("run restore");
    (out, run)
}

/// Writes `bytes` at replica-relative `key` with modification time `at`.
fn put_object(f: &Fixture, key: &str, bytes: &[u8], at: SystemTime) {
    let path = f.replica.join(key);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(&path, bytes).expect("write object");
    fs::File::options()
        .write(true)
        .open(&path)
        .expect("open object")
        .set_modified(at)
        .expect("set mtime");
}

#[test]
fn reordered_segments_break_the_checksum_chain() {
    let f = Fixture::new();
    // Swap the contents of two later segments of index 1.
    let (a, b) = (f.segment(1, 1), f.segment(1, 2));
    f.swap(a, b);
    let err = f.restore_fails(&[]);
    assert_has(
        &err,
        &format!(
            "wal frame checksum mismatch in {} at wal offset {}",
            a.key,
            a.offset.expect("offset")
        ),
    );
}

#[test]
fn reordered_first_segment_has_no_wal_header() {
    let f = Fixture::new();
    let (a, b) = (f.segment(1, 0), f.segment(1, 1));
    f.swap(a, b);
    let err = f.restore_fails(&[]);
    assert_has(
        &err,
        &format!(
            "invalid wal header in {}: wal header: bad magic 0x00000001",
            a.key
        ),
    );
}

#[test]
fn duplicated_segment_under_the_next_offset() {
    let f = Fixture::new();
    let last = f.segment(1, 2);
    let offset = last.offset.expect("offset") + last.len;
    let key = walstream::storage::layout::segment_key("", GEN, 1, offset);
    let bytes = fs::read(f.path(last)).expect("read");
    put_object(&f, &key, &bytes, last.created_at + Duration::from_secs(1));
    let err = f.restore_fails(&[]);
    assert_has(
        &err,
        &format!("wal frame checksum mismatch in {key} at wal offset {offset}"),
    );
}

#[test]
fn snapshot_with_another_page_size_than_the_segments() {
    let f = Fixture::new();
    let db = f.out_dir.with_file_name("page-1024.db");
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch(
        "PRAGMA page_size = 1024; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t VALUES (1, 'other database');",
    )
    .expect("create");
    drop(conn);
    f.rewrite(f.snapshot(), &lz4::compress(&fs::read(&db).expect("read")));
    let err = f.restore_fails(&[]);
    assert_has(
        &err,
        &format!(
            "page size mismatch: {} has page size {PAGE}, the database has 1024",
            f.segment(0, 0).key
        ),
    );
}

#[test]
fn generation_dir_with_an_invalid_name_is_not_a_generation() {
    // Like Litestream (its listing only accepts ^[0-9a-f]{16}$), such a directory is skipped.
    for bad in [
        "00FF00FF00FF00FF",
        "00ff00ff00ff00f",
        "00ff00ff00ff00ff.old",
    ] {
        let f = Fixture::new();
        let generations = f.replica.join("generations");
        fs::rename(generations.join(GEN), generations.join(bad)).expect("rename");
        let err = f.restore_fails(&[]);
        assert_has(&err, "no matching backups found");
        let (_, run) = restore_with(&common::litestream_bin(), &f, "litestream.db");
        let ls_err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{ls_err}");
        assert_has(&ls_err, "no matching backups found");
    }
}

/// Files and directories that are not part of the layout, at every level of the tree.
fn add_foreign_entries(f: &Fixture, segment_named_dir: bool) {
    let at = f.events.last().expect("events").created_at + Duration::from_secs(60);
    let gen_dir = format!("generations/{GEN}");
    let snapshot = fs::read(f.path(f.snapshot())).expect("read snapshot");
    put_object(f, "README.txt", b"not a replica file", at);
    put_object(f, "generations/README.txt", b"x", at);
    // A look-alike generation with a valid snapshot: its name does not match, so it is ignored.
    let fake = "generations/not-a-generation/snapshots/00000000.snapshot.lz4";
    put_object(f, fake, &snapshot, at);
    put_object(f, &format!("{gen_dir}/notes.md"), b"x", at);
    put_object(f, &format!("{gen_dir}/snapshots/README.txt"), b"x", at);
    put_object(
        f,
        &format!("{gen_dir}/snapshots/00000009.snapshot.lz4.tmp"),
        b"x",
        at,
    );
    put_object(f, &format!("{gen_dir}/wal/x.wal.lz4.tmp"), b"x", at);
    put_object(
        f,
        &format!("{gen_dir}/wal/00000003_00000000.wal.lz4.tmp"),
        b"x",
        at,
    );
    put_object(
        f,
        &format!("{gen_dir}/wal/0000000A_00000000.wal.lz4"),
        b"x",
        at,
    );
    fs::create_dir_all(f.replica.join(&gen_dir).join("wal/subdir")).expect("mkdir");
    if segment_named_dir {
        let dir = f
            .replica
            .join(&gen_dir)
            .join("wal/00000004_00000000.wal.lz4");
        fs::create_dir_all(dir).expect("mkdir");
    }
}

#[test]
fn foreign_files_in_the_replica_tree_are_ignored() {
    let f = Fixture::new();
    add_foreign_entries(&f, false);
    let want = &f.events.last().expect("events").rows;
    for (bin, name) in [
        (walstream_bin(), "walstream.db"),
        (common::litestream_bin(), "litestream.db"),
    ] {
        let (out, run) = restore_with(&bin, &f, name);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{name}: {stderr}");
        assert_eq!(&restored_rows(&out), want, "{name}");
    }
}

#[test]
fn directory_named_like_a_segment_is_ignored() {
    // Litestream v0.3.13's file backend lists such a directory as segment 4 and then fails with
    // `missing WAL index: <gen>/00000003`; walstream lists only regular files (a directory can
    // never hold WAL data), so the restore succeeds.
    let f = Fixture::new();
    add_foreign_entries(&f, true);
    let (out, run) = restore_with(&walstream_bin(), &f, "walstream.db");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_restores_to(&out, &f.events.last().expect("events").rows);
    let (_, run) = restore_with(&common::litestream_bin(), &f, "litestream.db");
    let ls_err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{ls_err}");
    assert_has(&ls_err, &format!("missing WAL index: {GEN}/00000003"));
}

#[test]
fn empty_or_tiny_objects_are_truncated_frames() {
    // Regression: objects shorter than the age header (21 bytes) once made the restore task
    // panic ("Unfold must not be polled after it returned `Poll::Ready(None)`").
    let pick_segment = |f: &Fixture| f.segment(1, 1).clone();
    let pick_snapshot = |f: &Fixture| f.snapshot().clone();
    for (body, end) in [(&b""[..], 0), (&b"\x04\x22"[..], 2)] {
        for pick in [pick_segment, pick_snapshot] {
            let f = Fixture::new();
            let obj = pick(&f);
            f.rewrite(&obj, body);
            let err = f.restore_fails(&[]);
            assert_has(
                &err,
                &format!(
                    "decompress {}: lz4: truncated frame: input ends at offset {end}",
                    obj.key
                ),
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}
