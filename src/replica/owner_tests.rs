//! The owner record: pure verdicts, parsing limits, and a real database claiming, keeping and
//! being refused a file replica path.

use std::sync::Arc;

use super::*;
use crate::replica::test_fixture::DbFixture;
use crate::storage::ReplicaClient;

fn record(identity: &str, database: &str, host: &str) -> OwnerRecord {
    OwnerRecord {
        identity: identity.into(),
        database: database.into(),
        host: host.into(),
        since: "2026-01-02T03:04:05Z".into(),
        tool: "walstream 0.1.0".into(),
    }
}

const A: &str = "00000000000000aa";
const B: &str = "00000000000000bb";

#[test]
fn verdicts() {
    let ours = record(A, "/data/app.db", "pod-1");
    assert_eq!(decide(None, &ours, None), Verdict::Claim);
    assert_eq!(decide(Some(&ours), &ours, None), Verdict::Owned);
    let moved = record(A, "/old/app.db", "pod-0");
    let refreshed = decide(Some(&moved), &ours, None);
    assert_eq!(
        refreshed,
        Verdict::Refresh(OwnerRecord {
            since: moved.since.clone(),
            ..ours.clone()
        })
    );
    let other = record(B, "/data/other.db", "pod-9");
    assert_eq!(
        decide(Some(&other), &ours, None),
        Verdict::Conflict(other.clone())
    );
    assert_eq!(
        decide(Some(&other), &ours, Some(A)),
        Verdict::Conflict(other.clone()),
        "owning the path before with our own identity does not let us take another's"
    );
    assert_eq!(decide(Some(&other), &ours, Some(B)), Verdict::TakeOver);
    let replaced = record(B, "/data/app.db", "pod-1");
    assert_eq!(
        decide(Some(&replaced), &ours, None),
        Verdict::TakeOver,
        "a new file at this very path on this host replaces the old database"
    );
    let elsewhere = record(B, "/data/app.db", "pod-2");
    assert_eq!(
        decide(Some(&elsewhere), &ours, None),
        Verdict::Conflict(elsewhere.clone()),
        "the same path on another host is another database"
    );
}

#[test]
fn parse_accepts_ours_and_extra_fields_and_refuses_bad_identities() {
    let r = record(A, "/d/app.db", "h");
    assert_eq!(OwnerRecord::parse(&r.to_json(), "k"), Ok(r));
    let minimal =
        OwnerRecord::parse(br#"{"identity":"00000000000000aa","future":1}"#, "k").expect("minimal");
    assert_eq!(minimal.database, "");
    for bad in [
        &br#"{"identity":"AA00000000000000"}"#[..],
        br#"{"identity":"aa"}"#,
        br#"{"database":"x"}"#,
        b"not json",
    ] {
        let err = OwnerRecord::parse(bad, "s3://b/p/walstream-owner.json").expect_err("bad");
        assert!(err.contains("s3://b/p/walstream-owner.json"), "{err}");
    }
    let long = format!(
        r#"{{"identity":"{A}","host":"{}"}}"#,
        "h".repeat(MAX_FIELD + 1)
    );
    assert!(OwnerRecord::parse(long.as_bytes(), "k").is_err());
}

#[test]
fn the_record_location_keeps_the_description_query_last() {
    assert_eq!(
        record_location("s3://b/app?endpoint=http://127.0.0.1:9000&region=x"),
        "s3://b/app/walstream-owner.json?endpoint=http://127.0.0.1:9000&region=x"
    );
    assert_eq!(
        record_location("file:///r/"),
        "file:///r/walstream-owner.json"
    );
}

#[test]
fn conflict_message_says_who_and_what_to_do() {
    let msg = conflict_message(
        "s3://bucket/app",
        &record(B, "/data/other.db", "pod-9"),
        &record(A, "/data/app.db", "pod-1"),
    );
    for part in [
        "s3://bucket/app",
        "/data/other.db",
        "pod-9",
        "2026-01-02T03:04:05Z",
        "/data/app.db",
        "delete s3://bucket/app/walstream-owner.json",
    ] {
        assert!(msg.contains(part), "{part} missing in {msg}");
    }
    assert!(!msg.contains('\n'));
}

async fn fixture() -> DbFixture {
    let mut f = DbFixture::new("").await;
    f.insert(3).await;
    f
}

fn replica(f: &DbFixture, client: ReplicaClient) -> Arc<Replica> {
    Replica::new(Arc::clone(&f.db), f.cfg.clone(), client)
}

async fn stored(client: &ReplicaClient) -> Option<OwnerRecord> {
    let body = client.get_root_object(OWNER_OBJECT).await.expect("get")?;
    Some(OwnerRecord::parse(&body, "k").expect("parse"))
}

#[tokio::test]
async fn first_sync_claims_the_path_and_later_syncs_do_not_read_it_again() {
    let mut f = fixture().await;
    let r = replica(&f, f.client.clone());
    r.sync().await.expect("sync");
    let rec = stored(&f.client).await.expect("claimed");
    let id = f.db.database_id().expect("identity");
    assert_eq!(rec.identity, format_id(id));
    assert_eq!(rec.database, f.db.path().display().to_string());
    assert!(rec.tool.starts_with("walstream "));
    let gets = f.client.stats().operations(crate::storage::Op::Get);
    f.insert(2).await;
    r.sync().await.expect("sync again");
    assert_eq!(
        f.client.stats().operations(crate::storage::Op::Get),
        gets,
        "a confirmed owner reads nothing more"
    );
    assert!(!r.owner_refused());
}

#[tokio::test]
async fn another_identity_is_refused_without_writing_then_resumes_once_the_record_is_gone() {
    let f = fixture().await;
    let other = record(B, "/elsewhere/other.db", "other-host");
    f.client
        .put_root_object(OWNER_OBJECT, other.to_json(), false)
        .await
        .expect("seed");
    let r = replica(&f, f.client.clone());
    let err = r.sync().await.expect_err("refused");
    assert!(err.is_owner_conflict(), "{err}");
    assert!(err.to_string().contains("/elsewhere/other.db"), "{err}");
    assert!(r.owner_refused());
    assert!(r.status().owner_conflict.is_some());
    assert!(f.client.generations().await.expect("list").is_empty());
    assert!(
        r.snapshot()
            .await
            .expect_err("no snapshot")
            .is_owner_conflict()
    );
    assert!(f.client.generations().await.expect("list").is_empty());
    assert_eq!(stored(&f.client).await, Some(other), "record untouched");

    let key = object_store::path::Path::from(OWNER_OBJECT);
    use object_store::ObjectStoreExt;
    f.client
        .object_store()
        .delete(&key)
        .await
        .expect("delete record");
    r.sync().await.expect("resumes");
    assert!(!r.owner_refused());
    assert!(r.status().owner_conflict.is_none());
    assert_eq!(f.client.generations().await.expect("list").len(), 1);
}
