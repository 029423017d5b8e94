//! The OpenAPI document (`GET /api/v1/openapi.json`, `src/server/openapi.json`) against the real
//! answers of a running `walstream replicate` with a file replica and a token: every documented
//! operation is called, and every answer's status must be documented for it, its content type
//! declared, and its JSON body valid under the declared schema (strict: required fields, no
//! undocumented ones). Binary downloads are checked for status and content type. The test fails
//! when an operation of the document was never answered with a success here.
//!
//! Pacing: nothing sleeps for readiness; every wait polls with a deadline.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use http_support::schema::validate;
use http_support::*;

const TOKEN: &str = "openapi-test-token-5c1e";

enum Auth {
    None,
    Token,
    Wrong,
}

/// The server, its document, and the (method, path) pairs answered with a success so far.
struct Api {
    ws: Instance,
    client: Client,
    doc: Value,
    succeeded: BTreeSet<(String, String)>,
    checked: usize,
}

impl Api {
    /// Calls `method template` (`{db}` = app.db, `{id}` = `id`) with `query` and `body`, and
    /// checks the answer against the document.
    fn call(
        &mut self,
        method: Method,
        template: &str,
        (id, query): (&str, &str),
        body: Option<Value>,
        auth: Auth,
    ) -> Resp {
        let path = template.replace("{db}", "app.db").replace("{id}", id);
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}{query}", self.ws.base));
        req = match auth {
            Auth::None => req,
            Auth::Token => req.bearer_auth(TOKEN),
            Auth::Wrong => req.bearer_auth("not-the-token"),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send_checked(method, template, req)
    }

    /// `POST template` with a raw body of `content_type` (uploads), checked like [`Api::call`].
    fn upload(
        &mut self,
        template: &str,
        query: &str,
        (content_type, bytes): (&str, Vec<u8>),
        auth: Auth,
    ) -> Resp {
        let path = template.replace("{db}", "app.db");
        let mut req = self
            .client
            .post(format!("{}{path}{query}", self.ws.base))
            .header("Content-Type", content_type)
            .body(bytes);
        if let Auth::Token = auth {
            req = req.bearer_auth(TOKEN);
        }
        self.send_checked(Method::POST, template, req)
    }

    fn send_checked(
        &mut self,
        method: Method,
        template: &str,
        req: reqwest::blocking::RequestBuilder,
    ) -> Resp {
        let resp = self.ws.send(req);
        self.check(method.as_str(), template, &resp);
        if (200..300).contains(&resp.status) {
            self.succeeded
                .insert((method.as_str().to_lowercase(), template.to_string()));
        }
        resp
    }

    /// The answer's status is documented for the operation, its content type declared, its
    /// JSON body valid.
    fn check(&mut self, method: &str, template: &str, r: &Resp) {
        let what = format!("{method} {template} → {}: {}", r.status, r.body);
        let op = &self.doc["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "{what}: operation not documented");
        let mut answer = op["responses"]
            .get(r.status.to_string())
            .unwrap_or_else(|| panic!("{what}: status not documented"));
        if let Some(reference) = answer.get("$ref").and_then(Value::as_str) {
            let pointer = reference.strip_prefix('#').expect("local $ref");
            answer = self.doc.pointer(pointer).expect("$ref resolves");
        }
        let Some(content) = answer.get("content").and_then(Value::as_object) else {
            assert!(r.body.is_empty(), "{what}: body where none is documented");
            self.checked += 1;
            return;
        };
        let ct = r
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no content type"));
        let media = ct.split(';').next().unwrap_or_default().trim();
        let declared = content
            .get(media)
            .unwrap_or_else(|| panic!("{what}: content type {ct} not declared"));
        if media == "application/json" {
            let body: Value = r.json();
            if let Err(e) = validate(&self.doc, &declared["schema"], &body) {
                panic!("{what}: does not match the document: {e}");
            }
        } else {
            assert!(!r.body.is_empty(), "{what}: empty body");
        }
        self.checked += 1;
    }
}

#[test]
fn every_endpoint_answers_as_the_openapi_document_says() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let cfg = config(
        &db,
        &format!("http-token: \"{TOKEN}\"\n"),
        &file_replica(&dir.join("replica"), "100ms"),
    );
    let app = common::open_app(&db);
    for id in 1..=20 {
        common::insert(&app, id);
    }
    let ws = Instance::start(&dir, &cfg, &[]);
    ws.wait_caught_up();

    // The served document is the checked-in one, without a token.
    let served = ws.get("/api/v1/openapi.json");
    assert_eq!(served.status, 200, "{}", served.body);
    let checked_in = include_str!("../src/server/openapi.json");
    assert_eq!(
        served.body, checked_in,
        "served document differs from src/server/openapi.json"
    );
    let mut api = Api {
        ws,
        client: Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client"),
        doc: served.json(),
        succeeded: BTreeSet::new(),
        checked: 0,
    };
    let none = ("", "");
    api.call(Method::GET, "/api/v1/openapi.json", none, None, Auth::None);

    // Probes and metrics.
    api.call(Method::GET, "/healthz", none, None, Auth::None);
    api.call(Method::GET, "/readyz", none, None, Auth::None);
    api.call(Method::GET, "/metrics", none, None, Auth::None);

    // Reads: the full status, a page, a bad parameter; restore points.
    let status = "/api/v1/status";
    let full = api.call(Method::GET, status, none, None, Auth::None);
    assert!(full.json().get("page").is_none(), "{}", full.body);
    let page = api.call(
        Method::GET,
        status,
        ("", "?limit=1&state=ok&q=app"),
        None,
        Auth::None,
    );
    assert_eq!(page.json()["page"]["limit"], 1, "{}", page.body);
    let bad = api.call(Method::GET, status, ("", "?limit=0"), None, Auth::None);
    assert_eq!(bad.status, 400);
    let points = "/api/v1/databases/{db}/restore-points";
    let r = api.call(Method::GET, points, ("", "?refresh=true"), None, Auth::None);
    assert_eq!(r.status, 200, "{}", r.body);

    // Actions.
    let sync = "/api/v1/databases/{db}/sync";
    let r = api.call(Method::POST, sync, ("", "?timeout=30s"), None, Auth::Token);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.call(Method::POST, sync, ("", "?timeout=soon"), None, Auth::Token);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api.call(Method::POST, sync, none, None, Auth::None);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = api.call(Method::POST, sync, none, None, Auth::Wrong);
    assert_eq!(r.status, 403, "{}", r.body);
    let snapshot = "/api/v1/databases/{db}/snapshot";
    let r = api.call(Method::POST, snapshot, none, None, Auth::Token);
    assert_eq!(r.status, 200, "{}", r.body);

    // Backups: create (and a bad body), list, download, restore, delete (twice), a bad id.
    let backups = "/api/v1/databases/{db}/backups";
    let body = json!({"name": "first", "description": "before the test",
                      "labels": {"env": "test", "ticket": "OPS-7"}});
    let created = api.call(Method::POST, backups, none, Some(body), Auth::Token);
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().expect("id").to_string();
    let r = api.call(
        Method::POST,
        backups,
        none,
        Some(json!({"nme": "x"})),
        Auth::Token,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let listed = api.call(Method::GET, backups, none, None, Auth::None);
    assert_eq!(
        listed.json()["backups"][0]["id"],
        id.as_str(),
        "{}",
        listed.body
    );
    let query = (
        "",
        "?kind=manual&label=env=test&label=ticket%3DOPS-7&limit=5",
    );
    let filtered = api.call(Method::GET, backups, query, None, Auth::None);
    assert_eq!(filtered.json()["backups"][0]["labels"]["env"], "test");
    assert_eq!(filtered.json()["backups"][0]["created_by"], "api");
    let r = api.call(Method::GET, backups, ("", "?limit=0"), None, Auth::None);
    assert_eq!(r.status, 400, "{}", r.body);
    let range = ("", "?since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z");
    let r = api.call(Method::GET, backups, range, None, Auth::None);
    assert_eq!(r.json()["backups"][0]["id"], id.as_str(), "{}", r.body);
    let r = api.call(Method::GET, backups, ("", "?since=soon"), None, Auth::None);
    assert_eq!(r.status, 400, "{}", r.body);
    // Upload: the backup's own file comes back as an `uploaded` backup; a text file is a 400,
    // another content type 415, no token 401.
    let upload = "/api/v1/databases/{db}/backups/upload";
    let file =
        std::fs::read(dir.join("backups/app.db").join(format!("{id}.db"))).expect("backup file");
    let sqlite = ("application/vnd.sqlite3", file.clone());
    let r = api.upload(
        upload,
        "?name=copy&label=from=openapi",
        sqlite.clone(),
        Auth::Token,
    );
    assert_eq!(
        (r.status, r.json()["kind"].clone()),
        (201, json!("uploaded")),
        "{}",
        r.body
    );
    let text = ("application/octet-stream", b"not a database".to_vec());
    let r = api.upload(upload, "", text, Auth::Token);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api.upload(upload, "", ("text/plain", file), Auth::Token);
    assert_eq!(r.status, 415, "{}", r.body);
    let r = api.upload(upload, "", sqlite, Auth::None);
    assert_eq!(r.status, 401, "{}", r.body);
    // The status document's backups summary, once listed, shows both.
    common::poll_until(common::DEADLINE, "backups summary", || {
        let st = api.ws.status();
        (st["databases"][0]["backups"]["uploaded"]["count"] == 1).then_some(())
    });
    let r = api.call(Method::GET, status, none, None, Auth::None);
    let summary = &r.json()["databases"][0]["backups"];
    assert_eq!(summary["manual"]["count"], 1, "{summary}");
    assert!(
        summary["volume"]["total_bytes"].as_u64() > Some(0),
        "{summary}"
    );
    // A backup as a job: 202 with the job, then the job itself and the list.
    let accepted = api.call(
        Method::POST,
        backups,
        ("", "?async=true"),
        Some(json!({"name": "as-a-job"})),
        Auth::Token,
    );
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let job_id = accepted.json()["id"].as_str().expect("job id").to_string();
    let job = "/api/v1/jobs/{id}";
    let mut done = Value::Null;
    common::poll_until(support::DEADLINE, "the backup job to end", || {
        done = api
            .call(Method::GET, job, (&job_id, ""), None, Auth::None)
            .json();
        done["state"] != "running"
    });
    assert_eq!(done["state"], "succeeded", "{done}");
    let r = api.call(Method::GET, job, ("nope", ""), None, Auth::None);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = api.call(Method::GET, "/api/v1/jobs", none, None, Auth::None);
    assert_eq!(r.status, 200, "{}", r.body);
    // A restore drill now (the replica and the newest backup).
    let drill = "/api/v1/databases/{db}/drill";
    let r = api.call(Method::POST, drill, none, None, Auth::Token);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.call(Method::POST, drill, none, None, Auth::None);
    assert_eq!(r.status, 401, "{}", r.body);
    let one = "/api/v1/databases/{db}/backups/{id}";
    let r = api.call(Method::GET, one, (&id, ""), None, Auth::Token);
    assert_eq!(r.status, 200);
    let r = api.call(Method::GET, one, (&id, ""), None, Auth::None);
    assert_eq!(r.status, 401, "{}", r.body);
    // What is inside: compare with live, export a table (both need the token).
    let compare = "/api/v1/databases/{db}/backups/compare";
    let query = format!("?a={id}&b=live&limit=5");
    let r = api.call(Method::GET, compare, ("", &query), None, Auth::Token);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.call(Method::GET, compare, ("", &query), None, Auth::None);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = api.call(
        Method::GET,
        compare,
        ("", "?a=x.db&b=live"),
        None,
        Auth::Token,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let export = "/api/v1/databases/{db}/backups/{id}/export";
    let r = api.call(Method::GET, export, (&id, "?table=t"), None, Auth::Token);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.call(Method::GET, export, (&id, "?table=nope"), None, Auth::Token);
    assert_eq!(r.status, 400, "{}", r.body);
    // The same compare as a data job: 202, then its answer at …/result (the token again).
    let async_query = format!("{query}&async=true");
    let r = api.call(Method::GET, compare, ("", &async_query), None, Auth::Token);
    assert_eq!(r.status, 202, "{}", r.body);
    let data_job = r.json()["id"].as_str().expect("job id").to_string();
    common::poll_until(support::DEADLINE, "the compare job to end", || {
        let doc = api
            .call(Method::GET, job, (&data_job, ""), None, Auth::None)
            .json();
        doc["state"] == "succeeded"
    });
    let result = "/api/v1/jobs/{id}/result";
    let r = api.call(Method::GET, result, (&data_job, ""), None, Auth::Token);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.call(Method::GET, result, (&data_job, ""), None, Auth::None);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = api.call(Method::GET, result, ("nope", ""), None, Auth::Token);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = api.call(
        Method::GET,
        export,
        (&id, "?table=t&async=true"),
        None,
        Auth::Token,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let missing = "20200101T000000Z-abcdef";
    let r = api.call(
        Method::GET,
        export,
        (missing, "?table=t"),
        None,
        Auth::Token,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let restore_backup = "/api/v1/databases/{db}/backups/{id}/restore";
    let r = api.call(Method::POST, restore_backup, (&id, ""), None, Auth::Token);
    assert_eq!(r.status, 200, "{}", r.body);
    let restore = "/api/v1/databases/{db}/restore";
    let r = api.call(Method::POST, restore, none, Some(json!({})), Auth::Token);
    assert_eq!(r.status, 200, "{}", r.body);
    // Pins: a pinned backup's delete is a 409; expire (dry run and real) keeps it.
    let pin = "/api/v1/databases/{db}/backups/{id}/pin";
    let r = api.call(Method::POST, pin, (&id, ""), None, Auth::Token);
    assert_eq!((r.status, r.json()["pinned"].clone()), (200, json!(true)));
    let r = api.call(Method::POST, pin, (&id, ""), None, Auth::None);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = api.call(Method::DELETE, one, (&id, ""), None, Auth::Token);
    assert_eq!(r.status, 409, "{}", r.body);
    let expire = "/api/v1/databases/{db}/backups/expire";
    for dry_run in [true, false] {
        let body = Some(json!({ "dry_run": dry_run }));
        let r = api.call(Method::POST, expire, none, body, Auth::Token);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["dry_run"], dry_run);
    }
    let r = api.call(
        Method::POST,
        expire,
        none,
        Some(json!({"dry": 1})),
        Auth::Token,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api.call(Method::DELETE, pin, (&id, ""), None, Auth::Token);
    assert_eq!((r.status, r.json()["pinned"].clone()), (200, json!(false)));
    let r = api.call(Method::DELETE, one, (&id, ""), None, Auth::Token);
    assert_eq!(r.status, 204, "{}", r.body);
    let r = api.call(Method::DELETE, one, (&id, ""), None, Auth::Token);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = api.call(Method::DELETE, one, ("x.db", ""), None, Auth::Token);
    assert_eq!(r.status, 400, "{}", r.body);

    // The replica's database, and a bad timestamp.
    let latest = "/api/v1/databases/{db}/replica/latest.db";
    let r = api.call(Method::GET, latest, none, None, Auth::Token);
    assert_eq!(r.status, 200);
    let r = api.call(
        Method::GET,
        latest,
        ("", "?timestamp=yesterday"),
        None,
        Auth::Token,
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // An unknown database.
    let unknown = "/api/v1/databases/{db}/restore-points".replace("{db}", "nope.db");
    let r = api.ws.get(&unknown);
    assert_eq!(r.status, 404, "{}", r.body);
    api.check("GET", points, &r);

    // Every documented operation answered with a success at least once.
    let mut documented = BTreeSet::new();
    for (path, item) in api.doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if method != "parameters" {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let missed: Vec<_> = documented.difference(&api.succeeded).collect();
    assert!(
        missed.is_empty(),
        "never answered with a success: {missed:?}"
    );
    assert!(api.checked > 25, "only {} answers checked", api.checked);
    drop(app);
}
