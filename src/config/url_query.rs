//! Query parameters of `s3://` replica URLs, which Litestream v0.5 reads
//! (`s3://bucket/path?endpoint=…&region=…&forcePathStyle=true`): each one stands for a replica
//! key and is turned into that key, so the loader treats it like a key written in the file.
//!
//! What must stay true: this file is pure; a parameter maps to exactly the key Litestream v0.5
//! applies it to (`cmd/litestream/main.go` `NewS3ReplicaClientFromConfig`), with Litestream's
//! value rules (`true`/`false` words, positive integers, an endpoint without a scheme gets
//! `http://` when local and `https://` otherwise); an unknown parameter is reported, never
//! dropped silently; error texts never contain the URL's password or a parameter value that may
//! be secret (SSE keys).

use serde_yaml::Value;

use super::ConfigError;
use super::url::{percent_decode, redact_password};

/// The replica keys the query of `url` stands for (first spelling wins, as in Go), plus the
/// names of parameters Litestream does not know. Only `s3://` URLs carry settings.
pub(crate) fn s3_query_keys(url: &str) -> Result<QueryKeys, ConfigError> {
    let mut out = QueryKeys::default();
    if !url.to_ascii_lowercase().starts_with("s3://") {
        return Ok(out);
    }
    let pairs = query_pairs(url)?;
    let get = |names: &[&str]| {
        names.iter().find_map(|n| {
            pairs
                .iter()
                .find(|(k, v)| k == n && !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
        })
    };
    for (key, names, kind) in PARAMS {
        let Some((name, raw)) = get(names) else {
            continue;
        };
        let value = match kind {
            Kind::Text => Value::from(raw),
            Kind::Endpoint => Value::from(ensure_scheme(&raw)),
            Kind::TrueOnly => Value::from(raw == "true"),
            Kind::Bool => Value::from(matches!(
                raw.to_ascii_lowercase().as_str(),
                "true" | "1" | "t" | "yes"
            )),
            Kind::Positive => match raw.parse::<i64>() {
                Ok(n) if n > 0 => Value::from(n),
                _ => {
                    let reason = format!(
                        "invalid value for query parameter {name:?}: {raw:?} (must be a positive integer)"
                    );
                    return Err(bad(url, reason));
                }
            },
        };
        out.keys.push((key, value));
    }
    let known = |k: &str| PARAMS.iter().any(|(_, names, _)| names.contains(&k));
    out.unknown = pairs
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| !known(k))
        .collect();
    Ok(out)
}

/// What [`s3_query_keys`] found.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct QueryKeys {
    /// `(replica key, value)` in table order.
    pub keys: Vec<(&'static str, Value)>,
    /// Parameter names Litestream does not read.
    pub unknown: Vec<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Endpoint,
    /// Go's `== "true"`.
    TrueOnly,
    /// Go's `BoolQueryValue`.
    Bool,
    /// Go's `IntQueryValue`: a positive integer.
    Positive,
}

/// Replica key, accepted parameter names, value rule.
const PARAMS: &[(&str, &[&str], Kind)] = &[
    ("endpoint", &["endpoint"], Kind::Endpoint),
    ("region", &["region"], Kind::Text),
    ("force-path-style", &["forcePathStyle"], Kind::TrueOnly),
    ("skip-verify", &["skipVerify"], Kind::TrueOnly),
    ("sign-payload", &["signPayload", "sign-payload"], Kind::Bool),
    (
        "require-content-md5",
        &["requireContentMD5", "require-content-md5"],
        Kind::Bool,
    ),
    (
        "storage-class",
        &["storageClass", "storage-class"],
        Kind::Text,
    ),
    ("part-size", &["partSize", "part-size"], Kind::Positive),
    ("concurrency", &["concurrency"], Kind::Positive),
    (
        "sse-customer-algorithm",
        &["sseCustomerAlgorithm", "sse-customer-algorithm"],
        Kind::Text,
    ),
    (
        "sse-customer-key",
        &["sseCustomerKey", "sse-customer-key"],
        Kind::Text,
    ),
    (
        "sse-customer-key-md5",
        &["sseCustomerKeyMD5", "sse-customer-key-md5"],
        Kind::Text,
    ),
    (
        "sse-kms-key-id",
        &["sseKmsKeyId", "sse-kms-key-id"],
        Kind::Text,
    ),
];

/// `name=value` pairs of the query (`+` is a space, percent escapes decoded, as Go's
/// `url.ParseQuery`).
fn query_pairs(url: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let Some((_, rest)) = url.split_once('?') else {
        return Ok(Vec::new());
    };
    let query = rest.split('#').next().unwrap_or_default();
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let decode = |s: &str| percent_decode(&s.replace('+', " "));
        let k = decode(k).map_err(|e| bad(url, e))?;
        let v = decode(v).map_err(|e| bad(url, e))?;
        pairs.push((k, v));
    }
    Ok(pairs)
}

fn bad(url: &str, reason: String) -> ConfigError {
    ConfigError::BadUrl {
        url: redact_password(url.split('?').next().unwrap_or(url)),
        reason,
    }
}

/// Litestream's `EnsureEndpointScheme`: `http://` for local hosts, else `https://`.
fn ensure_scheme(endpoint: &str) -> String {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        return endpoint.to_string();
    }
    let host = endpoint.to_ascii_lowercase();
    let host = host.split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let local = host == "localhost"
        || host == "127.0.0.1"
        || [
            "192.168.", "10.", "172.16.", "172.17.", "172.18.", "172.19.", "172.2",
        ]
        .iter()
        .chain(&["172.30.", "172.31."])
        .any(|p| host.starts_with(p));
    let scheme = if local { "http" } else { "https" };
    format!("{scheme}://{endpoint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(url: &str) -> Vec<(&'static str, Value)> {
        s3_query_keys(url).expect("valid").keys
    }

    #[test]
    fn parameters_become_replica_keys() {
        assert_eq!(
            keys("s3://b/p?endpoint=127.0.0.1:9000&region=eu&forcePathStyle=true&skipVerify=yes"),
            vec![
                ("endpoint", Value::from("http://127.0.0.1:9000")),
                ("region", Value::from("eu")),
                ("force-path-style", Value::from(true)),
                ("skip-verify", Value::from(false)),
            ]
        );
        assert_eq!(
            keys(
                "s3://b/p?endpoint=s3.example.com&storage-class=GLACIER&partSize=5242880&signPayload=1"
            ),
            vec![
                ("endpoint", Value::from("https://s3.example.com")),
                ("sign-payload", Value::from(true)),
                ("storage-class", Value::from("GLACIER")),
                ("part-size", Value::from(5_242_880)),
            ]
        );
        assert!(keys("gcs://b/p?endpoint=x").is_empty());
        assert!(keys("s3://b/p").is_empty());
        let q = s3_query_keys("s3://b/p?colour=red&region=x%20y").expect("valid");
        assert_eq!(q.keys, vec![("region", Value::from("x y"))]);
        assert_eq!(q.unknown, vec!["colour".to_string()]);
    }

    #[test]
    fn bad_values_are_errors_without_the_password() {
        let e = s3_query_keys("s3://user:pw@b/p?concurrency=0").expect_err("zero");
        assert_eq!(
            e.to_string(),
            "invalid replica url s3://user@b/p: invalid value for query parameter \"concurrency\": \"0\" (must be a positive integer)"
        );
    }
}
