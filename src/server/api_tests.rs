//! Tests of the JSON documents and the readiness rule (pure, from hand-made observations).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::db::{DbState, DbStats};
use crate::replica::{ReplicaStatus, SnapshotMark};
use crate::server::StorageCounters;
use crate::state::restore_points::{SnapshotPoint, WalSpan};

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
}

fn pos(offset: u64) -> Pos {
    Pos {
        generation: "0123456789abcdef".into(),
        index: 1,
        offset,
    }
}

fn replica(name: &str, lag_s: u64, synced: bool) -> ReplicaObservation {
    ReplicaObservation {
        status: ReplicaStatus {
            name: name.into(),
            kind: "s3",
            position: synced.then(|| pos(4152)),
            last_sync: synced.then(|| at(90)),
            last_error: Some((at(80), "PUT k: connection refused".into())),
            failure_streak: 1,
            latest_snapshot: Some(SnapshotMark {
                generation: "0123456789abcdef".into(),
                index: 1,
                at: at(50),
            }),
            ..ReplicaStatus::default()
        },
        replica_type: "s3",
        url: "s3://bucket/db".into(),
        lag: Duration::from_secs(lag_s),
        storage: StorageCounters::default(),
        points: Arc::new(ReplicaPoints {
            ltx: None,
            refreshed_at: Some(at(95)),
            generations: vec![GenerationPoints {
                generation: "0123456789abcdef".into(),
                created_at: Some(at(10)),
                updated_at: Some(at(60)),
                snapshots: vec![SnapshotPoint {
                    index: 0,
                    size: 421,
                    created_at: at(10),
                }],
                wal: vec![WalSpan {
                    index: 0,
                    segments: 2,
                    first_offset: 0,
                    last_offset: 4152,
                    size: 600,
                    first_created_at: at(10),
                    last_created_at: at(60),
                }],
            }],
            error: None,
            inputs: None,
        }),
    }
}

fn observation(replicas: Vec<ReplicaObservation>, attached: bool) -> Observation {
    Observation {
        at: at(100),
        dbs: vec![DbObservation {
            id: "app.db".into(),
            path: PathBuf::from("/data/app.db"),
            attached,
            state: DbState {
                generation: Some("0123456789abcdef".into()),
                pos: Some(pos(8272)),
                page_size: 4096,
                db_size: 8192,
                wal_size: 8272,
                last_sync: Some(at(99)),
                last_error: None,
            },
            stats: DbStats::default(),
            failing_since: None,
            replicas,
            backups: None,
            drill: None,
        }],
        heartbeat: None,
    }
}

#[test]
fn times_are_rfc3339_utc_with_needed_digits() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    let t = UNIX_EPOCH + Duration::new(1, 5_000_000);
    assert_eq!(rfc3339(t), "1970-01-01T00:00:01.005Z");
    let t = UNIX_EPOCH + Duration::new(1, 123_456_789);
    assert_eq!(rfc3339(t), "1970-01-01T00:00:01.123456789Z");
}

#[test]
fn status_document_shape() {
    let doc = StatusDoc::from_observation(&observation(vec![replica("s3", 3, true)], true));
    let v = serde_json::to_value(&doc).expect("json");
    let db = &v["databases"][0];
    assert_eq!(db["name"], "app.db");
    assert_eq!(db["path"], "/data/app.db");
    assert_eq!(db["size"], 8192);
    assert_eq!(db["wal_size"], 8272);
    assert_eq!(db["generation"], "0123456789abcdef");
    assert_eq!(db["position"]["offset"], 8272);
    assert!(db["last_checkpoint"].is_null());
    assert!(db["last_error"].is_null());
    let r = &db["replicas"][0];
    assert_eq!(r["type"], "s3");
    assert_eq!(r["url"], "s3://bucket/db");
    assert_eq!(r["lag_seconds"], 3.0);
    assert_eq!(r["last_error"]["message"], "PUT k: connection refused");
    // The newer of the own snapshot (t+50) and the listed one (t+10).
    assert_eq!(r["latest_snapshot"]["time"], rfc3339(at(50)));
    assert_eq!(r["oldest_restore_point"], rfc3339(at(10)));
    let back: StatusDoc = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, doc);
}

/// An LTX replica's status carries its TXID as Litestream v0.5 prints it; a v0.3 replica's has
/// no `txid` key at all.
#[test]
fn ltx_replica_status_shows_its_txid() {
    let mut ltx = replica("ltx", 0, true);
    ltx.status.ltx_txid = Some(0x2a);
    let doc = StatusDoc::from_observation(&observation(vec![ltx, replica("v3", 0, true)], true));
    let v = serde_json::to_value(&doc).expect("json");
    let replicas = &v["databases"][0]["replicas"];
    assert_eq!(replicas[0]["txid"], "000000000000002a");
    assert!(replicas[1].get("txid").is_none(), "{}", replicas[1]);
    let back: StatusDoc = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, doc);
}

#[test]
fn restore_points_document_shape() {
    let obs = observation(vec![replica("s3", 0, true)], true);
    let doc = RestorePointsDoc::from_observation(&obs.dbs[0]);
    let v = serde_json::to_value(&doc).expect("json");
    let g = &v["replicas"][0]["generations"][0];
    assert_eq!(g["restorable_from"], rfc3339(at(10)));
    assert_eq!(g["restorable_to"], rfc3339(at(60)));
    assert_eq!(g["snapshots"][0]["size"], 421);
    assert_eq!(g["wal"][0]["last_offset"], 4152);
    assert_eq!(g["wal"][0]["segments"], 2);
}

#[test]
fn ready_when_attached_synced_and_within_lag() {
    let max = Duration::from_secs(5);
    let ok = readiness(&observation(vec![replica("s3", 5, true)], true), max);
    assert!(ok.ready, "{ok:?}");
    assert!(ok.problems.is_empty());

    let lagging = readiness(&observation(vec![replica("s3", 6, true)], true), max);
    assert!(!lagging.ready);
    assert_eq!(lagging.problems.len(), 1);
    let p = &lagging.problems[0];
    assert_eq!(
        (p.db.as_str(), p.replica.as_deref()),
        ("app.db", Some("s3"))
    );
    assert!(p.reason.contains("lag 6.0s exceeds 5s"), "{}", p.reason);
    assert!(p.reason.contains("connection refused"), "{}", p.reason);

    let never = readiness(&observation(vec![replica("s3", 0, false)], true), max);
    assert_eq!(
        never.problems[0].reason,
        "replica has not completed a sync yet"
    );

    let detached = readiness(&observation(vec![replica("s3", 0, true)], false), max);
    assert_eq!(detached.problems[0].reason, "database not attached");
    assert_eq!(detached.problems[0].replica, None);
}

#[test]
fn a_replica_refused_by_its_owner_record_is_not_ready_and_shows_why() {
    let max = Duration::from_secs(5);
    let mut obs = observation(vec![replica("s3", 0, true), replica("file", 0, true)], true);
    let why = "replica s3://b/app belongs to another database: /data/other.db on host h";
    obs.dbs[0].replicas[0].status.owner_conflict = Some(why.into());
    let doc = readiness(&obs, max);
    assert!(!doc.ready);
    assert_eq!(doc.problems.len(), 1, "{doc:?}");
    assert_eq!(doc.problems[0].replica.as_deref(), Some("s3"));
    assert_eq!(doc.problems[0].reason, format!("replica refused: {why}"));
    let status = serde_json::to_value(StatusDoc::from_observation(&obs)).expect("json");
    assert_eq!(status["databases"][0]["replicas"][0]["owner_conflict"], why);
    assert!(status["databases"][0]["replicas"][1]["owner_conflict"].is_null());
}

#[test]
fn a_replica_refusing_a_damaged_database_is_not_ready_and_shows_the_finding() {
    let max = Duration::from_secs(5);
    let mut obs = observation(vec![replica("s3", 0, true), replica("file", 0, true)], true);
    let finding = "/data/app.db: *** in database main *** Tree 2 page 6: btreeInitPage() returns error code 11";
    obs.dbs[0].replicas[1].status.source_damaged = Some(finding.into());
    let doc = readiness(&obs, max);
    assert!(!doc.ready);
    assert_eq!(doc.problems.len(), 1, "{doc:?}");
    assert_eq!(doc.problems[0].replica.as_deref(), Some("file"));
    assert_eq!(
        doc.problems[0].reason,
        format!("database fails quick_check, not snapshotted: {finding}")
    );
    let status = serde_json::to_value(StatusDoc::from_observation(&obs)).expect("json");
    assert_eq!(
        status["databases"][0]["replicas"][1]["source_damaged"],
        finding
    );
    assert!(status["databases"][0]["replicas"][0]["source_damaged"].is_null());
}

#[test]
fn db_failing_longer_than_max_lag_is_not_ready() {
    let max = Duration::from_secs(5);
    let mut obs = observation(vec![replica("s3", 0, true)], true);
    obs.dbs[0].state.last_error = Some("database is locked".into());
    obs.dbs[0].failing_since = Some(at(97));
    assert!(readiness(&obs, max).ready);
    obs.dbs[0].failing_since = Some(at(90));
    let doc = readiness(&obs, max);
    assert!(!doc.ready);
    assert!(doc.problems[0].reason.contains("database is locked"));
}

#[test]
fn validation_is_null_until_the_first_one_then_its_last_result() {
    use crate::replica::{ValidationOutcome, ValidationResult};
    let doc = StatusDoc::from_observation(&observation(vec![replica("s3", 0, true)], true));
    let v = serde_json::to_value(&doc).expect("json");
    assert!(v["databases"][0]["replicas"][0]["validation"].is_null());

    let mut r = replica("s3", 0, true);
    r.status.validation = Some(ValidationResult {
        at: at(70),
        outcome: ValidationOutcome::Mismatch,
        message: Some("invalid replica, checksum mismatch".into()),
        position: Some(pos(0)),
        txid: None,
        db_checksum: Some(0xb909_56c7_75a4_1001),
        replica_checksum: Some(0x1f),
    });
    r.status.validations_ok = 2;
    r.status.validations_failed = 1;
    let doc = StatusDoc::from_observation(&observation(vec![r], true));
    let v = serde_json::to_value(&doc).expect("json");
    let val = &v["databases"][0]["replicas"][0]["validation"];
    assert_eq!(val["status"], "mismatch");
    assert_eq!(val["last_at"], rfc3339(at(70)));
    assert_eq!(val["message"], "invalid replica, checksum mismatch");
    assert_eq!(val["db_checksum"], "b90956c775a41001");
    assert_eq!(val["replica_checksum"], "000000000000001f");
    assert_eq!(val["position"]["index"], 1);
    assert!(
        val.get("txid").is_none(),
        "a v0.3 validation has no txid: {val}"
    );
    assert_eq!(
        (val["ok_count"].clone(), val["error_count"].clone()),
        (2.into(), 1.into())
    );
    let back: StatusDoc = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, doc);

    // An LTX replica's validation names the TXID it restored.
    let mut r = replica("s3", 0, true);
    r.status.validation = Some(ValidationResult {
        at: at(80),
        outcome: ValidationOutcome::Ok,
        message: None,
        position: Some(pos(0)),
        txid: Some(0x2a),
        db_checksum: Some(7),
        replica_checksum: Some(7),
    });
    let doc = StatusDoc::from_observation(&observation(vec![r], true));
    let v = serde_json::to_value(&doc).expect("json");
    let val = &v["databases"][0]["replicas"][0]["validation"];
    assert_eq!(val["txid"], "000000000000002a");
    let back: StatusDoc = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, doc);
}
