//! Replica URLs (spec §7.4): `file://`, `s3://`, `gcs://` (alias `gs://`), `abs://`; `sftp://`
//! is recognised only to be refused.
//!
//! Invariants: this file is pure (no environment, no filesystem); s3/gcs/abs paths lose their
//! leading `/` and are cleaned like Go's `path.Clean` (an empty path stays empty); file paths are
//! cleaned and absolute; the S3 host-pattern table matches Litestream's `s3.ParseHost` regexes
//! byte for byte (including their unescaped dots); error texts never contain a password.

use std::path::PathBuf;
use std::sync::LazyLock;

use regex::Regex;

use super::paths::clean_unix_path;
use super::{AbsTarget, ConfigError, GcsTarget, ReplicaTarget, S3Target};

/// True when `s` starts like a URL: one or more ASCII word characters followed by `://`
/// (Litestream's `^\w+://`).
pub fn is_url(s: &str) -> bool {
    let word = s
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    word > 0 && s[word..].starts_with("://")
}

/// The pieces of a `scheme://[user[:password]@]host/path` URL (query and fragment dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    /// Lower-cased, as Go's `url.Parse` does.
    pub scheme: String,
    pub user: Option<String>,
    pub host: String,
    /// Percent-decoded path, as written (not cleaned).
    pub path: String,
}

/// Splits a URL into its parts. Requires the `scheme://` form.
pub(crate) fn split_url(url: &str) -> Result<UrlParts, ConfigError> {
    let bad = |reason: &str| ConfigError::BadUrl {
        url: redact_password(url),
        reason: reason.to_string(),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(ConfigError::MissingScheme(redact_password(url)));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(bad("invalid scheme"));
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, raw_path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if let Some(c) = host.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(&format!("invalid character {c:?} in host name")));
    }
    let user = match userinfo {
        Some(info) => {
            let name = info.split(':').next().unwrap_or_default();
            Some(percent_decode(name).map_err(|e| bad(&e))?)
        }
        None => None,
    };
    Ok(UrlParts {
        scheme: scheme.to_ascii_lowercase(),
        user,
        host: host.to_string(),
        path: percent_decode(raw_path).map_err(|e| bad(&e))?,
    })
}

pub(crate) fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).unwrap_or("");
            let value = u8::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.len() == 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
            let Some(value) = value else {
                let shown: String = s[i..].chars().take(3).collect();
                return Err(format!("invalid URL escape {shown:?}"));
            };
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoded path is not UTF-8".to_string())
}

/// Removes the `:password` part of a URL's user info (for error messages and logs).
pub fn redact_password(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!(
                "{}{}{}",
                &url[..start + colon],
                &authority[at..],
                &url[authority_end..]
            )
        }
        _ => url.to_string(),
    }
}

/// Parses a replica URL into a target (spec §7.4). Pure: credentials and emulator settings from
/// the environment are added by [`super::replica_from_url`] / the config loader, not here.
pub fn parse_replica_url(url: &str) -> Result<ReplicaTarget, ConfigError> {
    if !is_url(url) {
        return Err(ConfigError::MissingScheme(redact_password(url)));
    }
    let parts = split_url(url)?;
    let object_path = || strip_object_path(&parts.path);
    match parts.scheme.as_str() {
        "file" => file_target(url, &parts),
        "s3" => {
            let target = s3_target_from_host(&parts.host, object_path());
            if target.bucket.is_empty() {
                return Err(ConfigError::MissingBucket {
                    kind: "s3",
                    url: redact_password(url),
                });
            }
            Ok(ReplicaTarget::S3(target))
        }
        "gcs" | "gs" => {
            if parts.host.is_empty() {
                return Err(ConfigError::MissingBucket {
                    kind: "gcs",
                    url: redact_password(url),
                });
            }
            Ok(ReplicaTarget::Gcs(GcsTarget {
                bucket: parts.host.clone(),
                path: object_path(),
                emulator_host: None,
            }))
        }
        "abs" => {
            if parts.host.is_empty() {
                return Err(ConfigError::MissingBucket {
                    kind: "abs",
                    url: redact_password(url),
                });
            }
            Ok(ReplicaTarget::Abs(AbsTarget {
                account_name: parts.user.clone().filter(|u| !u.is_empty()),
                bucket: parts.host.clone(),
                path: object_path(),
                ..AbsTarget::default()
            }))
        }
        "sftp" => Err(ConfigError::Sftp(redact_password(url))),
        other => Err(ConfigError::UnknownScheme {
            scheme: other.to_string(),
            url: redact_password(url),
        }),
    }
}

/// Go: scheme removed, the rest (`//host/path` or `/path`) cleaned with `path.Clean`.
fn file_target(url: &str, parts: &UrlParts) -> Result<ReplicaTarget, ConfigError> {
    let joined = if parts.host.is_empty() {
        parts.path.clone()
    } else {
        format!("/{}{}", parts.host, parts.path)
    };
    if joined.is_empty() {
        return Err(ConfigError::MissingFilePath(redact_password(url)));
    }
    Ok(ReplicaTarget::File {
        path: PathBuf::from(clean_unix_path(&joined)),
    })
}

/// `strings.TrimPrefix(path.Clean(p), "/")`, with Go's `"."` for an empty path mapped to `""`
/// (Litestream joins it with `path.Join`, where `.` vanishes).
fn strip_object_path(p: &str) -> String {
    let cleaned = clean_unix_path(p);
    let trimmed = cleaned.strip_prefix('/').unwrap_or(&cleaned);
    if trimmed == "." {
        String::new()
    } else {
        trimmed.to_string()
    }
}

/// Go's `net.SplitHostPort`: `None` when there is no `:port` part or the form is invalid.
/// The port may be empty (`"host:"`).
pub(crate) fn split_host_port(s: &str) -> Option<(&str, &str)> {
    let colon = s.rfind(':')?;
    let host = if let Some(inner) = s.strip_prefix('[') {
        let end = inner.find(']')? + 1; // index of ']' in s
        if end + 1 != colon {
            return None;
        }
        &s[1..end]
    } else {
        let host = &s[..colon];
        if host.contains(':') {
            return None;
        }
        host
    };
    let port = &s[colon + 1..];
    if host.contains(['[', ']']) || port.contains(['[', ']']) {
        return None;
    }
    Some((host, port))
}

struct HostPattern {
    regex: &'static LazyLock<Regex>,
    /// Builds the endpoint host from the captured region.
    endpoint: fn(&str) -> String,
    has_region: bool,
}

// Litestream v0.3.13 s3/replica_client.go regexes, unchanged (including unescaped dots).
static LOCALHOST: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:(.+)\.)?localhost$"));
static BACKBLAZE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:(.+)\.)?s3.([^.]+)\.backblazeb2.com$"));
static FILEBASE: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:(.+)\.)?s3.filebase.com$"));
static DIGITAL_OCEAN: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:(.+)\.)?([^.]+)\.digitaloceanspaces.com$"));
static SCALEWAY: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:(.+)\.)?s3.([^.]+)\.scw\.cloud$"));
static LINODE: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:(.+)\.)?([^.]+)\.linodeobjects.com$"));

/// Compiles one of the constant patterns above (the URL table tests match each of them).
#[allow(
    clippy::expect_used,
    reason = "constant patterns: a typo fails the URL table tests, which use every one"
)]
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("constant regex is valid")
}

/// Provider patterns after localhost, in Litestream's order.
static PROVIDERS: [HostPattern; 5] = [
    HostPattern {
        regex: &BACKBLAZE,
        endpoint: |r| format!("s3.{r}.backblazeb2.com"),
        has_region: true,
    },
    HostPattern {
        regex: &FILEBASE,
        endpoint: |_| "s3.filebase.com".into(),
        has_region: false,
    },
    HostPattern {
        regex: &DIGITAL_OCEAN,
        endpoint: |r| format!("{r}.digitaloceanspaces.com"),
        has_region: true,
    },
    HostPattern {
        regex: &SCALEWAY,
        endpoint: |r| format!("s3.{r}.scw.cloud"),
        has_region: true,
    },
    HostPattern {
        regex: &LINODE,
        endpoint: |r| format!("{r}.linodeobjects.com"),
        has_region: true,
    },
];

/// Litestream's `s3.ParseHost`: bucket, region, endpoint and path style from an `s3://` host.
pub(crate) fn s3_target_from_host(host_port: &str, path: String) -> S3Target {
    let (host, port) = split_host_port(host_port).unwrap_or((host_port, ""));
    let with_port = |endpoint: String| {
        if port.is_empty() {
            endpoint
        } else {
            format!("{endpoint}:{port}")
        }
    };
    let capture = |c: &regex::Captures, i: usize| c.get(i).map_or("", |m| m.as_str()).to_string();
    let mut target = S3Target {
        path,
        force_path_style: true,
        ..S3Target::default()
    };
    if let Some(c) = LOCALHOST.captures(host) {
        target.bucket = capture(&c, 1);
        target.region = Some("us-east-1".into());
        target.endpoint = Some(format!("http://{}", with_port("localhost".into())));
        return target;
    }
    for p in &PROVIDERS {
        if let Some(c) = p.regex.captures(host) {
            let region = if p.has_region {
                capture(&c, 2)
            } else {
                String::new()
            };
            target.bucket = capture(&c, 1);
            target.endpoint = Some(format!("https://{}", with_port((p.endpoint)(&region))));
            target.region = Some(region).filter(|r| !r.is_empty());
            return target;
        }
    }
    // AWS itself: virtual-hosted style, the whole host (without port) is the bucket.
    target.bucket = host.to_string();
    target.force_path_style = false;
    target
}

#[cfg(test)]
#[path = "url_tests.rs"]
mod tests;
