//! Backend-specific storage checks (part of the `storage_conformance` test crate): file replica
//! paths that are missing or regular files, object-store paths with a leading `/`, Azure
//! `Creation-Time` and paging, GCS `timeCreated`. Helpers come from the parent module.

use super::*;

// ---------------------------------------------------------------------------------------------
// File backend: nothing is created by reads, and bad replica paths fail only their operations
// (spec §1.1, Litestream's `os.ReadDir` behaviour).

mod file_paths {
    use super::*;

    fn client_at(dir: &std::path::Path) -> ReplicaClient {
        ReplicaClient::new(&ReplicaTarget::File {
            path: dir.to_path_buf(),
        })
        .unwrap_or_else(|e| panic!("building a file client touches nothing: {e}"))
        .with_retry_policy(RetryPolicy::fast(2))
    }

    #[tokio::test]
    async fn missing_directory_is_read_without_creating_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("typo/replica");
        let c = client_at(&dir);
        assert!(c.generations().await.expect("lists").is_empty());
        assert!(c.snapshots(GEN_A).await.expect("lists").is_empty());
        assert!(c.wal_segments(GEN_A).await.expect("lists").is_empty());
        let err = c.open_snapshot(GEN_A, 0).await.err().expect("missing");
        assert!(err.is_not_found(), "{err:?}");
        c.delete_generation(GEN_A).await.expect("nothing to delete");
        assert!(!tmp.path().join("typo").exists(), "reads created nothing");

        put_snap(&c, GEN_A, 0, small(1, 10)).await;
        let stored = dir.join(format!(
            "generations/{GEN_A}/snapshots/00000000.snapshot.lz4"
        ));
        assert!(stored.is_file(), "uploads create the directories");
        assert_eq!(c.generations().await.expect("lists"), vec![GEN_A]);
    }

    #[tokio::test]
    async fn replica_path_that_is_a_file_fails_with_its_path() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("replica");
        std::fs::write(&file, b"not a directory").expect("write");
        let c = client_at(&file);
        let shown = file.display().to_string();
        let err = c.generations().await.expect_err("cannot list below a file");
        let text = err.to_string();
        assert!(text.contains(&shown), "{text}");
        assert!(text.to_lowercase().contains("not a directory"), "{text}");
        let err = c
            .put_snapshot(GEN_A, 0, || chunked(small(1, 10), 10))
            .await
            .expect_err("cannot upload below a file");
        assert!(err.to_string().contains(&shown), "{err}");
        assert!(
            matches!(err, StorageError::Permanent { op: Op::Put, .. }),
            "{err:?}"
        );
        assert_eq!(c.stats().retries(), 0, "not retried");
        let kept = std::fs::read(&file).expect("still a file");
        assert_eq!(kept, b"not a directory");
    }

    #[tokio::test]
    async fn generations_that_is_a_file_is_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let generations = tmp.path().join("generations");
        std::fs::write(&generations, b"x").expect("write");
        let c = client_at(tmp.path());
        for err in [
            c.generations().await.expect_err("generations"),
            c.snapshots(GEN_A).await.expect_err("snapshots"),
            c.wal_segments(GEN_A).await.expect_err("wal"),
        ] {
            let text = err.to_string();
            assert!(text.to_lowercase().contains("not a directory"), "{text}");
            assert!(text.contains(&generations.display().to_string()), "{text}");
        }
    }

    /// LTX retention deletes oldest first, one file after the other: when a deletion stops
    /// (here a file that cannot be removed, in the crash suite a SIGKILL), what is left of the
    /// level is its newest files, never a hole between kept files.
    #[tokio::test]
    async fn ltx_deletion_stops_without_leaving_a_hole() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let c = client_at(tmp.path());
        let mut files = Vec::new();
        for txid in 1..=12u64 {
            let f = c
                .put_ltx(0, txid, txid, 1_763_782_062_869, || {
                    chunked(small(txid as u8, 100), 100)
                })
                .await
                .expect("put L0");
            files.push(f);
        }
        // TXID 6's name becomes a non-empty directory: removing it fails.
        let blocker = tmp.path().join("ltx/0").join(files[5].file_name());
        std::fs::remove_file(&blocker).expect("remove L0 6");
        std::fs::create_dir(&blocker).expect("directory in its place");
        std::fs::write(blocker.join("x"), b"x").expect("fill it");
        let mut doomed = files[..10].to_vec();
        doomed.reverse(); // the order given does not matter
        c.delete_ltx(&doomed).await.expect_err("TXID 6 cannot go");
        let left: Vec<u64> = c
            .ltx_files(0, walstream::storage::Timestamps::Listing)
            .await
            .expect("list")
            .iter()
            .map(|f| f.min_txid)
            .collect();
        // 1..=5 deleted, 6 is the directory (not listed), 7..=10 kept although doomed.
        assert_eq!(
            left,
            (7..=12).collect::<Vec<_>>(),
            "older gone, newer all kept"
        );
        assert!(blocker.is_dir());
    }
}

// ---------------------------------------------------------------------------------------------
// Object stores: a replica path with a leading `/` is refused when the client is built.

mod leading_slash {
    use super::*;

    #[test]
    fn object_store_paths_with_a_leading_slash_are_refused() {
        let s3 = ReplicaTarget::S3(S3Target {
            bucket: "bucket".into(),
            path: "/x".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        });
        let gcs = ReplicaTarget::Gcs(GcsTarget {
            bucket: "bucket".into(),
            path: "/x".into(),
            emulator_host: Some("127.0.0.1:9".into()),
        });
        let abs = ReplicaTarget::Abs(AbsTarget {
            account_name: Some(common::AZURITE_ACCOUNT.into()),
            account_key: Some(common::AZURITE_KEY.into()),
            bucket: "bucket".into(),
            path: "/x".into(),
            endpoint: Some("http://127.0.0.1:9/devstoreaccount1".into()),
            emulator_url: None,
        });
        for target in [s3, gcs, abs] {
            let err = ReplicaClient::new(&target).expect_err("refused");
            let text = err.to_string();
            assert!(
                text.contains(r#"replica path "/x" starts with "/""#),
                "{text}"
            );
            assert!(text.contains("remove the leading slash"), "{text}");
            let mut fine = target.clone();
            match &mut fine {
                ReplicaTarget::S3(t) => t.path = "x".into(),
                ReplicaTarget::Gcs(t) => t.path = "x".into(),
                ReplicaTarget::Abs(t) => t.path = "x".into(),
                ReplicaTarget::File { .. } => unreachable!("object stores only"),
            }
            ReplicaClient::new(&fine).unwrap_or_else(|e| panic!("x is fine: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Azure: our own List Blobs listing (Creation-Time, paging).

mod abs_listing {
    use super::*;
    use object_store::ClientOptions;
    use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};
    use object_store::client::{HttpConnector, HttpRequestBody, HttpResponse, ReqwestConnector};
    use std::time::{Duration, Instant};

    const GEN_C: &str = "00000000000000cc";

    /// A SharedKey-signed request to azurite for blob `key` (plus `query`, e.g. `?comp=...`).
    async fn azurite(method: http::Method, key: &str, query: &str, meta: u32) -> HttpResponse {
        let url = format!(
            "{}/{}/{}/{key}{query}",
            common::azurite_url().trim_end_matches('/'),
            common::AZURITE_ACCOUNT,
            common::bucket()
        );
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .header("x-ms-meta-touch", meta.to_string())
            .body(HttpRequestBody::empty())
            .expect("request");
        let key = AzureAccessKey::try_new(common::AZURITE_KEY).expect("azurite key");
        let credential = AzureCredential::AccessKey(key);
        AzureAuthorizer::new(&credential, common::AZURITE_ACCOUNT)
            .try_authorize(&mut request)
            .expect("sign");
        let options = ClientOptions::new().with_allow_http(true);
        let http = ReqwestConnector::default()
            .connect(&options)
            .expect("client");
        let response = http.execute(request).await.expect("azurite answers");
        assert!(response.status().is_success(), "{:?}", response.status());
        response
    }

    /// (`x-ms-creation-time`, `Last-Modified`) of a blob, from Get Blob Properties.
    async fn blob_times(key: &str) -> (DateTime<Utc>, DateTime<Utc>) {
        let response = azurite(http::Method::HEAD, key, "", 0).await;
        let time = |name: &str| {
            let raw = response
                .headers()
                .get(name)
                .expect(name)
                .to_str()
                .expect("ascii");
            DateTime::parse_from_rfc2822(raw)
                .expect(name)
                .with_timezone(&Utc)
        };
        (time("x-ms-creation-time"), time("last-modified"))
    }

    /// Rewrites `key`'s metadata until its `Last-Modified` is later than its `Creation-Time`
    /// (Set Blob Metadata changes only the former).
    async fn age_creation_time(key: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        for n in 1.. {
            azurite(http::Method::PUT, key, "?comp=metadata", n).await;
            let (created, modified) = blob_times(key).await;
            if modified > created {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Last-Modified of {key} never moved"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn created_times_are_blob_creation_times() {
        let fx = Fixture::new(Backend::Abs, "creation_time");
        let c = &fx.client;
        put_snap(c, GEN_A, 0, small(1, 32)).await;
        for offset in 0..3u64 {
            put_seg(c, GEN_A, 0, offset * 0x20, small(2, 32)).await;
        }
        let snapshot_key = layout::snapshot_key(c.root(), GEN_A, 0);
        age_creation_time(&snapshot_key).await;

        let snaps = c.snapshots(GEN_A).await.expect("snapshots");
        let (created, modified) = blob_times(&snapshot_key).await;
        assert_eq!(
            snaps[0].created_at, created,
            "snapshot CreatedAt = Creation-Time"
        );
        assert_ne!(snaps[0].created_at, modified, "not Last-Modified");
        for s in c.wal_segments(GEN_A).await.expect("segments") {
            let key = layout::segment_key(c.root(), GEN_A, s.index, s.offset);
            assert_eq!(s.created_at, blob_times(&key).await.0, "{key}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn listings_follow_pages() {
        let fx = Fixture::new(Backend::Abs, "paging");
        let c = fx.client.clone().with_list_page_size(2);
        for generation in [GEN_C, GEN_B] {
            put_snap(&c, generation, 0, small(1, 8)).await;
        }
        for index in 0..5 {
            put_snap(&c, GEN_A, index, small(2, 8)).await;
        }
        for offset in 0..7u64 {
            put_seg(&c, GEN_A, 0, offset * 0x20, small(3, 8)).await;
        }
        fx.put_raw("generations/stray.txt", b"foreign").await;
        let before = c.stats().operations(Op::List);
        assert_eq!(
            c.generations().await.expect("generations"),
            vec![GEN_C, GEN_A, GEN_B]
        );
        assert_eq!(
            indices(&c.snapshots(GEN_A).await.expect("snapshots")),
            vec![0, 1, 2, 3, 4]
        );
        let segs = c.wal_segments(GEN_A).await.expect("segments");
        assert_eq!(
            positions(&segs),
            (0..7u64).map(|o| (0, o * 0x20)).collect::<Vec<_>>()
        );
        // 4 generation entries (3 prefixes + stray.txt), 5 snapshots, 7 segments; 2 per page.
        assert_eq!(c.stats().operations(Op::List) - before, 2 + 3 + 4);
    }
}

// ---------------------------------------------------------------------------------------------
// GCS: CreatedAt is the object's `timeCreated` (what Litestream reads), to the millisecond that
// the XML listing carries.

mod gcs_listing {
    use super::*;

    /// `timeCreated` of `key` from fake-gcs-server's JSON API (as Litestream reads it).
    async fn time_created(key: &str) -> DateTime<Utc> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}",
            common::gcs_server().trim_end_matches('/'),
            common::bucket(),
            key.replace('/', "%2F")
        );
        let meta: serde_json::Value = reqwest::get(&url)
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .json()
            .await
            .expect("object metadata");
        let raw = meta["timeCreated"].as_str().expect("timeCreated");
        DateTime::parse_from_rfc3339(raw)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    fn millis(t: DateTime<Utc>) -> i64 {
        t.timestamp_millis()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn created_times_are_time_created() {
        let fx = Fixture::new(Backend::Gcs, "time_created");
        let c = &fx.client;
        put_snap(c, GEN_A, 0, small(1, 32)).await;
        for offset in 0..4u64 {
            put_seg(c, GEN_A, 0, offset * 0x20, small(2, 32)).await;
        }
        let snaps = c.snapshots(GEN_A).await.expect("snapshots");
        let mut pairs = vec![(
            snaps[0].created_at,
            time_created(&layout::snapshot_key(c.root(), GEN_A, 0)).await,
        )];
        for s in c.wal_segments(GEN_A).await.expect("segments") {
            let key = layout::segment_key(c.root(), GEN_A, s.index, s.offset);
            pairs.push((s.created_at, time_created(&key).await));
        }
        for (listed, created) in &pairs {
            assert_eq!(millis(*listed), millis(*created), "{listed} vs {created}");
        }
        assert!(
            pairs
                .iter()
                .any(|(listed, _)| listed.timestamp_subsec_millis() != 0),
            "listing times carry milliseconds: {pairs:?}"
        );
    }
}
