//! Azure Blob listings done by us (List Blobs, `comp=list`) instead of `object_store`, because
//! Litestream v0.3.13 takes a blob's `CreatedAt` from `Properties/Creation-Time` (spec §1.6) and
//! `object_store` only exposes `Last-Modified`. The two differ by a second for some blobs
//! (block-list uploads: the blob is created when the block list is committed, but its
//! `Creation-Time` may fall in the second before `Last-Modified`).
//!
//! What must stay true:
//! - Requests are authorized exactly as `object_store` authorizes its own: the credential comes
//!   from the built store's provider (`MicrosoftAzure::credentials()`) and is applied with
//!   `object_store`'s [`AzureAuthorizer`] (SharedKey signing, SAS query pairs, or bearer token,
//!   plus `x-ms-date`/`x-ms-version`), so every credential source `object_store` resolves works.
//! - The container URL is derived from the builder configuration the same way `object_store`
//!   derives it (emulator: `AZURITE_BLOB_STORAGE_URL`, resolved by `config` and passed in, +
//!   `/<account>/<container>`; otherwise the endpoint or `https://<account>.blob.core.windows.net`,
//!   + `/<container>`).
//! - One call = one HTTP request for one page; the caller follows `next_marker` and retries each
//!   page. Errors never contain the request URL (a SAS token lives in its query).
//! - `created_at` is `Creation-Time`; only a service that omits it falls back to `Last-Modified`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::header::HeaderValue;
use object_store::ClientOptions;
#[cfg(test)]
use object_store::azure::AzureCredential;
use object_store::azure::{
    AzureAuthorizer, AzureConfigKey, AzureCredentialProvider, MicrosoftAzureBuilder,
};
use object_store::client::{
    HttpClient, HttpConnector, HttpRequest, HttpRequestBody, ReqwestConnector,
};
use reqwest::Url;
use serde::Deserialize;

use super::StorageError;
use super::listing::{DirListing, ListedFile};

const STORE: &str = "MicrosoftAzure";
/// Emulator defaults used by `object_store` (and Microsoft's SDKs).
const EMULATOR_DEFAULT_URL: &str = "http://127.0.0.1:10000";
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
/// Service version sent when no credential adds one (skip-signature mode).
const SERVICE_VERSION: &str = "2023-11-03";
/// Longest part of an error response body quoted in an error.
const MAX_ERROR_BODY: usize = 300;

/// Lists blobs of one container with `Creation-Time`.
#[derive(Debug)]
pub(super) struct AzureLister {
    http: HttpClient,
    credentials: AzureCredentialProvider,
    account: String,
    /// `<service>/<container>` (emulator: `<service>/<account>/<container>`).
    container_url: Url,
    skip_signature: bool,
}

/// One page of a delimiter listing.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Page {
    pub listing: DirListing,
    /// Marker of the next page; `None` on the last page.
    pub next_marker: Option<String>,
}

/// A List Blobs request answered with a non-success status.
#[derive(Debug, thiserror::Error)]
#[error("List Blobs: HTTP status {status}: {body}")]
pub struct ListStatusError {
    pub status: u16,
    /// Start of the response body (Azure's error code and message).
    pub body: String,
}

/// A List Blobs response that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("List Blobs: unexpected response: {0}")]
pub struct ListFormatError(String);

impl AzureLister {
    /// The lister for the container `builder` is configured for, using `credentials` (from the
    /// built store) and the same client options as the store; `emulator_url` is the emulator's
    /// blob service (default `http://127.0.0.1:10000`) when the builder uses the emulator.
    pub fn new(
        builder: &MicrosoftAzureBuilder,
        credentials: AzureCredentialProvider,
        options: &ClientOptions,
        emulator_url: Option<&str>,
    ) -> Result<Self, StorageError> {
        let cfg = |key| builder.get_config_value(&key);
        let container = cfg(AzureConfigKey::ContainerName)
            .ok_or_else(|| StorageError::Config("azure: no container name".into()))?;
        let emulator = is_true(cfg(AzureConfigKey::UseEmulator));
        let (service, account) = if emulator {
            let url = emulator_url.unwrap_or(EMULATOR_DEFAULT_URL).to_string();
            let account = cfg(AzureConfigKey::AccountName).unwrap_or(EMULATOR_ACCOUNT.into());
            (url, account)
        } else {
            let account = cfg(AzureConfigKey::AccountName)
                .ok_or_else(|| StorageError::Config("azure: no account name".into()))?;
            let host = match is_true(cfg(AzureConfigKey::UseFabricEndpoint)) {
                true => "blob.fabric.microsoft.com",
                false => "blob.core.windows.net",
            };
            let url = cfg(AzureConfigKey::Endpoint)
                .unwrap_or_else(|| format!("https://{account}.{host}"));
            (url, account)
        };
        let mut container_url = Url::parse(&service)
            .map_err(|e| StorageError::Config(format!("azure endpoint {service:?}: {e}")))?;
        {
            let mut segments = container_url.path_segments_mut().map_err(|()| {
                StorageError::Config(format!("azure endpoint {service:?} cannot be a base URL"))
            })?;
            segments.pop_if_empty();
            if emulator {
                segments.push(&account);
            }
            segments.push(&container);
        }
        let options = options
            .clone()
            .with_allow_http(emulator || is_http(&container_url));
        let http = ReqwestConnector::default()
            .connect(&options)
            .map_err(|e| StorageError::Config(format!("azure listing client: {e}")))?;
        Ok(Self {
            http,
            credentials,
            account,
            container_url,
            skip_signature: is_true(cfg(AzureConfigKey::SkipSignature)),
        })
    }

    /// A lister for an explicit container URL (tests against a local server).
    #[cfg(test)]
    pub fn for_url(container_url: Url, account: &str, credential: AzureCredential) -> Self {
        let credentials: AzureCredentialProvider =
            Arc::new(object_store::StaticCredentialProvider::new(credential));
        let options = ClientOptions::new().with_allow_http(true);
        Self {
            http: ReqwestConnector::default()
                .connect(&options)
                .expect("http client"),
            credentials,
            account: account.to_string(),
            container_url,
            skip_signature: false,
        }
    }

    /// One page of the delimiter listing of `dir_key` (`<dir_key>/` prefix, `/` delimiter),
    /// starting at `marker`, with at most `max_results` entries when given.
    pub async fn list_page(
        &self,
        dir_key: &str,
        marker: Option<&str>,
        max_results: Option<u32>,
    ) -> Result<Page, object_store::Error> {
        let prefix = format!("{}/", dir_key.trim_end_matches('/'));
        let mut url = self.container_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("restype", "container")
                .append_pair("comp", "list")
                .append_pair("prefix", &prefix)
                .append_pair("delimiter", "/");
            if let Some(m) = marker.filter(|m| !m.is_empty()) {
                q.append_pair("marker", m);
            }
            if let Some(n) = max_results {
                q.append_pair("maxresults", &n.to_string());
            }
        }
        let body = self.get(url).await?;
        parse_page(&body).map_err(generic)
    }

    /// Sends an authorized GET and returns the body of a 2xx answer.
    async fn get(&self, url: Url) -> Result<bytes::Bytes, object_store::Error> {
        let mut request = http::Request::builder()
            .method(http::Method::GET)
            .uri(url.as_str())
            .body(HttpRequestBody::empty())
            .map_err(generic)?;
        self.authorize(&mut request).await?;
        let response = self.http.execute(request).await.map_err(generic)?;
        let status = response.status();
        let body = response.into_body().bytes().await.map_err(generic)?;
        if status.is_success() {
            return Ok(body);
        }
        let text = String::from_utf8_lossy(&body);
        let err = ListStatusError {
            status: status.as_u16(),
            body: text.chars().take(MAX_ERROR_BODY).collect(),
        };
        Err(match status.as_u16() {
            404 => object_store::Error::NotFound {
                path: self.container_url.path().to_string(),
                source: Box::new(err),
            },
            _ => generic(err),
        })
    }

    async fn authorize(&self, request: &mut HttpRequest) -> Result<(), object_store::Error> {
        if self.skip_signature {
            request
                .headers_mut()
                .insert("x-ms-version", HeaderValue::from_static(SERVICE_VERSION));
            return Ok(());
        }
        let credential = self.credentials.get_credential().await?;
        AzureAuthorizer::new(&credential, &self.account).try_authorize(request)
    }
}

/// Builds the lister for a store built from `builder` (its credential provider is shared).
pub(super) fn lister_for(
    builder: &MicrosoftAzureBuilder,
    store: &object_store::azure::MicrosoftAzure,
    options: &ClientOptions,
    emulator_url: Option<&str>,
) -> Result<Arc<AzureLister>, StorageError> {
    let credentials = Arc::clone(store.credentials());
    let lister = AzureLister::new(builder, credentials, options, emulator_url)?;
    Ok(Arc::new(lister))
}

fn generic(e: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(e),
    }
}

fn is_true(value: Option<String>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "1" | "true" | "on" | "yes" | "y"
        )
    })
}

fn is_http(url: &Url) -> bool {
    url.scheme().eq_ignore_ascii_case("http")
}

// ---------------------------------------------------------------------------------------------
// Response parsing

#[derive(Debug, Deserialize)]
struct EnumerationResults {
    #[serde(rename = "Blobs", default)]
    blobs: BlobsXml,
    #[serde(rename = "NextMarker", default)]
    next_marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct BlobsXml {
    #[serde(rename = "Blob", default)]
    blobs: Vec<BlobXml>,
    #[serde(rename = "BlobPrefix", default)]
    prefixes: Vec<PrefixXml>,
}

#[derive(Debug, Deserialize)]
struct BlobXml {
    #[serde(rename = "Name")]
    name: NameXml,
    #[serde(rename = "Properties")]
    properties: PropertiesXml,
}

#[derive(Debug, Deserialize)]
struct PrefixXml {
    #[serde(rename = "Name")]
    name: NameXml,
}

/// `<Name>` may carry an `Encoded="true"` attribute (names with characters XML cannot carry);
/// such names are never replica names, so the text is taken as is.
#[derive(Debug, Deserialize)]
struct NameXml {
    #[serde(rename = "$text", default)]
    text: String,
}

#[derive(Debug, Deserialize)]
struct PropertiesXml {
    #[serde(rename = "Creation-Time", default)]
    creation_time: Option<String>,
    #[serde(rename = "Last-Modified", default)]
    last_modified: Option<String>,
    #[serde(rename = "Content-Length")]
    content_length: u64,
}

/// Parses one List Blobs response into a page: prefixes and blob names reduced to their last
/// path segment, blobs with size and creation time.
pub(super) fn parse_page(xml: &[u8]) -> Result<Page, ListFormatError> {
    let text = std::str::from_utf8(xml).map_err(|e| ListFormatError(e.to_string()))?;
    let parsed: EnumerationResults =
        quick_xml::de::from_str(text).map_err(|e| ListFormatError(e.to_string()))?;
    let mut listing = DirListing::default();
    for p in parsed.blobs.prefixes {
        let name = p.name.text.trim_end_matches('/');
        listing.dirs.push(last_segment(name).to_string());
    }
    for b in parsed.blobs.blobs {
        let created_at = created_at(&b.properties)
            .map_err(|e| ListFormatError(format!("blob {:?}: {e}", b.name.text)))?;
        listing.files.push(ListedFile {
            name: last_segment(&b.name.text).to_string(),
            size: b.properties.content_length,
            created_at,
        });
    }
    Ok(Page {
        listing,
        next_marker: parsed.next_marker.filter(|m| !m.is_empty()),
    })
}

fn created_at(p: &PropertiesXml) -> Result<DateTime<Utc>, String> {
    let raw = p
        .creation_time
        .as_deref()
        .or(p.last_modified.as_deref())
        .ok_or("neither Creation-Time nor Last-Modified")?;
    DateTime::parse_from_rfc2822(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("bad time {raw:?}: {e}"))
}

fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/devstoreaccount1" ContainerName="c">
  <Prefix>r/generations/0123456789abcdef/wal/</Prefix><Marker/><MaxResults>2</MaxResults>
  <Delimiter>/</Delimiter>
  <Blobs>
    <Blob><Name>r/generations/0123456789abcdef/wal/00000000_00000000.wal.lz4</Name>
      <Properties><Creation-Time>Tue, 06 May 2025 10:00:00 GMT</Creation-Time>
        <Last-Modified>Tue, 06 May 2025 10:00:01 GMT</Last-Modified><Etag>0x1</Etag>
        <Content-Length>4128</Content-Length><BlobType>BlockBlob</BlobType></Properties>
    </Blob>
    <BlobPrefix><Name>r/generations/0123456789abcdef/wal/sub/</Name></BlobPrefix>
    <Blob><Name Encoded="false">r/generations/0123456789abcdef/wal/00000000_00001020.wal.lz4</Name>
      <Properties><Last-Modified>Tue, 06 May 2025 10:00:05 GMT</Last-Modified>
        <Content-Length>77</Content-Length></Properties>
    </Blob>
  </Blobs>
  <NextMarker>2!88!MDAwMDQ2IXI=</NextMarker>
</EnumerationResults>"#;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn parses_blobs_prefixes_creation_time_and_marker() {
        let page = parse_page(PAGE.as_bytes()).expect("parses");
        assert_eq!(page.next_marker.as_deref(), Some("2!88!MDAwMDQ2IXI="));
        assert_eq!(page.listing.dirs, vec!["sub"]);
        let files = &page.listing.files;
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].name, "00000000_00000000.wal.lz4");
        assert_eq!(files[0].size, 4128);
        assert_eq!(
            files[0].created_at,
            at("2025-05-06T10:00:00Z"),
            "Creation-Time wins over Last-Modified"
        );
        assert_eq!(files[1].name, "00000000_00001020.wal.lz4");
        assert_eq!(
            files[1].created_at,
            at("2025-05-06T10:00:05Z"),
            "Last-Modified when Creation-Time is absent"
        );
    }

    #[test]
    fn last_page_and_empty_listing() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Prefix>g/</Prefix><Blobs /><NextMarker /></EnumerationResults>"#;
        let page = parse_page(xml.as_bytes()).expect("parses");
        assert_eq!(page, Page::default());
        let xml = r#"<EnumerationResults><Blobs><BlobPrefix><Name>generations/aaaaaaaaaaaaaaaa/</Name></BlobPrefix></Blobs></EnumerationResults>"#;
        let page = parse_page(xml.as_bytes()).expect("parses");
        assert_eq!(page.listing.dirs, vec!["aaaaaaaaaaaaaaaa"]);
        assert_eq!(page.next_marker, None);
    }

    #[test]
    fn rejects_garbage_and_bad_times() {
        assert!(parse_page(b"<html>oops").is_err());
        let xml = r#"<EnumerationResults><Blobs><Blob><Name>a</Name><Properties><Creation-Time>yesterday</Creation-Time><Content-Length>1</Content-Length></Properties></Blob></Blobs></EnumerationResults>"#;
        let err = parse_page(xml.as_bytes()).expect_err("bad time");
        assert!(err.to_string().contains("yesterday"), "{err}");
    }

    /// A local List Blobs server: answers 503 once, then two pages split by a marker; records
    /// every request's query and `Authorization` header.
    mod server {
        use super::*;
        use crate::storage::{
            ErrorClass, Lister, Op, Parts, ReplicaClient, RetryPolicy, StorageError,
        };
        use axum::extract::{RawQuery, State};
        use axum::http::{HeaderMap, StatusCode};
        use object_store::azure::AzureAccessKey;
        use object_store::memory::InMemory;
        use std::sync::Mutex;

        const GEN: &str = "0123456789abcdef";

        #[derive(Default)]
        struct Seen {
            requests: Vec<(String, String, String)>,
        }

        type Shared = Arc<Mutex<Seen>>;

        fn blob(name: &str, created: &str) -> String {
            format!(
                "<Blob><Name>r/generations/{GEN}/wal/{name}</Name><Properties>\
                 <Creation-Time>{created}</Creation-Time>\
                 <Last-Modified>Tue, 06 May 2025 11:00:00 GMT</Last-Modified>\
                 <Content-Length>10</Content-Length></Properties></Blob>"
            )
        }

        async fn list(
            State(seen): State<(Shared, u16)>,
            RawQuery(query): RawQuery,
            headers: HeaderMap,
        ) -> (StatusCode, String) {
            let (seen, fail_with) = seen;
            let query = query.unwrap_or_default();
            let header = |h: &str| {
                headers
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            let n = {
                let mut s = seen.lock().expect("lock");
                let entry = (
                    query.clone(),
                    header("authorization"),
                    header("x-ms-version"),
                );
                s.requests.push(entry);
                s.requests.len()
            };
            if n == 1 || fail_with == 403 {
                let code = StatusCode::from_u16(fail_with).expect("status");
                return (code, "<Error><Code>Busy</Code></Error>".into());
            }
            let (blobs, next) = if query.contains("marker=") {
                (
                    blob("00000000_00000020.wal.lz4", "Tue, 06 May 2025 10:00:02 GMT"),
                    "",
                )
            } else {
                (
                    blob("00000000_00000000.wal.lz4", "Tue, 06 May 2025 10:00:01 GMT"),
                    "m%1",
                )
            };
            let body = format!(
                "<?xml version=\"1.0\"?><EnumerationResults><Blobs>{blobs}</Blobs>\
                 <NextMarker>{next}</NextMarker></EnumerationResults>"
            );
            (StatusCode::OK, body)
        }

        async fn start(fail_with: u16) -> (Url, Shared) {
            let seen: Shared = Arc::default();
            let app = axum::Router::new()
                .route("/devstoreaccount1/cont", axum::routing::get(list))
                .with_state((Arc::clone(&seen), fail_with));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, app).await });
            let url = Url::parse(&format!("http://{addr}/devstoreaccount1/cont")).expect("url");
            (url, seen)
        }

        fn client(url: Url) -> ReplicaClient {
            let key = AzureAccessKey::try_new("a2V5a2V5a2V5").expect("key");
            let lister =
                AzureLister::for_url(url, "devstoreaccount1", AzureCredential::AccessKey(key));
            ReplicaClient::from_parts(Parts {
                store: Arc::new(InMemory::new()),
                root: "r".into(),
                replica_type: "abs",
                description: "abs://test".into(),
                lister: Lister::Azure(Arc::new(lister)),
                local_root: None,
            })
            .with_retry_policy(RetryPolicy::fast(3))
            .with_list_page_size(1)
        }

        #[tokio::test]
        async fn pages_are_followed_retried_signed_and_counted() {
            let (url, seen) = start(503).await;
            let c = client(url);
            let segs = c.wal_segments(GEN).await.expect("listing");
            let got: Vec<(u64, String)> = segs
                .iter()
                .map(|s| (s.offset, s.created_at.to_rfc3339()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (0, "2025-05-06T10:00:01+00:00".to_string()),
                    (0x20, "2025-05-06T10:00:02+00:00".to_string()),
                ]
            );
            assert_eq!(c.stats().operations(Op::List), 2, "one LIST per page");
            assert_eq!(c.stats().retries(), 1, "the 503 was retried");
            let requests = &seen.lock().expect("lock").requests;
            assert_eq!(requests.len(), 3);
            for (query, auth, version) in requests {
                for part in [
                    "restype=container",
                    "comp=list",
                    "delimiter=%2F",
                    "maxresults=1",
                ] {
                    assert!(query.contains(part), "{part} missing in {query}");
                }
                assert!(
                    query.contains(&format!("prefix=r%2Fgenerations%2F{GEN}%2Fwal%2F")),
                    "{query}"
                );
                assert!(auth.starts_with("SharedKey devstoreaccount1:"), "{auth}");
                assert!(!version.is_empty(), "x-ms-version is sent");
            }
            assert!(!requests[1].0.contains("marker="), "{}", requests[1].0);
            assert!(requests[2].0.contains("marker=m%251"), "{}", requests[2].0);
        }

        #[tokio::test]
        async fn access_denied_is_not_retried() {
            let (url, seen) = start(403).await;
            let c = client(url);
            let err = c.generations().await.expect_err("403 fails");
            assert!(
                matches!(err, StorageError::Permanent { op: Op::List, .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains("403"), "{err}");
            assert!(!err.to_string().contains("sig="), "no URL in errors: {err}");
            assert_eq!(seen.lock().expect("lock").requests.len(), 1);
            assert_eq!(c.stats().errors(ErrorClass::Permanent), 1);
        }
    }
}
