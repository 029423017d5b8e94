//! The document against the router: the same paths (from the router's source), the same
//! methods (asked of the router itself), and every `$ref` resolving.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use super::DOCUMENT;
use crate::config::HttpConfig;
use crate::metrics::Metrics;
use crate::replicate::Lifecycle;
use crate::server::{AppState, Shared, router};

/// Routes of the admin page (HTML and assets): not part of the API document.
const PAGE_ROUTES: &[&str] = &["/", "/assets/app.js", "/assets/app.css"];
const METHODS: &[&str] = &["get", "post", "put", "delete", "patch"];

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("src/server/openapi.json is JSON")
}

fn documented_paths(doc: &Value) -> BTreeSet<String> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect()
}

/// The paths of every `.route(…)` call in `source`, with `{base}` replaced by `base` and
/// `format!`'s `{{`/`}}` unescaped.
fn routed_paths(source: &str, base: &str) -> Vec<String> {
    source
        .split(".route(")
        .skip(1)
        .map(|call| {
            let call = call.trim_start();
            let formatted = call.starts_with("&format!(");
            let start = call.find('"').expect("route path literal") + 1;
            let len = call[start..].find('"').expect("end of route path");
            let path = &call[start..start + len];
            if formatted {
                path.replace("{base}", base)
                    .replace("{{", "{")
                    .replace("}}", "}")
            } else {
                path.to_string()
            }
        })
        .collect()
}

#[test]
fn every_route_of_the_router_is_documented_and_every_documented_path_is_routed() {
    let admin = include_str!("admin_api.rs");
    let base_at = admin.find("let base = \"").expect("admin base") + "let base = \"".len();
    let base = &admin[base_at..base_at + admin[base_at..].find('"').expect("end of base")];
    let mut routed: BTreeSet<String> = routed_paths(include_str!("mod.rs"), base)
        .into_iter()
        .chain(routed_paths(admin, base))
        .collect();
    assert!(
        routed.len() > 10,
        "routes not found in the source: {routed:?}"
    );
    for page in PAGE_ROUTES {
        assert!(routed.remove(*page), "admin page route {page} moved");
    }
    let documented = documented_paths(&document());
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from src/server/openapi.json: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
}

fn test_router() -> axum::Router {
    let state = Arc::new(AppState::new(
        &[],
        HttpConfig::default(),
        Lifecycle::detached(),
    ));
    let source = Arc::clone(&state);
    let metrics = Metrics::new(Arc::new(move || source.observe()), true).expect("metrics");
    router(Arc::new(Shared { state, metrics }))
}

#[tokio::test]
async fn the_router_answers_exactly_the_documented_methods() {
    let doc = document();
    let app = test_router();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let uri = path.replace("{db}", "x.db").replace("{id}", "b1");
        for method in METHODS {
            let req = Request::builder()
                .method(Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"))
                .uri(&uri)
                .body(Body::empty())
                .expect("request");
            let resp = app.clone().oneshot(req).await.expect("answer");
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .expect("body");
            let what = format!("{} {path}: {status} {}", method.to_uppercase(), {
                String::from_utf8_lossy(&body[..body.len().min(200)])
            });
            if item.get(*method).is_some() {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
                // The fallback's answer: the path is not routed at all.
                assert_ne!(&body[..], br#"{"error":"not found"}"#, "{what}");
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
            }
        }
    }
}

/// Every `$ref` under `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_and_every_operation_has_security_and_a_success_answer() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0."))
    );
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            assert!(op["security"].is_array(), "{method} {path}: no security");
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|c| c.starts_with('2')),
                "{method} {path}: no success answer"
            );
        }
    }
}
