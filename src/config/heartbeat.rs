//! `heartbeat-url` (Litestream v0.5): the URL `replicate` pings while every database replicates,
//! validated with Litestream's rule (it starts with `http://` or `https://`) plus a parse that
//! needs a host, so a URL that can never be requested is a config error rather than a ping
//! failing every interval.
//!
//! What must stay true: the URL may carry a secret token in its path or query (healthchecks.io,
//! Better Stack, Cronitor put it there), so it leaves this type only through [`HeartbeatUrl::as_str`]
//! for the request itself; `Debug` and [`HeartbeatUrl::host`] show the scheme and host only, and
//! no error message contains the URL.

/// Litestream v0.5's message for a URL it refuses (`ErrInvalidHeartbeatURL`).
pub const INVALID_HEARTBEAT_URL: &str = "heartbeat URL must be a valid HTTP or HTTPS URL";

/// Litestream v0.5's least `heartbeat-interval` (`MinHeartbeatInterval`); below it the file is
/// refused, as v0.5 refuses it.
pub const MIN_HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Litestream v0.5's `DefaultHeartbeatInterval`.
pub const DEFAULT_HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// A validated heartbeat URL.
#[derive(Clone, PartialEq, Eq)]
pub struct HeartbeatUrl {
    url: String,
    /// `scheme://host[:port]`, what logs and `Debug` show.
    shown: String,
}

impl HeartbeatUrl {
    /// The URL of `text`, or [`INVALID_HEARTBEAT_URL`].
    pub fn parse(text: &str) -> Result<HeartbeatUrl, &'static str> {
        if !text.starts_with("http://") && !text.starts_with("https://") {
            return Err(INVALID_HEARTBEAT_URL);
        }
        let url = reqwest::Url::parse(text).map_err(|_| INVALID_HEARTBEAT_URL)?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(INVALID_HEARTBEAT_URL)?;
        let shown = match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        };
        Ok(HeartbeatUrl {
            url: text.to_string(),
            shown,
        })
    }

    /// The whole URL, for the request only (it may hold a secret).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// `scheme://host[:port]`: safe to log.
    pub fn host(&self) -> &str {
        &self.shown
    }
}

impl std::fmt::Debug for HeartbeatUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeartbeatUrl({}/<redacted>)", self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_only_is_shown() {
        let u = HeartbeatUrl::parse("https://hc-ping.com/5e1d-secret-uuid?x=token").expect("valid");
        assert_eq!(u.host(), "https://hc-ping.com");
        assert_eq!(u.as_str(), "https://hc-ping.com/5e1d-secret-uuid?x=token");
        let debug = format!("{u:?}");
        assert!(
            !debug.contains("secret") && !debug.contains("token"),
            "{debug}"
        );
        let with_port = HeartbeatUrl::parse("http://user:pw@127.0.0.1:8080/p").expect("valid");
        assert_eq!(with_port.host(), "http://127.0.0.1:8080");
        assert!(!format!("{with_port:?}").contains("pw"));
    }

    #[test]
    fn litestream_rule_plus_a_host() {
        for bad in [
            "ftp://x/y",
            "hc-ping.com/uuid",
            "HTTPS://hc-ping.com/uuid",
            "http://",
            "https://?token=secret",
            "http://exa mple.com/",
        ] {
            assert_eq!(
                HeartbeatUrl::parse(bad),
                Err(INVALID_HEARTBEAT_URL),
                "{bad}"
            );
        }
    }
}
