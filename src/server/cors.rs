//! CORS for the origins of `http-cors-origins` (off when the list is empty: the layer is not
//! installed and no answer carries a CORS header), so an application's own admin page on
//! another origin can call the API from the browser with the bearer token.
//!
//! What must stay true:
//! - only an `Origin` equal (byte for byte) to a configured origin gets CORS headers, and
//!   `Access-Control-Allow-Origin` is always that exact origin, never `*`; no
//!   `Access-Control-Allow-Credentials`: the API authenticates with an `Authorization` header the
//!   page sets itself, never with cookies;
//! - a preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is
//!   answered here, before routing and authentication (browsers send preflights without the
//!   token); any other request, and every request from another origin, goes to the routes
//!   unchanged — a disallowed origin gets no CORS header, so the browser refuses the answer;
//! - every answer carries `Vary: Origin` while the layer is on, so a cache never serves one
//!   origin's answer to another.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The API's methods (the read endpoints, the actions, backup deletion).
pub const ALLOW_METHODS: &str = "GET, POST, DELETE";
/// Headers a page may send: the bearer token and a JSON body's type.
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type";
/// How long a browser may reuse a preflight answer, in seconds: ten minutes, so an origin
/// removed from the config stops working soon after the restart.
pub const MAX_AGE: &str = "600";
/// Answer headers a page may read besides the simple ones: a backup download's file name and
/// the 401's authentication challenge.
pub const EXPOSE_HEADERS: &str = "Content-Disposition, WWW-Authenticate";

/// The allowed origins, as browsers send them (validated by the config).
pub type Origins = Arc<[String]>;

/// The middleware (install with `from_fn_with_state(origins, cors)`).
pub async fn cors(State(origins): State<Origins>, req: Request, next: Next) -> Response {
    let allowed = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| origins.iter().any(|a| a.as_bytes() == o.as_bytes()))
        .cloned();
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut resp = match (&allowed, preflight) {
        (Some(_), true) => StatusCode::NO_CONTENT.into_response(),
        _ => next.run(req).await,
    };
    let h = resp.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if preflight {
            let fixed = [
                (header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS),
                (header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS),
                (header::ACCESS_CONTROL_MAX_AGE, MAX_AGE),
            ];
            for (name, value) in fixed {
                h.insert(name, HeaderValue::from_static(value));
            }
        } else {
            let expose = HeaderValue::from_static(EXPOSE_HEADERS);
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use tower::ServiceExt;

    const APP: &str = "https://app.example.com";

    fn app() -> Router {
        let origins: Origins = Arc::from(vec![APP.to_string()]);
        Router::new()
            .route("/api", get(|| async { "ok" }))
            .layer(from_fn_with_state(origins, cors))
    }

    async fn send(method: Method, origin: Option<&str>, preflight: bool) -> Response {
        let mut req = Request::builder().method(method).uri("/api");
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        if preflight {
            req = req.header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST");
        }
        app()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("answer")
    }

    fn get_header(r: &Response, name: header::HeaderName) -> Option<&str> {
        r.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn allowed_origin_gets_preflight_and_allow_origin() {
        let r = send(Method::OPTIONS, Some(APP), true).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let allow = get_header(&r, header::ACCESS_CONTROL_ALLOW_ORIGIN);
        assert_eq!(allow, Some(APP));
        let headers = get_header(&r, header::ACCESS_CONTROL_ALLOW_HEADERS);
        assert_eq!(headers, Some(ALLOW_HEADERS));
        assert_eq!(get_header(&r, header::VARY), Some("Origin"));
        assert!(
            r.headers()
                .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
                .is_none()
        );

        let r = send(Method::GET, Some(APP), false).await;
        assert_eq!(r.status(), StatusCode::OK);
        let allow = get_header(&r, header::ACCESS_CONTROL_ALLOW_ORIGIN);
        assert_eq!(allow, Some(APP));
        assert!(
            r.headers()
                .get(header::ACCESS_CONTROL_ALLOW_METHODS)
                .is_none()
        );
    }

    #[tokio::test]
    async fn other_origins_and_plain_requests_get_no_cors_headers() {
        for origin in [
            Some("https://evil.example"),
            Some("https://APP.example.com"),
            None,
        ] {
            for (method, preflight) in [(Method::OPTIONS, true), (Method::GET, false)] {
                let r = send(method.clone(), origin, preflight).await;
                assert!(
                    r.headers()
                        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                        .is_none(),
                    "{origin:?} {method}"
                );
                assert_eq!(get_header(&r, header::VARY), Some("Origin"));
            }
        }
        // Not answered here: the routes decide (no OPTIONS route: 405).
        let r = send(Method::OPTIONS, Some("https://evil.example"), true).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
