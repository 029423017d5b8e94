//! The HTTP server of `walstream replicate` (when `addr` is set): Prometheus `/metrics`,
//! `/healthz`, `/readyz`, and the JSON API under `/api/v1` (documented in `docs/http-api.md`
//! and `docs/metrics.md`).
//!
//! What must stay true:
//! - only the configured address is bound (`:PORT` = every IPv4 interface, like Go's
//!   `net.Listen`), before replication starts, so a taken port fails the command at once;
//! - the server runs as a service of the run's [`Lifecycle`]: it shuts down gracefully after the
//!   final sync (requests in flight finish); the work of actions and admin operations runs on the
//!   run's tracker and is refused (503) once shutdown started, so nothing reaches storage after
//!   the final sync; an action result that arrives after its request timed out is logged;
//! - read handlers answer from in-memory state ([`crate::state::AppState::observe`], the restore-point
//!   cache): never SQLite, never storage; `GET …/restore-points` may wait (at most
//!   [`POINTS_WAIT`]) for the refresher task to list a changed replica; only the `POST` actions
//!   wait for I/O, under a deadline;
//! - `/api/v1/status` without query parameters answers the full document, unchanged; with
//!   them, one validated page (`query`);
//! - request bodies are refused above [`BODY_LIMIT`], except the upload of a database file
//!   (`POST …/backups/upload`), limited by its database's `max-upload-size`; every error answer is JSON
//!   (`{"error": …}`); credentials never appear in any answer (replica URLs come from
//!   `ReplicaClient::describe()`, the token is never echoed).
//!
//! Files: `api` (JSON documents, readiness; `api_backups` its backups summary), `query` (status paging and filters), `auth`
//! (bearer token), `cors` (`http-cors-origins`), `actions` (sync/snapshot), `error` (the one error type and its HTTP answer),
//! `openapi` (the OpenAPI document of every route below, `src/server/openapi.json`), this file
//! (routes, bind, spawn). The observed model, the lag trackers and the restore-point
//! cache live in [`crate::state`].

mod actions;
mod admin_api;
pub mod api;
pub mod api_backups;
pub mod auth;
pub mod cors;
pub mod error;
pub mod openapi;
pub mod page;
pub mod query;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tracing::{debug, error, info, warn};

pub use crate::state::{
    AppState, DbObservation, Observation, ReplicaObservation, StorageCounters, unique_ids,
};

use crate::config::HttpConfig;
use crate::metrics::Metrics;
use crate::replicate::{Fleet, Lifecycle};
use crate::state::DbEntry;
use actions::ActionError;
use api::{RestorePointsDoc, SnapshotTakenDoc, StatusDoc, SyncDoc};
use auth::Access;
pub use error::ApiError;

/// Largest request body accepted (the API takes no bodies; this only bounds abuse).
pub const BODY_LIMIT: u64 = 16 * 1024;
/// Default deadline of `POST …/sync` and `…/snapshot` (`?timeout=` overrides it).
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait of `GET …/restore-points` for the refresher to list a stale replica.
pub const POINTS_WAIT: Duration = Duration::from_secs(3);

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

    /// Starts serving, as a service of `lifecycle`, the databases of `fleet` (following it as
    /// databases come and go); also starts the lag trackers and restore-point refreshers on it.
    /// Logs `serving metrics on url=…`.
    pub fn start(self, fleet: &Arc<Fleet>, lifecycle: &Lifecycle) -> Result<(), ServerError> {
        let state = Arc::new(AppState::new(&[], self.settings, lifecycle.clone()));
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
        lifecycle.spawn_service(|finished| async move {
            let serving =
                axum::serve(listener, app).with_graceful_shutdown(finished.cancelled_owned());
            if let Err(e) = serving.await {
                error!(error = %e, "http server error");
            }
            debug!("http server stopped");
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

impl Shared {
    /// The database called `id` in URLs, or the 404 naming the known ones.
    fn db(&self, id: &str) -> Result<Arc<DbEntry>, ApiError> {
        self.state
            .db(id)
            .ok_or_else(|| ApiError::unknown_db(&self.state, id))
    }
}

type Ctx = State<Arc<Shared>>;

fn router(shared: Arc<Shared>) -> Router {
    // Layers sit on the method routers, so a wrong method is 405 before any token check.
    let read = || from_fn_with_state(Arc::clone(&shared), require_read);
    let mutate = || from_fn_with_state(Arc::clone(&shared), require_mutate);
    let origins: cors::Origins = Arc::from(shared.state.settings.cors_origins.clone());
    let admin = admin_api::routes(&shared);
    let app = Router::new()
        .route("/", get(page::index))
        .route("/assets/app.js", get(page::app_js))
        .route("/assets/app.css", get(page::app_css))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics).route_layer(read()))
        .route("/api/v1/openapi.json", get(openapi::document))
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
        .merge(admin.limited)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(limit_body))
        // The upload route has its own limit (`max-upload-size`), so it joins after the layer.
        .merge(admin.upload)
        .with_state(shared);
    // Outermost: a preflight is answered before the body limit, routing and the token check.
    if origins.is_empty() {
        app
    } else {
        app.layer(from_fn_with_state(origins, cors::cors))
    }
}

async fn limit_body(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return ApiError::TooLarge(BODY_LIMIT).into_response();
    }
    next.run(req).await
}

async fn require_read(State(s): Ctx, req: Request, next: Next) -> Response {
    authorize(&s, Access::Read, req, next).await
}

async fn require_mutate(State(s): Ctx, req: Request, next: Next) -> Response {
    authorize(&s, Access::Mutate, req, next).await
}

async fn require_data(State(s): Ctx, req: Request, next: Next) -> Response {
    authorize(&s, Access::Data, req, next).await
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
        Err(denied) => ApiError::from(denied).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("not found".into())
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

async fn metrics(State(s): Ctx) -> Result<Response, ApiError> {
    let text = s
        .metrics
        .render()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let content_type = [(header::CONTENT_TYPE, crate::metrics::content_type())];
    Ok((content_type, text).into_response())
}

type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The query pairs, or the 400 answer for an undecodable query string.
fn pairs(query: Pairs) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(p)| p)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

async fn status(State(s): Ctx, query: Pairs) -> Result<Json<StatusDoc>, ApiError> {
    let parsed = query::parse(&pairs(query)?).map_err(ApiError::BadRequest)?;
    Ok(Json(match parsed {
        None => StatusDoc::from_observation(&s.state.observe()),
        Some(q) => {
            let at = SystemTime::now();
            let (dbs, page) = query::select(&s.state, &q, at);
            StatusDoc::page(at, &dbs, page)
        }
    }))
}

/// `?refresh=true` of `…/restore-points`: list every replica now.
fn refresh_param(query: Pairs) -> Result<bool, ApiError> {
    let bad = |text: &str| Err(ApiError::BadRequest(text.into()));
    match pairs(query)?.as_slice() {
        [] => Ok(false),
        [(k, v)] if k == "refresh" => match v.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => bad("invalid refresh: want true or false"),
        },
        _ => bad("unknown parameter (known: refresh)"),
    }
}

async fn restore_points(
    State(s): Ctx,
    Path(id): Path<String>,
    query: Pairs,
) -> Result<Json<RestorePointsDoc>, ApiError> {
    let force = refresh_param(query)?;
    let entry = s.db(&id)?;
    let life = s.state.lifecycle();
    if (force || entry.points_stale()) && !life.is_stopping() {
        // The refresher ends when shutdown starts: answer from the cache then.
        tokio::select! {
            _ = entry.wait_for_listing(force, POINTS_WAIT) => {}
            _ = life.stopping() => {}
        }
    }
    let db = entry.observe(SystemTime::now());
    Ok(Json(RestorePointsDoc::from_observation(&db)))
}

#[derive(Debug, Deserialize)]
struct ActionQuery {
    /// Go duration, e.g. `30s`.
    timeout: Option<String>,
}

/// The request's `?timeout=` (Go duration) or the default.
fn action_timeout(q: &ActionQuery) -> Result<Duration, ApiError> {
    match q.timeout.as_deref() {
        None | Some("") => Ok(DEFAULT_ACTION_TIMEOUT),
        Some(t) => crate::gofmt::parse_go_duration(t)
            .map_err(|e| ApiError::BadRequest(format!("invalid timeout: {e}"))),
    }
}

/// Runs `action` (`what`, for the log) on database `id` as work of the run and waits at most
/// the request's deadline. On timeout the work goes on (an upload round is never abandoned
/// half-way), the answer is 504, and its result is logged when it arrives.
async fn run_action<T, F, Fut>(
    s: &Shared,
    (id, what): (&str, &'static str),
    q: &ActionQuery,
    action: F,
) -> Result<Json<T>, ApiError>
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(Arc<DbEntry>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ActionError>> + Send + 'static,
{
    let entry = s.db(id)?;
    let limit = action_timeout(q)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let db = id.to_string();
    let work = action(entry);
    let task = s.state.lifecycle().spawn_work(async move {
        if let Err(late) = tx.send(work.await) {
            log_late(&db, what, &late);
        }
    });
    match tokio::time::timeout(limit, rx).await {
        Ok(Ok(Ok(doc))) => Ok(Json(doc)),
        // An action that failed while the run is stopping failed because of it (its replica
        // finished its final sync and stopped): 503 like work that never ran, not a 502.
        Ok(Ok(Err(e))) if s.state.lifecycle().is_stopping() => {
            info!(db = id, action = what, error = %e, "action ended by shutdown");
            Err(ApiError::shutting_down())
        }
        Ok(Ok(Err(e))) => Err(ApiError::action(id, e)),
        // No result: the work never ran (shutdown) or panicked.
        Ok(Err(_)) => Err(match task.await {
            Ok(None) => ApiError::shutting_down(),
            Ok(Some(())) => ApiError::Internal(format!("{what} ended without a result")),
            Err(join) => ApiError::Internal(join.to_string()),
        }),
        Err(_) => Err(ApiError::Timeout {
            database: id.to_string(),
            limit,
        }),
    }
}

/// Runs `work` as work of the run (a task of its own: a client that disconnects does not cancel
/// it) and waits for it: 503 once shutdown started, 500 when it panicked.
async fn run_work<T: Send + 'static>(
    life: &Lifecycle,
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, ApiError> {
    match life.spawn_work(work).await {
        Ok(Some(out)) => Ok(out),
        Ok(None) => Err(ApiError::shutting_down()),
        Err(join) => Err(ApiError::Internal(join.to_string())),
    }
}

/// The result of an action whose request already got its 504.
fn log_late<T>(db: &str, what: &str, result: &Result<T, ActionError>) {
    match result {
        Ok(_) => info!(
            db,
            action = what,
            "action finished after its request timed out"
        ),
        Err(e) => warn!(db, action = what, error = %e, "action failed after its request timed out"),
    }
}

async fn sync(
    State(s): Ctx,
    Path(id): Path<String>,
    Query(q): Query<ActionQuery>,
) -> Result<Json<SyncDoc>, ApiError> {
    run_action(
        &s,
        (&id, "sync"),
        &q,
        |e| async move { actions::sync(&e).await },
    )
    .await
}

async fn snapshot(
    State(s): Ctx,
    Path(id): Path<String>,
    Query(q): Query<ActionQuery>,
) -> Result<Json<SnapshotTakenDoc>, ApiError> {
    run_action(&s, (&id, "snapshot"), &q, |e| async move {
        actions::snapshot(&e).await
    })
    .await
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
