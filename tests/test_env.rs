//! Checks the test environment that `scripts/test.sh` sets up: every storage server answers and
//! holds the shared bucket, object_store round-trips on each (GCS through the translating proxy),
//! both real Litestream binaries run and reach every backend through the shared helpers' config,
//! URL and environment, and the helpers themselves behave.
//!
//! Must stay true: these tests fail loudly (never skip) when a server or binary is missing.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Backend, unique_name};
use futures::TryStreamExt;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutPayload};

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Status code of a plain `GET` on `http://HOST:PORT/path` (std only, HTTP/1.0).
fn http_status(base: &str, path: &str) -> u16 {
    let host = base
        .strip_prefix("http://")
        .expect("test server URLs are http://");
    let mut conn = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {base}: {e}"));
    conn.set_read_timeout(Some(HTTP_TIMEOUT))
        .expect("set read timeout");
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("send request");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).ok();
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    status
        .parse()
        .unwrap_or_else(|_| panic!("no HTTP status from {base}{path}: {answer:?}"))
}

/// put, get, list, create-if-absent conflict, delete of one object under a fresh prefix.
async fn round_trip(store: Arc<dyn ObjectStore>, what: &str) {
    let prefix = ObjPath::from(unique_name("test-env"));
    let key = prefix.clone().join("hello.txt");
    store
        .put(&key, PutPayload::from_static(b"hello"))
        .await
        .unwrap_or_else(|e| panic!("{what} put: {e}"));
    let got = store
        .get(&key)
        .await
        .unwrap_or_else(|e| panic!("{what} get: {e}"));
    assert_eq!(
        got.bytes().await.expect("read body").as_ref(),
        b"hello",
        "{what} get"
    );
    let listed: Vec<_> = store.list(Some(&prefix)).try_collect().await.expect("list");
    let keys: Vec<_> = listed.iter().map(|m| m.location.clone()).collect();
    assert_eq!(keys, vec![key.clone()], "{what} list");
    let again = store
        .put_opts(&key, PutPayload::from_static(b"x"), PutMode::Create.into())
        .await;
    assert!(
        matches!(again, Err(object_store::Error::AlreadyExists { .. })),
        "{what}: create-if-absent over an existing object must fail, got {again:?}"
    );
    store
        .delete(&key)
        .await
        .unwrap_or_else(|e| panic!("{what} delete: {e}"));
    let gone = store.head(&key).await;
    assert!(
        matches!(gone, Err(object_store::Error::NotFound { .. })),
        "{what} head after delete: {gone:?}"
    );
}

#[test]
fn moto_answers() {
    assert_eq!(http_status(&common::s3_endpoint(), "/moto-api/"), 200);
}

#[test]
fn fake_gcs_server_answers_and_has_the_bucket() {
    let path = format!("/storage/v1/b/{}", common::bucket());
    assert_eq!(http_status(&common::gcs_server(), &path), 200);
}

#[tokio::test]
async fn s3_round_trip_on_moto() {
    let store = common::moto_store();
    round_trip(Arc::new(store), "s3").await;
}

#[tokio::test]
async fn azure_round_trip_on_azurite() {
    let store = MicrosoftAzureBuilder::new()
        .with_account(common::AZURITE_ACCOUNT)
        .with_access_key(common::AZURITE_KEY)
        .with_container_name(common::bucket())
        .with_endpoint(format!(
            "{}/{}",
            common::azurite_url(),
            common::AZURITE_ACCOUNT
        ))
        .with_allow_http(true)
        .build()
        .expect("build Azure store");
    round_trip(Arc::new(store), "azure").await;
}

#[tokio::test]
async fn gcs_round_trip_through_the_proxy() {
    let key = serde_json::json!({
        "gcs_base_url": common::gcs_proxy(),
        "disable_oauth": true,
        "client_email": "",
        "private_key": "",
        "private_key_id": "",
    });
    let store = GoogleCloudStorageBuilder::new()
        .with_bucket_name(common::bucket())
        .with_service_account_key(key.to_string())
        .with_client_options(ClientOptions::new().with_allow_http(true))
        .build()
        .expect("build GCS store");
    round_trip(Arc::new(store), "gcs").await;
}

#[test]
fn litestream_binaries_print_their_versions() {
    let out = common::run(Command::new(common::litestream_bin()).arg("version"));
    assert_eq!(common::stdout_text(&out).trim(), "v0.3.13");
    let out = common::run(Command::new(common::litestream5_bin()).arg("version"));
    assert_eq!(common::stdout_text(&out).trim(), "0.5.17");
}

/// A small WAL-mode database and a Litestream config with `backend`'s replica entry.
fn config_for(
    backend: Backend,
    dir: &Path,
    prefix: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let db = dir.join("app.db");
    let conn = rusqlite::Connection::open(&db).expect("create db");
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
        .expect("init db");
    let entry = backend.replica_list_item(prefix, &dir.join("replica"), 6);
    let yaml = format!("dbs:\n  - path: {}\n    replicas:\n{entry}", db.display());
    let config = dir.join("litestream.yml");
    std::fs::write(&config, yaml).expect("write config");
    (config, db)
}

/// `litestream generations` exits 0 even when it cannot reach the replica (it logs `ERROR` on
/// stderr), so success means: exit 0, nothing on stderr, only the table header on stdout.
fn assert_lists_empty_replica(backend: Backend, cmd: &mut Command) {
    let out = common::run(cmd);
    let stdout = common::stdout_text(&out);
    assert!(
        out.stderr.is_empty() && stdout.starts_with("name") && stdout.lines().count() == 1,
        "{backend:?}: {}",
        common::describe(cmd, &out)
    );
}

#[test]
fn litestream_reaches_every_backend_by_config() {
    for backend in Backend::ALL {
        let dir = tempfile::tempdir().expect("temp dir");
        let (config, db) = config_for(backend, dir.path(), &unique_name("test-env"));
        let mut cmd = Command::new(common::litestream_bin());
        cmd.arg("generations").arg("-config").arg(&config).arg(&db);
        cmd.envs(backend.env_for_litestream());
        assert_lists_empty_replica(backend, &mut cmd);
    }
}

#[test]
fn litestream_reaches_every_backend_by_url() {
    for backend in Backend::ALL {
        let dir = tempfile::tempdir().expect("temp dir");
        let Some(url) = backend.replica_url(&unique_name("test-env"), dir.path()) else {
            assert_eq!(
                backend,
                Backend::Abs,
                "only abs:// cannot name the emulator"
            );
            continue;
        };
        let mut cmd = Command::new(common::litestream_bin());
        cmd.arg("generations")
            .arg(&url)
            .envs(backend.env_for_litestream());
        assert_lists_empty_replica(backend, &mut cmd);
    }
}

#[test]
fn replica_yaml_is_a_mapping_with_the_backend_type() {
    let dir = Path::new("/tmp/replica dir");
    for backend in Backend::ALL {
        let yaml = backend.replica_yaml("some/prefix", dir);
        let map: serde_yaml::Mapping = serde_yaml::from_str(&yaml).expect("replica yaml parses");
        let get = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_string);
        assert_eq!(get("type").as_deref(), Some(backend.name()), "{yaml}");
        let want_path = if backend == Backend::File {
            "/tmp/replica dir"
        } else {
            "some/prefix"
        };
        assert_eq!(get("path").as_deref(), Some(want_path), "{yaml}");
    }
}

#[test]
fn unique_names_differ_and_are_key_safe() {
    let a = unique_name("Some Tag");
    let b = unique_name("Some Tag");
    assert_ne!(a, b);
    assert!(a.starts_with("some-tag-"), "{a}");
    let safe = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    assert!(a.chars().all(safe), "{a}");
}

#[test]
#[should_panic(expected = "is not set: run the tests with scripts/test.sh")]
fn a_missing_server_variable_fails_the_test() {
    common::require_env("WALSTREAM_TEST_SURELY_NOT_SET_ANYWHERE");
}
