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
use std::process::Command;
use std::time::Duration;

use common::{Workspace, poll_until, walstream};

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

#[test]
fn app_connection_close_does_not_delete_wal_after_a_snapshot() {
    let ws = Workspace::new();
    let db = ws.db();
    let wal = ws.join("app.db-wal");
    let replica = ws.replica();
    app_write(&db, "before walstream");

    let sidecar = walstream(&ws.path(), &[&db.display().to_string(), &ws.replica_url()]);
    // The first upload of a generation takes a snapshot (which reads the database file).
    let snapshot_dir = poll_until(Duration::from_secs(30), "first generation", || {
        let gens = generations(&replica);
        gens.first()
            .map(|g| replica.join("generations").join(g).join("snapshots"))
    });
    poll_until(Duration::from_secs(30), "first snapshot", || {
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
