//! Regression: walstream must never drop SQLite's POSIX locks on the live database file.
//!
//! POSIX record locks belong to a process and are all released when *any* descriptor of the file
//! is closed. walstream once opened the database file for each snapshot and closed it afterwards,
//! which silently released the SHARED lock its SQLite connection held; the application's next
//! "last connection" close then took the EXCLUSIVE lock, checkpointed and deleted `-wal` under the
//! running sidecar, forcing a new generation. The application here is a separate process (Python's
//! sqlite3) that opens, writes and closes, as short-lived app connections do.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{wait_for, walstream_bin};

/// One short-lived application connection in another process: insert a row and close.
fn app_write(db: &Path, value: &str) {
    let script = "import sqlite3, sys\n\
                  c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                  c.execute('PRAGMA busy_timeout=5000')\n\
                  c.execute('PRAGMA journal_mode=wal')\n\
                  c.execute('CREATE TABLE IF NOT EXISTS t (v TEXT)')\n\
                  c.execute('INSERT INTO t (v) VALUES (?)', (sys.argv[2],))\n\
                  c.close()\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(db)
        .arg(value)
        .output()
        .expect("run python3 (needed as an out-of-process SQLite application)");
    assert!(
        out.status.success(),
        "app write failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn generations(replica: &Path) -> Vec<String> {
    match std::fs::read_dir(replica.join("generations")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

struct Sidecar(Child);

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn app_connection_close_does_not_delete_wal_after_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(dir.path()).expect("canonicalize");
    let db = root.join("app.db");
    let wal = root.join("app.db-wal");
    let replica = root.join("replica");
    app_write(&db, "before walstream");

    let sidecar = Sidecar(
        Command::new(walstream_bin())
            .arg("replicate")
            .arg(&db)
            .arg(format!("file://{}", replica.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start walstream replicate"),
    );
    // The first upload of a generation takes a snapshot (which reads the database file).
    let snapshot_dir = wait_for("first generation", Duration::from_secs(30), || {
        let gens = generations(&replica);
        gens.first()
            .map(|g| replica.join("generations").join(g).join("snapshots"))
    });
    wait_for("first snapshot", Duration::from_secs(30), || {
        std::fs::read_dir(&snapshot_dir)
            .ok()
            .and_then(|mut rd| rd.next())
            .map(|_| ())
    });

    for i in 0..5 {
        app_write(&db, &format!("after snapshot {i}"));
        assert!(
            wal.exists(),
            "the application's close deleted {} while walstream was attached (write {i})",
            wal.display()
        );
    }
    assert_eq!(
        generations(&replica).len(),
        1,
        "walstream had to start a new generation: its lock on the database was lost"
    );
    drop(sidecar);
}
