//! The built-in admin page: `GET /` (HTML), `GET /assets/app.js` and `GET /assets/app.css`,
//! embedded in the binary with `include_str!` from `page/` (plain files, no build step).
//!
//! What must stay true:
//! - the page holds no data: it is served without a token even with `http-protect-reads`; every
//!   piece of data comes from the JSON API, which the script calls with the user's bearer token;
//! - nothing is fetched from elsewhere: every answer carries [`CSP`] (`default-src 'self'`, no
//!   inline script or style, no framing), `X-Content-Type-Options: nosniff` and
//!   `Referrer-Policy: no-referrer`;
//! - caching is revalidated (`Cache-Control: no-cache` plus a strong `ETag` of the content), so
//!   a new binary's page is never mixed with an old cached script.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The Content-Security-Policy of the page and its assets.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// One embedded file: its content, content type and entity tag.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Asset {
        let digest = Sha256::digest(body.as_bytes());
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Asset {
            body,
            content_type,
            etag: format!("\"{hex}\""),
        }
    }
}

static INDEX: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("page/index.html"), "text/html; charset=utf-8"));
static APP_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("page/app.js"),
        "text/javascript; charset=utf-8",
    )
});
static APP_CSS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("page/app.css"), "text/css; charset=utf-8"));

/// `GET /`: the admin page.
pub async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers)
}

/// `GET /assets/app.js`.
pub async fn app_js(headers: HeaderMap) -> Response {
    serve(&APP_JS, &headers)
}

/// `GET /assets/app.css`.
pub async fn app_css(headers: HeaderMap) -> Response {
    serve(&APP_CSS, &headers)
}

/// The asset, or `304 Not Modified` when the request's `If-None-Match` names its tag.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, tag);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_reference_only_their_own_origin() {
        for asset in [&*INDEX, &*APP_JS, &*APP_CSS] {
            for outside in ["http://", "https://", "@import"] {
                let hits: Vec<&str> = asset.body.lines().filter(|l| l.contains(outside)).collect();
                assert!(
                    hits.is_empty(),
                    "{outside} in {}: {hits:?}",
                    asset.content_type
                );
            }
        }
        assert!(INDEX.body.contains("src=\"/assets/app.js\""));
        assert!(INDEX.body.contains("href=\"/assets/app.css\""));
        assert!(
            !INDEX.body.contains("<script>"),
            "inline script breaks the CSP"
        );
        assert!(
            !INDEX.body.contains("style="),
            "inline style breaks the CSP"
        );
    }

    #[test]
    fn answers_carry_type_policy_and_revalidation() {
        let resp = serve(&APP_JS, &HeaderMap::new());
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let tag = h[header::ETAG].clone();

        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, tag.clone());
        let resp = serve(&APP_JS, &again);
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(resp.headers()[header::ETAG], tag);

        let mut other = HeaderMap::new();
        other.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\""));
        assert_eq!(serve(&APP_JS, &other).status(), StatusCode::OK);
        assert_ne!(INDEX.etag, APP_JS.etag);
    }
}
