//! Jobs: every mutating admin operation of the HTTP API (backup, delete, restore, pin, unpin,
//! expire, upload) runs as a job with an id, a state and, once it ends, the answer it gave.
//! `?async=true` on the operation's request answers `202 Accepted` at once with the job
//! (`Location: /api/v1/jobs/{id}`); without it the request answers when the operation ends, as
//! before. `GET /api/v1/jobs/{id}` and `GET /api/v1/jobs` (newest first) show them.
//!
//! What must stay true:
//! - the operation runs in its own task of the run's lifecycle that owns the lock guard, so a
//!   client that leaves (or never waits, with `async`) neither cancels it nor frees the lock;
//! - a job's recorded outcome is exactly the status and body the synchronous request answers;
//! - only the newest [`KEEP`] jobs are remembered, and a job never holds database content (its
//!   result is the operation's JSON answer: records, ids, positions), so listing jobs needs only
//!   the read permission;
//! - the read-only data operations (`compare`, `export`) run as *data jobs* with `?async=true`:
//!   no operation lock (they change nothing), and their answer — database content — goes to a
//!   file in `<backups>/.results/` that only `GET /api/v1/jobs/{id}/result` serves, behind the
//!   token like the synchronous endpoints; the job itself shows the result's URL, type and
//!   size. Only the newest [`KEEP_RESULTS`] result files are kept (older ones are deleted and
//!   answer 410), a forgotten job's file is deleted with it, and a database's results folder
//!   is emptied when this process first uses it (results of an earlier run are unreachable).

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{Admin, AdminDb, ApiError, Ctx, Pairs};

/// Jobs remembered (running ones are never dropped).
const KEEP: usize = 200;
/// Result files of data jobs kept at once (the newest).
const KEEP_RESULTS: usize = 20;

/// The jobs of this process.
#[derive(Debug, Default)]
pub(super) struct Jobs {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    recent: VecDeque<Arc<Job>>,
    /// Results folders emptied by this process.
    cleaned: BTreeSet<PathBuf>,
}

/// One operation.
#[derive(Debug)]
pub(super) struct Job {
    id: String,
    database: String,
    operation: &'static str,
    started: String,
    state: Mutex<JobState>,
    /// A data job's answer file (`None` for other jobs, and once deleted).
    result: Mutex<Option<ResultFile>>,
}

/// Where a data job writes its answer and how it is served.
#[derive(Debug, Clone)]
pub(super) struct ResultFile {
    pub path: PathBuf,
    pub content_type: &'static str,
    /// `Content-Disposition` of a download (CSV), `None` for JSON.
    pub disposition: Option<String>,
}

#[derive(Debug, Clone)]
enum JobState {
    Running {
        phase: Option<&'static str>,
    },
    Done {
        finished: String,
        status: StatusCode,
        body: Value,
    },
}

/// A job as the API shows it.
#[derive(Debug, Serialize)]
pub(super) struct JobDoc {
    id: String,
    url: String,
    database: String,
    operation: &'static str,
    /// `running`, `succeeded` or `failed`.
    state: &'static str,
    /// What a running job is doing (restores: `fetching`, `checking schema`, `safety backup`,
    /// `copying`, `syncing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<&'static str>,
    started: String,
    finished: Option<String>,
    /// The HTTP status the operation answered (or would have).
    status: Option<u16>,
    /// The operation's answer when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    /// The operation's error answer when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

#[derive(Debug, Serialize)]
pub(super) struct JobList {
    jobs: Vec<JobDoc>,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Jobs {
    /// Registers a running job of `operation` on `database`.
    fn start(&self, database: &str, operation: &'static str) -> Arc<Job> {
        let mut inner = crate::rt::lock(&self.inner);
        inner.seq += 1;
        let id = format!(
            "{}-{}-{:06x}",
            Utc::now().format("%Y%m%dT%H%M%SZ"),
            inner.seq,
            rand::random::<u32>() & 0xff_ffff
        );
        let job = Arc::new(Job {
            id,
            database: database.to_string(),
            operation,
            started: now(),
            state: Mutex::new(JobState::Running { phase: None }),
            result: Mutex::new(None),
        });
        inner.recent.push_back(Arc::clone(&job));
        while inner.recent.len() > KEEP {
            let Some(pos) = inner.recent.iter().position(|j| !j.is_running()) else {
                break;
            };
            if let Some(gone) = inner.recent.remove(pos) {
                gone.delete_result();
            }
        }
        job
    }

    /// Deletes the result files of finished data jobs beyond the newest [`KEEP_RESULTS`].
    fn trim_results(&self) {
        let inner = crate::rt::lock(&self.inner);
        let finished_with_file = inner
            .recent
            .iter()
            .rev()
            .filter(|j| !j.is_running() && crate::rt::lock(&j.result).is_some());
        for old in finished_with_file.skip(KEEP_RESULTS) {
            old.delete_result();
        }
    }

    /// `<backups>/.results`, emptied the first time this process uses it.
    fn results_dir(&self, backups: &FsPath) -> Result<PathBuf, ApiError> {
        let dir = backups.join(".results");
        let mut inner = crate::rt::lock(&self.inner);
        if inner.cleaned.insert(dir.clone()) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    inner.cleaned.remove(&dir);
                    return Err(ApiError::Internal(format!("empty {}: {e}", dir.display())));
                }
            }
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::Internal(format!("create {}: {e}", dir.display())))?;
        Ok(dir)
    }

    /// Forgets a job that never started (its lock was busy).
    fn forget(&self, id: &str) {
        crate::rt::lock(&self.inner).recent.retain(|j| j.id != id);
    }

    fn get(&self, id: &str) -> Option<Arc<Job>> {
        let inner = crate::rt::lock(&self.inner);
        inner.recent.iter().find(|j| j.id == id).cloned()
    }
}

impl Job {
    /// Deletes this job's result file, if any (best effort: a file that cannot be deleted is
    /// left for the next process to empty the folder).
    fn delete_result(&self) {
        if let Some(r) = crate::rt::lock(&self.result).take() {
            let _ = std::fs::remove_file(&r.path);
        }
    }

    fn is_running(&self) -> bool {
        matches!(*crate::rt::lock(&self.state), JobState::Running { .. })
    }

    /// Records what the running job does now.
    pub(super) fn set_phase(&self, phase: &'static str) {
        let mut state = crate::rt::lock(&self.state);
        if let JobState::Running { phase: p } = &mut *state {
            *p = Some(phase);
        }
    }

    fn finish(&self, status: StatusCode, body: Value) {
        *crate::rt::lock(&self.state) = JobState::Done {
            finished: now(),
            status,
            body,
        };
    }

    fn doc(&self) -> JobDoc {
        let state = crate::rt::lock(&self.state).clone();
        let mut doc = JobDoc {
            id: self.id.clone(),
            url: format!("/api/v1/jobs/{}", self.id),
            database: self.database.clone(),
            operation: self.operation,
            state: "running",
            phase: None,
            started: self.started.clone(),
            finished: None,
            status: None,
            result: None,
            error: None,
        };
        match state {
            JobState::Running { phase } => doc.phase = phase,
            JobState::Done {
                finished,
                status,
                body,
            } => {
                doc.finished = Some(finished);
                doc.status = Some(status.as_u16());
                if status.is_success() {
                    doc.state = "succeeded";
                    doc.result = Some(body);
                } else {
                    doc.state = "failed";
                    doc.error = Some(body);
                }
            }
        }
        doc
    }
}

/// Whether the request's query asks for `async=true` (`false`/absent: answer when done); any
/// other parameter or value is a 400.
pub(super) fn wants_async(query: Pairs) -> Result<bool, ApiError> {
    let params = super::data::query_params(query, &["async"], &[])?;
    async_flag(
        params
            .get("async")
            .and_then(|v| v.first())
            .map(String::as_str),
    )
}

/// The value of an `async` query parameter.
pub(super) fn async_flag(value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "invalid async {:?}: must be true or false",
            other.chars().take(32).collect::<String>()
        ))),
    }
}

/// What an operation answers: its status and JSON body (`204` answers have none).
pub(super) type Answer = (StatusCode, Value);

/// The JSON of an answer's body.
pub(super) fn body<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
}

/// Runs `work` as the job `op` of database `d`: takes the lock (a `409` naming the running job
/// otherwise), runs it in its own task of the run (owning the lock guard) and records its
/// answer in the job; answers `202` with the job at once when `asynchronous`, else the
/// operation's own answer when it ends.
pub(super) async fn run_job<F, W>(
    a: &Admin,
    d: &AdminDb,
    (op, asynchronous): (&'static str, bool),
    work: W,
) -> Result<Response, ApiError>
where
    W: FnOnce(Arc<Job>) -> F,
    F: std::future::Future<Output = Result<Answer, ApiError>> + Send + 'static,
{
    if a.life().is_stopping() {
        return Err(ApiError::shutting_down());
    }
    let job = a.jobs.start(&d.entry.id, op);
    let guard = match d.lock.try_begin_job(op, Some(job.id.clone())) {
        Ok(g) => g,
        Err(mut busy) => {
            a.jobs.forget(&job.id);
            busy.database = d.entry.id.clone();
            return Err(ApiError::from(busy));
        }
    };
    let fut = work(Arc::clone(&job));
    let recorder = Arc::clone(&job);
    let task = a.life().spawn_work(async move {
        let out = fut.await;
        drop(guard);
        let (status, body) = out.unwrap_or_else(ApiError::status_and_body);
        recorder.finish(status, body.clone());
        (status, body)
    });
    if asynchronous {
        return Ok(accepted(&job));
    }
    match task.await {
        Ok(Some((StatusCode::NO_CONTENT, _))) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(Some((status, body))) => Ok((status, Json(body)).into_response()),
        Ok(None) => {
            let (status, body) = ApiError::shutting_down().status_and_body();
            job.finish(status, body);
            Err(ApiError::shutting_down())
        }
        Err(join) => {
            let (status, body) = ApiError::Internal(join.to_string()).status_and_body();
            job.finish(status, body);
            Err(ApiError::Internal(join.to_string()))
        }
    }
}

pub(super) async fn get_job(
    State(a): Ctx,
    Path(id): Path<String>,
) -> Result<Json<JobDoc>, ApiError> {
    let job = a.jobs.get(&id).ok_or_else(|| unknown_job(&id))?;
    Ok(Json(job.doc()))
}

/// Runs the read-only `work` as data job `op` of database `d` and answers `202` with the job at
/// once. `work` writes its answer to the path it is given (with the `ResultFile`'s type); the
/// job then records the result's URL, type and size, never the content.
pub(super) async fn run_data_job<F, W>(
    a: &Admin,
    d: &AdminDb,
    op: &'static str,
    (content_type, ext, disposition): (&'static str, &'static str, Option<String>),
    work: W,
) -> Result<Response, ApiError>
where
    W: FnOnce(Arc<Job>, PathBuf) -> F,
    F: std::future::Future<Output = Result<(), ApiError>> + Send + 'static,
{
    if a.life().is_stopping() {
        return Err(ApiError::shutting_down());
    }
    let dir = a.jobs.results_dir(d.store.dir())?;
    let job = a.jobs.start(&d.entry.id, op);
    let path = dir.join(format!("{}.{ext}", job.id));
    *crate::rt::lock(&job.result) = Some(ResultFile {
        path: path.clone(),
        content_type,
        disposition,
    });
    let fut = work(Arc::clone(&job), path.clone());
    let (recorder, jobs) = (Arc::clone(&job), Arc::clone(&a.jobs));
    a.life().spawn_work(async move {
        let (status, body) = match fut.await {
            Ok(()) => {
                let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                let url = format!("/api/v1/jobs/{}/result", recorder.id);
                let doc =
                    serde_json::json!({ "url": url, "content_type": content_type, "bytes": bytes });
                (StatusCode::OK, doc)
            }
            Err(e) => {
                recorder.delete_result();
                e.status_and_body()
            }
        };
        recorder.finish(status, body);
        jobs.trim_results();
    });
    Ok(accepted(&job))
}

/// `202 Accepted` with the job and `Location: /api/v1/jobs/{id}`.
fn accepted(job: &Job) -> Response {
    let doc = job.doc();
    let location = doc.url.clone();
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(doc),
    )
        .into_response()
}

/// `GET /api/v1/jobs/{id}/result`: a data job's answer (JSON or CSV), streamed from its file.
pub(super) async fn job_result(
    State(a): Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = a.jobs.get(&id).ok_or_else(|| unknown_job(&id))?;
    let file = crate::rt::lock(&job.result).clone();
    let state = crate::rt::lock(&job.state).clone();
    match (state, file) {
        (JobState::Running { .. }, _) => Err(ApiError::Conflict(format!(
            "job {} is still running: poll {} until it ends",
            job.id,
            job.doc().url
        ))),
        (JobState::Done { status, .. }, _) if !status.is_success() => Err(ApiError::Conflict(
            format!("job {} failed: its error is in {}", job.id, job.doc().url),
        )),
        (JobState::Done { .. }, None) => Err(ApiError::NotFound(format!(
            "job {} ({}) has no result to download",
            job.id, job.operation
        ))),
        (JobState::Done { .. }, Some(r)) => {
            let file = match tokio::fs::File::open(&r.path).await {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ApiError::Gone(format!(
                        "the result of job {} was deleted (the newest {KEEP_RESULTS} are kept)",
                        job.id
                    )));
                }
                Err(e) => {
                    return Err(ApiError::Internal(format!(
                        "open {}: {e}",
                        r.path.display()
                    )));
                }
            };
            let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
            let mut resp = ([(header::CONTENT_TYPE, r.content_type)], body).into_response();
            if let Some(d) = r.disposition
                && let Ok(v) = header::HeaderValue::from_str(&d)
            {
                resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            Ok(resp)
        }
    }
}

fn unknown_job(id: &str) -> ApiError {
    let shown: String = id.chars().take(64).collect();
    ApiError::NotFound(format!(
        "unknown job {shown:?} (jobs are kept in memory, the newest {KEEP})"
    ))
}

pub(super) async fn list_jobs(State(a): Ctx) -> Json<JobList> {
    let inner = crate::rt::lock(&a.jobs.inner);
    let jobs = inner.recent.iter().rev().map(|j| j.doc()).collect();
    Json(JobList { jobs })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished data job of `jobs` whose result file exists in `dir`.
    fn finished_data_job(jobs: &Jobs, dir: &FsPath) -> Arc<Job> {
        let job = jobs.start("app.db", "export");
        let path = dir.join(format!("{}.csv", job.id));
        std::fs::write(&path, "a,b\n").expect("result");
        *crate::rt::lock(&job.result) = Some(ResultFile {
            path,
            content_type: "text/csv",
            disposition: None,
        });
        job.finish(StatusCode::OK, serde_json::json!({}));
        job
    }

    #[test]
    fn results_folder_is_emptied_once_and_only_the_newest_results_are_kept() {
        let backups = tempfile::tempdir().expect("tempdir");
        let stale = backups.path().join(".results/old-run.csv");
        std::fs::create_dir_all(stale.parent().expect("parent")).expect("mkdir");
        std::fs::write(&stale, "x").expect("stale");
        let jobs = Jobs::default();
        let dir = jobs.results_dir(backups.path()).expect("dir");
        assert!(!stale.exists(), "an earlier run's result must go");
        let made: Vec<Arc<Job>> = (0..KEEP_RESULTS + 5)
            .map(|_| finished_data_job(&jobs, &dir))
            .collect();
        // The second use does not empty it again.
        assert_eq!(jobs.results_dir(backups.path()).expect("dir"), dir);
        assert_eq!(
            std::fs::read_dir(&dir).expect("list").count(),
            KEEP_RESULTS + 5
        );
        jobs.trim_results();
        let left: Vec<bool> = made.iter().map(|j| j.result_path_exists()).collect();
        assert_eq!(left.iter().filter(|x| **x).count(), KEEP_RESULTS);
        assert!(
            left[5..].iter().all(|x| *x),
            "the newest are kept: {left:?}"
        );
        assert_eq!(std::fs::read_dir(&dir).expect("list").count(), KEEP_RESULTS);
    }

    impl Job {
        fn result_path_exists(&self) -> bool {
            crate::rt::lock(&self.result)
                .as_ref()
                .is_some_and(|r| r.path.exists())
        }
    }
}
