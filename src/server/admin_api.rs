//! The admin endpoints of issue 6 (contract: `docs/http-api.md`, "Backups and live restore"):
//! manual backups (list, create, download, delete), live restore from a backup or from the
//! first replica, and a verified download of the replica's latest (or point-in-time) database;
//! uploads of database files are in `admin_api/upload.rs`.
//!
//! What must stay true:
//! - mutating endpoints sit behind the bearer-token layer (`mutate`), the downloads (backup,
//!   replica) behind `data` (the token always, whatever `http-protect-reads` says), listings
//!   behind `read`;
//! - one mutating operation per database at a time: a second one is answered 409 at once with
//!   what runs (`running`), never queued;
//! - the work of a mutating request runs in its own task that owns the lock guard, so a client
//!   that disconnects mid-restore neither cancels the copy half-way nor frees the lock early;
//! - ids are validated before any path is built (400); labels and list filters (`kind`,
//!   repeatable `label`, `limit`) are checked by the admin layer, an unknown or repeated
//!   single-valued list parameter is a 400 naming it; downloads stream from an open file
//!   handle (the replica download's temporary file is unlinked before streaming starts);
//! - pins and expiry (`admin_api/policy.rs`) are mutations like the others; a pinned backup's
//!   delete is a 409 naming it; the operation lock is the database's own
//!   (`DbHandle::ops`), shared with its scheduled backups;
//! - after a live restore walstream syncs the database and its replicas at once, so the
//!   restored content is replicated like any other write.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::io::ReaderStream;
use tracing::warn;

use super::{
    ApiError, DEFAULT_ACTION_TIMEOUT, Pairs, Shared, pairs, require_data, require_mutate,
    require_read, run_work,
};
use crate::admin::backups::NewBackup;
use crate::admin::live_restore::{WorkDir, restore_replica};
use crate::admin::{
    AdminError, BackupFilter, BackupKind, BackupRecord, BackupStore, CreatedBy, OpLock,
    RestoreSource, SourcePos, blocking, restore_live,
};
use crate::replica::Replica;
use crate::replicate::Lifecycle;
use crate::state::{DbEntry, ReplicaEntry};

mod data;
mod drill;
mod jobs;
mod policy;
mod upload;

/// Chunk size of streamed downloads.
const STREAM_CHUNK: usize = 256 * 1024;

/// Handler state: the server's shared state plus each database's backups folder and lock.
struct Admin {
    shared: Arc<Shared>,
    /// Built on first use per database (databases join and leave the fleet while it runs).
    dbs: std::sync::Mutex<HashMap<String, Arc<AdminDb>>>,
    /// Every mutating operation's job.
    jobs: Arc<jobs::Jobs>,
}

struct AdminDb {
    entry: Arc<DbEntry>,
    store: BackupStore,
    lock: Arc<OpLock>,
}

type Ctx = State<Arc<Admin>>;

/// The admin routes, ready to be merged into the server's router: `limited` under the server's
/// body limit, `upload` (`POST …/backups/upload`, which enforces its database's
/// `max-upload-size` itself) outside it.
pub(super) struct Routes<S> {
    pub limited: Router<S>,
    pub upload: Router<S>,
}

pub(super) fn routes<S: Clone + Send + Sync + 'static>(shared: &Arc<Shared>) -> Routes<S> {
    let admin = Arc::new(Admin {
        shared: Arc::clone(shared),
        dbs: std::sync::Mutex::new(HashMap::new()),
        jobs: Arc::default(),
    });
    let read = || axum::middleware::from_fn_with_state(Arc::clone(shared), require_read);
    let mutate = || axum::middleware::from_fn_with_state(Arc::clone(shared), require_mutate);
    let data = || axum::middleware::from_fn_with_state(Arc::clone(shared), require_data);
    let base = "/api/v1/databases/{db}";
    let upload = Router::new()
        .route(
            &format!("{base}/backups/upload"),
            post(upload::upload).route_layer(mutate()),
        )
        .with_state(Arc::clone(&admin));
    let limited = Router::new()
        .route(
            &format!("{base}/backups"),
            get(list_backups)
                .route_layer(read())
                .merge(post(create_backup).route_layer(mutate())),
        )
        .route(
            &format!("{base}/backups/{{id}}"),
            get(download_backup)
                .route_layer(data())
                .merge(axum::routing::delete(delete_backup).route_layer(mutate())),
        )
        .route(
            &format!("{base}/backups/expire"),
            post(policy::expire).route_layer(mutate()),
        )
        .route(
            &format!("{base}/backups/{{id}}/pin"),
            post(policy::pin)
                .merge(axum::routing::delete(policy::unpin))
                .route_layer(mutate()),
        )
        .route("/api/v1/jobs", get(jobs::list_jobs).route_layer(read()))
        .route(
            &format!("{base}/drill"),
            post(drill::drill).route_layer(mutate()),
        )
        .route("/api/v1/jobs/{id}", get(jobs::get_job).route_layer(read()))
        .route(
            "/api/v1/jobs/{id}/result",
            get(jobs::job_result).route_layer(data()),
        )
        .route(
            &format!("{base}/backups/compare"),
            get(data::compare).route_layer(data()),
        )
        .route(
            &format!("{base}/backups/{{id}}/export"),
            get(data::export).route_layer(data()),
        )
        .route(
            &format!("{base}/backups/{{id}}/restore"),
            post(restore_backup).route_layer(mutate()),
        )
        .route(
            &format!("{base}/restore"),
            post(restore_from_replica).route_layer(mutate()),
        )
        .route(
            &format!("{base}/replica/latest.db"),
            get(replica_latest).route_layer(data()),
        )
        .with_state(admin);
    Routes { limited, upload }
}

/// A backup record as the API shows it.
#[derive(Debug, Serialize)]
struct RecordDoc {
    #[serde(flatten)]
    record: BackupRecord,
    download_url: String,
}

fn record_doc(db: &str, record: BackupRecord) -> RecordDoc {
    let download_url = format!("/api/v1/databases/{db}/backups/{}", record.id);
    RecordDoc {
        record,
        download_url,
    }
}

#[derive(Debug, Serialize)]
struct ListDoc {
    database: String,
    backups: Vec<RecordDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    timestamp: Option<String>,
    /// Restore even when the schema or `user_version` differs from the live database's.
    #[serde(default)]
    force: bool,
}

/// The optional body of `POST …/backups/{id}/restore`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupRestoreBody {
    #[serde(default)]
    force: bool,
}

#[derive(Debug, Deserialize)]
struct LatestQuery {
    timestamp: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum RestoredFrom {
    Backup {
        backup: String,
    },
    Replica {
        replica: String,
        timestamp: Option<String>,
    },
}

#[derive(Debug, Serialize)]
struct RestoreDoc {
    database: String,
    restored_from: RestoredFrom,
    safety_backup: RecordDoc,
    integrity: &'static str,
    duration_seconds: f64,
}

impl Admin {
    fn life(&self) -> &Lifecycle {
        self.shared.state.lifecycle()
    }

    fn db(&self, id: &str) -> Result<Arc<AdminDb>, ApiError> {
        let entry = self.shared.db(id)?;
        let mut dbs = crate::rt::lock(&self.dbs);
        dbs.retain(|_, d| self.shared.state.db(&d.entry.id).is_some());
        let current = dbs.get(id).filter(|d| Arc::ptr_eq(&d.entry, &entry));
        if let Some(d) = current {
            return Ok(Arc::clone(d));
        }
        let d = Arc::new(AdminDb {
            store: BackupStore::new(entry.handle.db.path(), &entry.handle.backups)
                .with_tally(Arc::clone(&entry.handle.backup_tally)),
            lock: Arc::clone(&entry.handle.ops),
            entry,
        });
        dbs.insert(id.to_string(), Arc::clone(&d));
        Ok(d)
    }
}

impl AdminDb {
    /// The replica restores come from, or the 404 of a database without replicas.
    fn first_replica(&self) -> Result<&ReplicaEntry, AdminError> {
        self.entry
            .replicas
            .first()
            .ok_or_else(|| AdminError::NoReplica {
                path: self.store.db_path().to_path_buf(),
            })
    }

    fn position(&self) -> Option<SourcePos> {
        self.entry.handle.db.state().pos.map(Into::into)
    }
}

/// Parses an optional JSON body (empty = all defaults).
fn parse_body<T: Default + serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))
}

/// An RFC 3339 timestamp (empty or absent = latest).
fn parse_timestamp(t: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match t.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map(|d| Some(d.with_timezone(&Utc)))
            .map_err(|e| ApiError::BadRequest(format!("invalid timestamp {t:?}: {e}"))),
    }
}

/// The filter of `GET …/backups?kind=&label=key=value&limit=&since=&until=` (`label`
/// repeatable).
fn list_filter(query: Pairs) -> Result<BackupFilter, ApiError> {
    let params = data::query_params(query, &["kind", "limit", "since", "until"], &["label"])?;
    let one = |name| {
        params
            .get(name)
            .and_then(|v: &Vec<String>| v.first())
            .map(String::as_str)
    };
    let labels = params.get("label").map(Vec::as_slice).unwrap_or_default();
    Ok(BackupFilter::parse(one("kind"), labels, one("limit"))?
        .with_range(one("since"), one("until"))?)
}

async fn list_backups(
    State(a): Ctx,
    Path(db): Path<String>,
    query: Pairs,
) -> Result<Json<ListDoc>, ApiError> {
    let store = a.db(&db)?.store.clone();
    let filter = list_filter(query)?;
    let records = blocking(move || store.list_filtered(&filter)).await?;
    Ok(Json(ListDoc {
        backups: records.into_iter().map(|r| record_doc(&db, r)).collect(),
        database: db,
    }))
}

async fn create_backup(
    State(a): Ctx,
    Path(db): Path<String>,
    query: Pairs,
    body: Bytes,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let asynchronous = jobs::wants_async(query)?;
    let req: CreateBody = parse_body(&body)?;
    crate::admin::names::check_labels(&req.labels)?;
    let (store, position) = (d.store.clone(), d.position());
    jobs::run_job(&a, &d, ("backup", asynchronous), move |_| async move {
        let record = blocking(move || {
            store.create(NewBackup {
                kind: BackupKind::Manual,
                name: req.name.as_deref(),
                description: req.description.as_deref(),
                source: position,
                labels: req.labels,
                created_by: CreatedBy::Api,
            })
        })
        .await?;
        Ok((StatusCode::CREATED, jobs::body(&record_doc(&db, record))))
    })
    .await
}

async fn download_backup(
    State(a): Ctx,
    Path((db, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let store = d.store.clone();
    let (record, file) = blocking(move || {
        let (record, path) = store.get(&id)?;
        let file = std::fs::File::open(&path).map_err(AdminError::io("open", &path))?;
        Ok((record, file))
    })
    .await?;
    Ok(stream_file(
        file,
        record.size,
        &attachment(&d.entry, &record.id, "db"),
    ))
}

async fn delete_backup(
    State(a): Ctx,
    Path((db, id)): Path<(String, String)>,
    query: Pairs,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let asynchronous = jobs::wants_async(query)?;
    crate::admin::names::check_id(&id)?;
    let store = d.store.clone();
    jobs::run_job(&a, &d, ("delete", asynchronous), move |_| async move {
        blocking(move || store.delete(&id)).await?;
        Ok((StatusCode::NO_CONTENT, serde_json::Value::Null))
    })
    .await
}

async fn restore_backup(
    State(a): Ctx,
    Path((db, id)): Path<(String, String)>,
    query: Pairs,
    body: Bytes,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let asynchronous = jobs::wants_async(query)?;
    crate::admin::names::check_id(&id)?;
    let req: BackupRestoreBody = parse_body(&body)?;
    let from = RestoredFrom::Backup { backup: id.clone() };
    let how = (from, req.force, asynchronous);
    live_restore(&a, &d, how, |_| RestoreSource::Backup(id)).await
}

async fn restore_from_replica(
    State(a): Ctx,
    Path(db): Path<String>,
    query: Pairs,
    body: Bytes,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let asynchronous = jobs::wants_async(query)?;
    let req: RestoreBody = parse_body(&body)?;
    let timestamp = parse_timestamp(req.timestamp.as_deref())?;
    let first = d.first_replica()?;
    let from = RestoredFrom::Replica {
        replica: first.replica.client().describe(),
        timestamp: req.timestamp.filter(|t| !t.is_empty()),
    };
    let how = (from, req.force, asynchronous);
    live_restore(&a, &d, how, move |entry| {
        let r = &entry.replicas[0].replica;
        RestoreSource::Replica {
            name: r.name(),
            client: r.client(),
            timestamp,
        }
    })
    .await
}

/// The shared part of both restores: attached check, then as a job: restore (with the schema
/// guard unless `force`), sync, answer.
async fn live_restore<F>(
    a: &Admin,
    d: &AdminDb,
    (from, force, asynchronous): (RestoredFrom, bool, bool),
    source: F,
) -> Result<Response, ApiError>
where
    F: for<'e> FnOnce(&'e DbEntry) -> RestoreSource<'e> + Send + 'static,
{
    if !d.entry.handle.is_open() {
        return Err(ApiError::Unavailable(
            "database is not attached yet; nothing to restore into".into(),
        ));
    }
    let (entry, store, position) = (Arc::clone(&d.entry), d.store.clone(), d.position());
    jobs::run_job(a, d, ("restore", asynchronous), move |job| async move {
        let started = Instant::now();
        let phase = |p: &'static str| job.set_phase(p);
        let safety = restore_live(&store, source(&entry), position, force, &phase).await?;
        job.set_phase("syncing");
        replicate_now(&entry).await;
        let db = entry.id.clone();
        let doc = RestoreDoc {
            safety_backup: record_doc(&db, safety),
            database: db,
            restored_from: from,
            integrity: "ok",
            duration_seconds: started.elapsed().as_secs_f64(),
        };
        Ok((StatusCode::OK, jobs::body(&doc)))
    })
    .await
}

/// Syncs the database and every replica now (the restore is one big commit); failures are
/// logged — the background loops retry them like any other sync.
async fn replicate_now(entry: &DbEntry) {
    match tokio::time::timeout(DEFAULT_ACTION_TIMEOUT, super::actions::sync(entry)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(db = %entry.id, error = %e, "sync after live restore failed"),
        Err(_) => warn!(db = %entry.id, "sync after live restore still running"),
    }
}

async fn replica_latest(
    State(a): Ctx,
    Path(db): Path<String>,
    Query(q): Query<LatestQuery>,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let timestamp = parse_timestamp(q.timestamp.as_deref())?;
    let first = d.first_replica()?;
    let (store, replica) = (d.store.clone(), Arc::clone(&first.replica));
    let restoring = async move { restored_file(&store, &replica, timestamp).await };
    let (file, size) = run_work(a.life(), restoring).await??;
    Ok(stream_file(
        file,
        size,
        &attachment(&d.entry, "latest", "db"),
    ))
}

/// Restores the replica into a work folder and returns the open file; the folder (and so the
/// file's name) is gone before this returns, the open handle keeps the bytes readable.
async fn restored_file(
    store: &BackupStore,
    replica: &Replica,
    timestamp: Option<DateTime<Utc>>,
) -> Result<(std::fs::File, u64), AdminError> {
    let s = store.clone();
    let work = blocking(move || WorkDir::create(&s)).await?;
    let out = work.path().join("latest.db");
    restore_replica(replica.name(), replica.client(), timestamp, &out).await?;
    blocking(move || {
        let file = std::fs::File::open(&out).map_err(AdminError::io("open", &out))?;
        let size = file.metadata().map_err(AdminError::io("stat", &out))?.len();
        drop(work);
        Ok((file, size))
    })
    .await
}

/// `attachment; filename="<db stem>-<suffix>.<ext>"` (quotes, backslashes and control
/// characters replaced).
fn attachment(entry: &DbEntry, suffix: &str, ext: &str) -> String {
    let path = entry.handle.db.path();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "db".into());
    let safe: String = format!("{stem}-{suffix}")
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("attachment; filename=\"{safe}.{ext}\"")
}

fn stream_file(file: std::fs::File, size: u64, disposition: &str) -> Response {
    let stream = ReaderStream::with_capacity(tokio::fs::File::from_std(file), STREAM_CHUNK);
    let headers = [
        (header::CONTENT_TYPE, "application/vnd.sqlite3".to_string()),
        (header::CONTENT_LENGTH, size.to_string()),
        (header::CONTENT_DISPOSITION, disposition.to_string()),
    ];
    (headers, Body::from_stream(stream)).into_response()
}
