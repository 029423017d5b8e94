//! The HTTP server of `walstream replicate` (when `addr` is set): Prometheus `/metrics`,
//! `/healthz`, `/readyz`, and the JSON API under `/api/v1` (documented in `docs/http-api.md`
//! and `docs/metrics.md`).
//!
//! What must stay true:
//! - only the configured address is bound (`:PORT` = every IPv4 interface, like Go's
//!   `net.Listen`), before replication starts, so a taken port fails the command at once;
//! - read handlers answer from in-memory state ([`crate::state::AppState::observe`], the restore-point
//!   cache): never SQLite, never storage; `GET …/restore-points` may wait (at most
//!   [`POINTS_WAIT`]) for the refresher task to list a changed replica; only the `POST` actions
//!   wait for I/O, under a deadline;
//! - `/api/v1/status` without query parameters answers the full document, unchanged; with
//!   them, one validated page (`query`);
//! - request bodies are refused above [`BODY_LIMIT`]; every error answer is JSON
//!   (`{"error": …}`); credentials never appear in any answer (replica URLs come from
//!   `ReplicaClient::describe()`, the token is never echoed).
//!
//! Files: `api` (JSON documents, readiness), `query` (status paging and filters), `auth`
//! (bearer token), `actions` (sync/snapshot), this file (routes, bind, spawn). The observed
//! model, the lag trackers and the restore-point cache live in [`crate::state`].

mod actions;
mod admin_api;
pub mod api;
pub mod auth;
pub mod page;
pub mod query;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tracing::{error, info};

pub use crate::state::{
    AppState, DbObservation, Observation, ReplicaObservation, StorageCounters, unique_ids,
};

use crate::config::HttpConfig;
use crate::metrics::Metrics;
use crate::replicate::Fleet;
use actions::ActionError;
use api::{ErrorDoc, RestorePointsDoc, StatusDoc};
use auth::{Access, Denied};

/// Largest request body accepted (the API takes no bodies; this only bounds abuse).
pub const BODY_LIMIT: u64 = 16 * 1024;
/// Default deadline of `POST …/sync` and `…/snapshot` (`?timeout=` overrides it).
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait of `GET …/restore-points` for the refresher to list a stale replica.
pub const POINTS_WAIT: Duration = Duration::from_secs(3);
/// Most database ids named in an "unknown database" error.
const IDS_SHOWN: usize = 20;

/// Errors of starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid bind address {addr:?}: {reason}")]
    Address { addr: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
}

/// A bound, not yet serving, HTTP server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    settings: HttpConfig,
    /// Host shown in the start-up log (`localhost` for an empty host).
    shown_host: String,
}

impl Server {
    /// Binds `addr` (`host:port`, `:port`, `[v6]:port`; port 0 picks a free one).
    pub fn bind(addr: &str, settings: HttpConfig) -> Result<Server, ServerError> {
        let (host, port) = split_addr(addr)?;
        let bind_host = if host.is_empty() { "0.0.0.0" } else { host };
        let candidates: Vec<SocketAddr> = (bind_host, port)
            .to_socket_addrs()
            .map_err(|e| ServerError::Address {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?
            .collect();
        let mut last_err = None;
        for candidate in candidates {
            match TcpListener::bind(candidate) {
                Ok(listener) => {
                    let shown_host = if host.is_empty() { "localhost" } else { host };
                    return Ok(Server {
                        listener,
                        settings,
                        shown_host: shown_host.to_string(),
                    });
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(ServerError::Bind {
            addr: addr.to_string(),
            source: last_err.unwrap_or_else(|| std::io::Error::other("no address resolved")),
        })
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Starts serving on the current tokio runtime the databases of `fleet` (following it as
    /// databases come and go); also starts the lag trackers and restore-point refreshers. Logs
    /// `serving metrics on url=…`.
    pub fn start(self, fleet: &Arc<Fleet>) -> Result<(), ServerError> {
        let state = Arc::new(AppState::new(&[], self.settings));
        state.follow(fleet);
        let source_state = Arc::clone(&state);
        let db_labels = state.settings.metrics_db_labels;
        let metrics = Metrics::new(Arc::new(move || source_state.observe()), db_labels)?;
        let port = self.listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let url_host = if self.shown_host.contains(':') {
            format!("[{}]", self.shown_host)
        } else {
            self.shown_host.clone()
        };
        let shown = format!("{url_host}:{port}");
        self.listener
            .set_nonblocking(true)
            .map_err(|source| ServerError::Bind {
                addr: shown.clone(),
                source,
            })?;
        let listener = tokio::net::TcpListener::from_std(self.listener).map_err(|source| {
            ServerError::Bind {
                addr: shown.clone(),
                source,
            }
        })?;
        let app = router(Arc::new(Shared { state, metrics }));
        info!(url = %format!("http://{shown}/metrics"), "serving metrics on");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                error!(error = %e, "http server error");
            }
        });
        Ok(())
    }
}

/// Splits Go's `host:port` (`[v6]:port` allowed, empty host allowed).
fn split_addr(addr: &str) -> Result<(&str, u16), ServerError> {
    let bad = |reason: &str| ServerError::Address {
        addr: addr.to_string(),
        reason: reason.to_string(),
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse::<u16>().map_err(|_| bad("invalid port"))?;
    Ok((host, port))
}

/// Handler state: the observed model and the metrics registry.
struct Shared {
    state: Arc<AppState>,
    metrics: Metrics,
}

type Ctx = State<Arc<Shared>>;

fn router(shared: Arc<Shared>) -> Router {
    // Layers sit on the method routers, so a wrong method is 405 before any token check.
    let read = || from_fn_with_state(Arc::clone(&shared), require_read);
    let mutate = || from_fn_with_state(Arc::clone(&shared), require_mutate);
    Router::new()
        .route("/", get(page::index))
        .route("/assets/app.js", get(page::app_js))
        .route("/assets/app.css", get(page::app_css))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics).route_layer(read()))
        .route("/api/v1/status", get(status).route_layer(read()))
        .route(
            "/api/v1/databases/{db}/restore-points",
            get(restore_points).route_layer(read()),
        )
        .route(
            "/api/v1/databases/{db}/sync",
            post(sync).route_layer(mutate()),
        )
        .route(
            "/api/v1/databases/{db}/snapshot",
            post(snapshot).route_layer(mutate()),
        )
        .merge(admin_api::routes(&shared))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(limit_body))
        .with_state(shared)
}

fn error_response(status: StatusCode, doc: ErrorDoc) -> Response {
    (status, Json(doc)).into_response()
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    error_response(
        status,
        ErrorDoc {
            error: text.into(),
            database: None,
            replica: None,
        },
    )
}

async fn limit_body(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return message(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {BODY_LIMIT} bytes"),
        );
    }
    next.run(req).await
}

async fn require_read(State(s): Ctx, req: Request, next: Next) -> Response {
    authorize(&s, Access::Read, req, next).await
}

async fn require_mutate(State(s): Ctx, req: Request, next: Next) -> Response {
    authorize(&s, Access::Mutate, req, next).await
}

async fn authorize(s: &Shared, access: Access, req: Request, next: Next) -> Response {
    let settings = &s.state.settings;
    match auth::check(
        settings.token.as_deref(),
        settings.protect_reads,
        access,
        req.headers(),
    ) {
        Ok(()) => next.run(req).await,
        Err(denied) => {
            let status = match denied {
                Denied::Missing => StatusCode::UNAUTHORIZED,
                Denied::Disabled | Denied::Wrong => StatusCode::FORBIDDEN,
            };
            let mut resp = message(status, denied.to_string());
            if denied == Denied::Missing {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"walstream\""),
                );
            }
            resp
        }
    }
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "not found")
}

async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn readyz(State(s): Ctx) -> Response {
    let doc = api::readiness(&s.state.observe(), s.state.settings.readiness_max_lag);
    let code = if doc.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(doc)).into_response()
}

async fn metrics(State(s): Ctx) -> Response {
    match s.metrics.render() {
        Ok(text) => (
            [(header::CONTENT_TYPE, crate::metrics::content_type())],
            text,
        )
            .into_response(),
        Err(e) => message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The query pairs, or the text of the 400 answer for an undecodable query string.
fn pairs(query: Pairs) -> Result<Vec<(String, String)>, String> {
    query.map(|Query(p)| p).map_err(|e| e.body_text())
}

async fn status(State(s): Ctx, query: Pairs) -> Response {
    match pairs(query).and_then(|p| query::parse(&p)) {
        Err(text) => message(StatusCode::BAD_REQUEST, text),
        Ok(None) => Json(StatusDoc::from_observation(&s.state.observe())).into_response(),
        Ok(Some(q)) => {
            let at = SystemTime::now();
            let (dbs, page) = query::select(&s.state, &q, at);
            Json(StatusDoc::page(at, &dbs, page)).into_response()
        }
    }
}

fn unknown_db(s: &Shared, id: &str) -> Response {
    let entries = s.state.entries();
    let known: Vec<&str> = entries
        .iter()
        .take(IDS_SHOWN)
        .map(|d| d.id.as_str())
        .collect();
    let more = entries.len().saturating_sub(IDS_SHOWN);
    let tail = if more > 0 {
        format!(", … {more} more")
    } else {
        String::new()
    };
    message(
        StatusCode::NOT_FOUND,
        format!(
            "unknown database {id:?} (known: {}{tail})",
            known.join(", ")
        ),
    )
}

/// `?refresh=true` of `…/restore-points`: list every replica now.
fn refresh_param(query: Pairs) -> Result<bool, String> {
    match pairs(query)?.as_slice() {
        [] => Ok(false),
        [(k, v)] if k == "refresh" => match v.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err("invalid refresh: want true or false".into()),
        },
        _ => Err("unknown parameter (known: refresh)".into()),
    }
}

async fn restore_points(State(s): Ctx, Path(id): Path<String>, query: Pairs) -> Response {
    let force = match refresh_param(query) {
        Ok(f) => f,
        Err(text) => return message(StatusCode::BAD_REQUEST, text),
    };
    let Some(entry) = s.state.db(&id) else {
        return unknown_db(&s, &id);
    };
    if force || entry.points_stale() {
        entry.wait_for_listing(force, POINTS_WAIT).await;
    }
    let db = entry.observe(SystemTime::now());
    Json(RestorePointsDoc::from_observation(&db)).into_response()
}

#[derive(Debug, Deserialize)]
struct ActionQuery {
    /// Go duration, e.g. `30s`.
    timeout: Option<String>,
}

/// The request's `?timeout=` (Go duration) or the default; the error text on a bad value.
fn action_timeout(q: &ActionQuery) -> Result<Duration, String> {
    match q.timeout.as_deref() {
        None | Some("") => Ok(DEFAULT_ACTION_TIMEOUT),
        Some(t) => crate::gofmt::parse_go_duration(t).map_err(|e| format!("invalid timeout: {e}")),
    }
}

fn action_error(id: &str, e: &ActionError) -> Response {
    let status = match e {
        ActionError::NotAttached | ActionError::NoGeneration => StatusCode::SERVICE_UNAVAILABLE,
        ActionError::DbSync(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ActionError::Replica { .. } | ActionError::Behind { .. } => StatusCode::BAD_GATEWAY,
    };
    error_response(
        status,
        ErrorDoc {
            error: e.to_string(),
            database: Some(id.to_string()),
            replica: e.replica().map(str::to_string),
        },
    )
}

/// Runs `action` on database `id` in its own task and waits at most the request's deadline. On
/// timeout the task goes on (an upload round is never abandoned half-way) and the answer is 504.
async fn run_action<T, F, Fut>(s: &Shared, id: &str, q: &ActionQuery, action: F) -> Response
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(Arc<crate::state::DbEntry>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ActionError>> + Send + 'static,
{
    let Some(entry) = s.state.db(id) else {
        return unknown_db(s, id);
    };
    let limit = match action_timeout(q) {
        Ok(d) => d,
        Err(text) => return message(StatusCode::BAD_REQUEST, text),
    };
    let task = tokio::spawn(action(entry));
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(Ok(doc))) => Json(doc).into_response(),
        Ok(Ok(Err(e))) => action_error(id, &e),
        Ok(Err(join)) => message(StatusCode::INTERNAL_SERVER_ERROR, join.to_string()),
        Err(_) => error_response(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorDoc {
                error: format!(
                    "not finished within {}; still running",
                    crate::gofmt::format_go_duration(limit.as_nanos() as i128)
                ),
                database: Some(id.to_string()),
                replica: None,
            },
        ),
    }
}

async fn sync(State(s): Ctx, Path(id): Path<String>, Query(q): Query<ActionQuery>) -> Response {
    run_action(&s, &id, &q, |e| async move { actions::sync(&e).await }).await
}

async fn snapshot(State(s): Ctx, Path(id): Path<String>, Query(q): Query<ActionQuery>) -> Response {
    run_action(&s, &id, &q, |e| async move { actions::snapshot(&e).await }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_addresses() {
        assert_eq!(split_addr(":9090").expect("ok"), ("", 9090));
        assert_eq!(split_addr("127.0.0.1:0").expect("ok"), ("127.0.0.1", 0));
        assert_eq!(split_addr("[::1]:80").expect("ok"), ("::1", 80));
        assert!(split_addr("localhost").is_err());
        assert!(split_addr("localhost:x").is_err());
    }

    #[test]
    fn binds_only_the_configured_address() {
        let s = Server::bind("127.0.0.1:0", HttpConfig::default()).expect("bind");
        let addr = s.local_addr().expect("addr");
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        // The port is taken now: binding it again fails with the address in the message.
        let again = format!("127.0.0.1:{}", addr.port());
        let err = Server::bind(&again, HttpConfig::default()).expect_err("taken");
        assert!(err.to_string().contains(&again), "{err}");
    }
}
