//! `http-cors-origins` (walstream only): the browser origins allowed to call the HTTP API from
//! another site (an application's own admin page), as the exact strings a browser sends in its
//! `Origin` header.
//!
//! What must stay true: every accepted entry is `scheme://host[:port]` in the form browsers send
//! (lower-case scheme and host, punycode, no default port, no path, not even `/`), so the
//! server compares header bytes and never parses them; `*` and `null` are refused: the read
//! endpoints need no token by default, so a wildcard would let any web site an operator visits
//! read `/api/v1/status` through the operator's browser.

/// The origin `text` as a browser sends it, or why it is not an origin.
pub(crate) fn parse_origin(text: &str) -> Result<String, String> {
    match text {
        "" => return Err("an origin must not be empty".into()),
        "*" => {
            return Err(
                "\"*\" is not accepted: list each origin (scheme://host[:port]) \
                 that may call the API; a wildcard would let any web site read it through a \
                 visitor's browser"
                    .into(),
            );
        }
        "null" => {
            return Err("the \"null\" origin (files, sandboxed frames) is not accepted".into());
        }
        _ => {}
    }
    let bad = || {
        format!(
            "{text:?} is not an origin: want scheme://host[:port] with scheme http or https and no path"
        )
    };
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(bad)?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', '\\', '*']) {
        return Err(bad());
    }
    let url = reqwest::Url::parse(text).map_err(|_| bad())?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_kept_as_browsers_send_them() {
        let ok = |s: &str| parse_origin(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("https://app.example.com"), "https://app.example.com");
        assert_eq!(ok("HTTPS://App.Example.COM"), "https://app.example.com");
        assert_eq!(ok("https://app.example.com:443"), "https://app.example.com");
        assert_eq!(ok("http://localhost:3000"), "http://localhost:3000");
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(ok("http://[::1]:8080"), "http://[::1]:8080");
        assert_eq!(
            ok("https://bücher.example"),
            "https://xn--bcher-kva.example"
        );
    }

    #[test]
    fn paths_wildcards_and_other_schemes_are_refused() {
        for bad in [
            "",
            "*",
            "null",
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/admin",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "ftp://app.example.com",
            "https://",
            "https://app.example.com:99999",
            "https://*.example.com",
        ] {
            let e = parse_origin(bad).expect_err(bad);
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(
            parse_origin("*")
                .expect_err("*")
                .contains("list each origin")
        );
    }
}
