//! Builds the `object_store` client for a configured [`ReplicaTarget`] (spec §7.3–§7.4) and its
//! credential-free description.
//!
//! What must stay true:
//! - Cloud builders start from `from_env()` so each cloud's standard credential chain works
//!   (AWS web identity / container credentials / instance profile, Azure workload and managed
//!   identity, GCS application default credentials); explicit config values are applied on top.
//! - S3: region = configured, else `us-east-1` when an endpoint is set, else `AWS_REGION` /
//!   `AWS_DEFAULT_REGION` (through `from_env`), else looked up from the bucket on first use
//!   (HeadBucket, like Litestream's GetBucketLocation; see [`super::lazy`]). Path-style requests
//!   when an endpoint is set or `force-path-style`; virtual-hosted otherwise.
//! - Descriptions never contain keys or secrets.
//! - An object-store path starting with `/` is refused (see [`check_object_path`]).
//! - Azure listings use our own List Blobs request ([`super::azure_list`]) sharing the store's
//!   credential provider and client options.
//! - The file backend touches nothing when built: its store is a prefix (the absolute replica
//!   directory) over a store rooted at `/`, so directories are created by uploads only; keys stay
//!   relative (`generations/...`); it fsyncs written files and their directories, and its staging
//!   files (`<name>#<n>`) never parse as replica names.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential, resolve_bucket_region};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, StaticCredentialProvider};

use super::Lister;
use super::StorageError;
use super::azure_list;
use super::lazy::{InitFn, LazyStore};
use super::retry::inner_retry_config;
use crate::config::{AbsTarget, GcsTarget, ReplicaTarget, S3Target};

/// Region used when a custom endpoint is set without a region (like Litestream).
pub const DEFAULT_S3_REGION: &str = "us-east-1";
/// Time allowed to establish a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A read that stalls this long fails the request (it is then retried).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Backstop for a whole request. Large downloads that exceed it resume with range requests, so it
/// only needs to bound one 5 MiB part upload on a slow link.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What [`build`] produces for the client.
pub(super) struct Backend {
    pub store: Arc<dyn ObjectStore>,
    pub root: String,
    pub description: String,
    pub lister: Lister,
    /// File backend: the absolute replica directory.
    pub local_root: Option<PathBuf>,
}

pub(super) fn build(target: &ReplicaTarget) -> Result<Backend, StorageError> {
    let object_path = match target {
        ReplicaTarget::File { .. } => None,
        ReplicaTarget::S3(t) => Some(&t.path),
        ReplicaTarget::Gcs(t) => Some(&t.path),
        ReplicaTarget::Abs(t) => Some(&t.path),
    };
    if let Some(path) = object_path {
        check_object_path(path)?;
    }
    match target {
        ReplicaTarget::File { path } => file_backend(path),
        ReplicaTarget::S3(t) => s3_backend(t),
        ReplicaTarget::Gcs(t) => gcs_backend(t),
        ReplicaTarget::Abs(t) => abs_backend(t),
    }
}

/// Refuses a replica path with a leading `/`: Litestream keeps it in object keys
/// (`/x/generations/...`, spec §1.1), but `object_store` paths cannot start with an empty
/// segment, so we could neither read nor write the objects Litestream uses.
fn check_object_path(path: &str) -> Result<(), StorageError> {
    if !path.starts_with('/') {
        return Ok(());
    }
    Err(StorageError::Config(format!(
        "replica path {path:?} starts with \"/\": Litestream keeps the leading slash in object \
         keys (\"{}/generations/...\"), which walstream's object-store client cannot represent, \
         so such a path is not supported; remove the leading slash from the replica path \
         (objects already written under the slashed keys are then not seen)",
        path.trim_end_matches('/')
    )))
}

fn file_backend(dir: &std::path::Path) -> Result<Backend, StorageError> {
    let absolute = std::path::absolute(dir)
        .map_err(|e| StorageError::Config(format!("replica directory {}: {e}", dir.display())))?;
    // A prefix over a store rooted at `/`: unlike `LocalFileSystem::new_with_prefix`, this needs
    // no existing directory, so nothing is created before the first upload.
    let prefix = Path::from_absolute_path(&absolute)
        .map_err(|e| StorageError::Config(format!("replica directory {}: {e}", dir.display())))?;
    let store = PrefixStore::new(LocalFileSystem::new().with_fsync(true), prefix);
    Ok(Backend {
        store: Arc::new(store),
        root: String::new(),
        description: format!("file://{}", dir.display()),
        lister: Lister::Local,
        local_root: Some(absolute),
    })
}

fn s3_backend(t: &S3Target) -> Result<Backend, StorageError> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&t.bucket)
        .with_retry(inner_retry_config());
    if let Some(endpoint) = &t.endpoint {
        b = b.with_endpoint(endpoint);
    }
    let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
    match (&t.region, &endpoint) {
        (Some(region), _) => b = b.with_region(region),
        (None, Some(_)) => b = b.with_region(DEFAULT_S3_REGION),
        (None, None) => {} // from_env's AWS_REGION / AWS_DEFAULT_REGION, else looked up lazily
    }
    let path_style = endpoint.is_some() || t.force_path_style;
    b = b.with_virtual_hosted_style_request(!path_style);
    if let (Some(key_id), Some(secret)) = (&t.access_key_id, &t.secret_access_key) {
        // A static provider, so a session token from the environment is not mixed in.
        let credential = AwsCredential {
            key_id: key_id.clone(),
            secret_key: secret.clone(),
            token: None,
        };
        b = b.with_credentials(Arc::new(StaticCredentialProvider::new(credential)));
    }
    let allow_http = endpoint.as_deref().is_some_and(is_http);
    let options = client_options(allow_http, t.skip_verify);
    b = b.with_client_options(options.clone());
    // Built now even when the region is looked up later, so configuration errors surface here.
    let built = b.clone().build().map_err(|e| config_error("s3", e))?;
    let store: Arc<dyn ObjectStore> = match b.get_config_value(&AmazonS3ConfigKey::Region) {
        Some(_) => Arc::new(built),
        None => Arc::new(region_lookup_store(b, &t.bucket, options)),
    };
    Ok(Backend {
        store,
        root: t.path.clone(),
        description: s3_description(t, endpoint.as_deref()),
        lister: Lister::Store,
        local_root: None,
    })
}

/// An S3 store whose region is taken from the bucket (HeadBucket) before its first request.
fn region_lookup_store(
    builder: AmazonS3Builder,
    bucket: &str,
    options: ClientOptions,
) -> LazyStore {
    let bucket = bucket.to_string();
    let label = format!("s3://{bucket}");
    let init: InitFn = Arc::new(move || {
        let (builder, bucket, options) = (builder.clone(), bucket.clone(), options.clone());
        Box::pin(async move {
            let region = resolve_bucket_region(&bucket, &options).await?;
            tracing::info!(bucket, region, "resolved S3 bucket region");
            let store = builder.with_region(region).build()?;
            Ok(Arc::new(store) as Arc<dyn ObjectStore>)
        })
    });
    LazyStore::new(label, init)
}

fn s3_description(t: &S3Target, endpoint: Option<&str>) -> String {
    let mut d = url_like("s3", &t.bucket, &t.path);
    let mut params = Vec::new();
    if let Some(e) = endpoint {
        params.push(format!("endpoint={}", strip_userinfo(e)));
    }
    if let Some(r) = &t.region {
        params.push(format!("region={r}"));
    }
    if !params.is_empty() {
        d.push('?');
        d.push_str(&params.join("&"));
    }
    d
}

fn gcs_backend(t: &GcsTarget) -> Result<Backend, StorageError> {
    let b = match &t.emulator_host {
        Some(host) => emulator_gcs_builder(host),
        None => {
            GoogleCloudStorageBuilder::from_env().with_client_options(client_options(false, false))
        }
    };
    let store = b
        .with_bucket_name(&t.bucket)
        .with_retry(inner_retry_config())
        .build()
        .map_err(|e| config_error("gcs", e))?;
    let mut description = url_like("gcs", &t.bucket, &t.path);
    if let Some(host) = &t.emulator_host {
        description.push_str(&format!("?emulator={}", strip_userinfo(host)));
    }
    Ok(Backend {
        store: Arc::new(store),
        root: t.path.clone(),
        description,
        lister: Lister::Store,
        local_root: None,
    })
}

/// `STORAGE_EMULATOR_HOST` mode: no OAuth, requests go to the emulator's base URL. A host given
/// without scheme gets `http://` (as Google's Go client does).
fn emulator_gcs_builder(host: &str) -> GoogleCloudStorageBuilder {
    let base = if host.contains("://") {
        host.to_string()
    } else {
        format!("http://{host}")
    };
    let base = base.trim_end_matches('/').to_string();
    let key = serde_json::json!({
        "private_key": "",
        "private_key_id": "",
        "client_email": "",
        "gcs_base_url": base,
        "disable_oauth": true,
    });
    GoogleCloudStorageBuilder::new()
        .with_service_account_key(key.to_string())
        .with_client_options(client_options(is_http(&base), false))
}

fn abs_backend(t: &AbsTarget) -> Result<Backend, StorageError> {
    let mut b = MicrosoftAzureBuilder::from_env()
        .with_container_name(&t.bucket)
        .with_retry(inner_retry_config());
    if let Some(account) = &t.account_name {
        b = b.with_account(account);
    }
    if let Some(key) = &t.account_key {
        b = b.with_access_key(key);
    }
    // Litestream's endpoint is the account URL, e.g. `https://<account>.blob.core.windows.net`
    // or `http://127.0.0.1:10000/devstoreaccount1` for azurite; object_store appends
    // `/<container>/<blob>` to it and signs the full path, which is what azurite expects.
    if let Some(endpoint) = &t.endpoint {
        b = b.with_endpoint(endpoint.trim_end_matches('/').to_string());
    }
    let allow_http = t.endpoint.as_deref().is_some_and(is_http);
    let options = client_options(allow_http, false);
    b = b.with_client_options(options.clone());
    let store = b.clone().build().map_err(|e| config_error("abs", e))?;
    let lister = azure_list::lister_for(&b, &store, &options, t.emulator_url.as_deref())?;
    let container = match &t.account_name {
        Some(a) => format!("{a}@{}", t.bucket),
        None => t.bucket.clone(),
    };
    let mut description = url_like("abs", &container, &t.path);
    if let Some(e) = &t.endpoint {
        description.push_str(&format!("?endpoint={}", strip_userinfo(e)));
    }
    Ok(Backend {
        store: Arc::new(store),
        root: t.path.clone(),
        description,
        lister: Lister::Azure(lister),
        local_root: None,
    })
}

fn client_options(allow_http: bool, skip_verify: bool) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_allow_invalid_certificates(skip_verify)
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_read_timeout(READ_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT)
}

fn config_error(kind: &str, e: object_store::Error) -> StorageError {
    StorageError::Config(format!("build {kind} client: {e}"))
}

fn is_http(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
}

fn url_like(scheme: &str, host: &str, path: &str) -> String {
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}/{path}")
    }
}

/// Removes `user:password@` from a URL so descriptions never carry credentials.
fn strip_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match scheme {
        Some(s) => format!("{s}://{authority}{tail}"),
        None => format!("{authority}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_removed() {
        assert_eq!(strip_userinfo("http://u:p@h:9/x"), "http://h:9/x");
        assert_eq!(strip_userinfo("http://h:9"), "http://h:9");
        assert_eq!(strip_userinfo("h:9"), "h:9");
    }

    #[test]
    fn s3_description_has_no_secrets() {
        let t = S3Target {
            bucket: "b".into(),
            path: "db/x".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            access_key_id: Some("AKIDSECRET".into()),
            secret_access_key: Some("VERYSECRET".into()),
            ..Default::default()
        };
        let b = s3_backend(&t).expect("builds");
        assert_eq!(b.description, "s3://b/db/x?endpoint=http://127.0.0.1:9000");
        assert!(!b.description.contains("SECRET"));
    }

    #[test]
    fn s3_region_is_looked_up_only_without_region_endpoint_and_env() {
        let env = crate::config::process_env;
        let no_env_region = env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none();
        let bare = S3Target {
            bucket: "b".into(),
            ..Default::default()
        };
        let lazy = s3_backend(&bare)
            .expect("builds")
            .store
            .to_string()
            .starts_with("Lazy(");
        assert_eq!(lazy, no_env_region);
        let with_region = S3Target {
            region: Some("eu-west-1".into()),
            ..bare.clone()
        };
        assert!(
            !s3_backend(&with_region)
                .expect("builds")
                .store
                .to_string()
                .starts_with("Lazy(")
        );
        let with_endpoint = S3Target {
            endpoint: Some("http://127.0.0.1:1".into()),
            ..bare
        };
        assert!(
            !s3_backend(&with_endpoint)
                .expect("builds")
                .store
                .to_string()
                .starts_with("Lazy(")
        );
    }

    #[test]
    fn abs_description_names_account_and_container() {
        let t = AbsTarget {
            account_name: Some("acct".into()),
            account_key: Some("a2V5".into()),
            bucket: "cont".into(),
            path: "p".into(),
            endpoint: None,
            emulator_url: None,
        };
        let b = abs_backend(&t).expect("builds");
        assert_eq!(b.description, "abs://acct@cont/p");
    }

    #[test]
    fn file_backend_creates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("a/b");
        let b = file_backend(&sub).expect("builds");
        assert!(!dir.path().join("a").exists(), "nothing created");
        assert_eq!(b.root, "");
        assert_eq!(b.local_root.as_deref(), Some(sub.as_path()));
        assert_eq!(b.description, format!("file://{}", sub.display()));
    }

    #[test]
    fn file_backend_local_root_is_absolute() {
        let b = file_backend(std::path::Path::new("rel/replica")).expect("builds");
        let root = b.local_root.expect("file backend");
        assert!(root.is_absolute(), "{}", root.display());
        assert!(root.ends_with("rel/replica"), "{}", root.display());
    }

    #[test]
    fn leading_slash_object_paths_are_refused() {
        let s3 = ReplicaTarget::S3(S3Target {
            bucket: "b".into(),
            path: "/x".into(),
            endpoint: Some("http://127.0.0.1:1".into()),
            ..Default::default()
        });
        let gcs = ReplicaTarget::Gcs(GcsTarget {
            bucket: "b".into(),
            path: "/x/y".into(),
            emulator_host: None,
        });
        let abs = ReplicaTarget::Abs(AbsTarget {
            account_name: Some("acct".into()),
            account_key: Some("a2V5".into()),
            bucket: "cont".into(),
            path: "/x".into(),
            endpoint: None,
            emulator_url: None,
        });
        for target in [s3, gcs, abs] {
            let err = build(&target).err().expect("refused");
            let text = err.to_string();
            assert!(matches!(err, StorageError::Config(_)), "{err:?}");
            assert!(text.contains("starts with \"/\""), "{text}");
            assert!(text.contains("remove the leading slash"), "{text}");
        }
        assert!(check_object_path("x/y").is_ok());
        assert!(check_object_path("").is_ok());
    }
}
