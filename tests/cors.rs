//! `http-cors-origins` end to end: preflight and actual requests, as a browser sends them, against
//! a real `walstream replicate` (file replica, `addr` on a free loopback port): an allowed origin
//! gets its exact origin back with `Authorization` among the allowed headers, another origin gets
//! no CORS header, a server without the key sends none; an invalid origin fails `replicate` with
//! one line naming the key.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use reqwest::blocking::Client;
use reqwest::header::HeaderMap;

use http_support::{Instance, Resp, config, file_replica, tempdir};
use support::{insert, open_app};

const ALLOWED: &str = "https://admin.example.com";
const OTHER: &str = "https://evil.example.net";
const TOKEN: &str = "cors-test-token-91d2";

/// `OPTIONS path` as a browser's preflight for a `POST` with the token and a JSON body.
fn preflight(ws: &Instance, path: &str, origin: &str) -> Resp {
    let req = Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}{path}", ws.base))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        );
    ws.send(req)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The comma-separated items of header `name`, lower-cased.
fn items(h: &HeaderMap, name: &str) -> Vec<String> {
    header(h, name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn no_cors(r: &Resp, what: &str) {
    let cors: Vec<&str> = r
        .headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{what}: CORS headers {cors:?}");
}

fn start(dir: &Path, top: &str) -> Instance {
    let db = dir.join("app.db");
    insert(&open_app(&db), 1);
    let top = format!("http-token: \"{TOKEN}\"\n{top}");
    Instance::start(
        dir,
        &config(&db, &top, &file_replica(&dir.join("replica"), "100ms")),
        &[],
    )
}

#[test]
fn allowed_origin_gets_preflight_and_allow_origin_others_get_nothing() {
    let (_keep, dir) = tempdir();
    let top = format!("http-cors-origins:\n  - {ALLOWED}\n  - http://localhost:3000\n");
    let ws = start(&dir, &top);
    let sync = "/api/v1/databases/app.db/sync";

    let r = preflight(&ws, sync, ALLOWED);
    assert_eq!(r.status, 204, "{}", r.body);
    let h = &r.headers;
    assert_eq!(header(h, "access-control-allow-origin"), Some(ALLOWED));
    let allowed_headers = items(h, "access-control-allow-headers");
    assert!(
        allowed_headers.contains(&"authorization".to_string()),
        "{h:?}"
    );
    assert!(
        allowed_headers.contains(&"content-type".to_string()),
        "{h:?}"
    );
    let methods = items(h, "access-control-allow-methods");
    for m in ["get", "post", "delete"] {
        assert!(methods.contains(&m.to_string()), "{h:?}");
    }
    let max_age: u64 = header(h, "access-control-max-age")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no max-age: {h:?}"));
    assert!(max_age > 0);
    assert!(items(h, "vary").contains(&"origin".to_string()), "{h:?}");
    assert!(header(h, "access-control-allow-credentials").is_none());

    // The actual requests: a read without the token, an action with it.
    let get = Client::new()
        .get(format!("{}/api/v1/status", ws.base))
        .header("Origin", ALLOWED);
    let r = ws.send(get);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        header(&r.headers, "access-control-allow-origin"),
        Some(ALLOWED)
    );
    assert!(items(&r.headers, "vary").contains(&"origin".to_string()));
    let post = Client::new()
        .post(format!("{}{sync}", ws.base))
        .header("Origin", ALLOWED)
        .bearer_auth(TOKEN);
    let r = ws.send(post);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        header(&r.headers, "access-control-allow-origin"),
        Some(ALLOWED)
    );
    // The token is still needed: CORS opens the door for the page, not for everyone.
    let unauth = Client::new()
        .post(format!("{}{sync}", ws.base))
        .header("Origin", ALLOWED);
    assert_eq!(ws.send(unauth).status, 401);

    // Another origin, or the allowed one spelled differently: nothing.
    for origin in [
        OTHER,
        "https://ADMIN.example.com",
        "https://admin.example.com:8443",
    ] {
        let r = preflight(&ws, sync, origin);
        no_cors(&r, origin);
        assert_ne!(
            r.status / 100,
            2,
            "{origin}: preflight answered {}",
            r.status
        );
        let get = Client::new()
            .get(format!("{}/api/v1/status", ws.base))
            .header("Origin", origin);
        no_cors(&ws.send(get), origin);
    }
    ws.proc.stop();
}

#[test]
fn without_the_key_no_cors_headers() {
    let (_keep, dir) = tempdir();
    let ws = start(&dir, "");
    let r = preflight(&ws, "/api/v1/databases/app.db/sync", ALLOWED);
    no_cors(&r, "preflight");
    assert_eq!(r.status, 405);
    let get = Client::new()
        .get(format!("{}/api/v1/status", ws.base))
        .header("Origin", ALLOWED);
    let r = ws.send(get);
    assert_eq!(r.status, 200);
    no_cors(&r, "status");
    assert!(header(&r.headers, "vary").is_none());
    ws.proc.stop();
}

#[test]
fn invalid_origins_fail_replicate_with_one_line_naming_the_key() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let cases = [
        ("  - \"*\"\n", "http-cors-origins[0]: \"*\" is not accepted"),
        (
            "  - https://admin.example.com/\n",
            "http-cors-origins[0]: \"https://admin.example.com/\" is not an origin",
        ),
    ];
    for (items, want) in cases {
        let text = format!(
            "http-cors-origins:\n{items}dbs:\n  - path: \"{}\"\n    replicas:\n      - url: \"file://{}\"\n",
            db.display(),
            dir.join("replica").display()
        );
        let cfg = dir.join("bad.yml");
        std::fs::write(&cfg, text).expect("write config");
        let mut cmd = Command::new(common::walstream_bin());
        cmd.arg("replicate").arg("-config").arg(&cfg);
        let out = common::run_expect_fail(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        let want = format!("config {}: {want}", cfg.display());
        assert!(
            lines[0].contains(&want.replace('"', "\\\"")),
            "{}\nwant {want}",
            lines[0]
        );
    }
    assert!(!db.exists(), "nothing was started");
}
