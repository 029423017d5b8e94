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
//!   the read permission.

use std::collections::VecDeque;
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

/// The jobs of this process.
#[derive(Debug, Default)]
pub(super) struct Jobs {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    recent: VecDeque<Arc<Job>>,
}

/// One operation.
#[derive(Debug)]
pub(super) struct Job {
    id: String,
    database: String,
    operation: &'static str,
    started: String,
    state: Mutex<JobState>,
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
        });
        inner.recent.push_back(Arc::clone(&job));
        while inner.recent.len() > KEEP {
            let Some(pos) = inner.recent.iter().position(|j| !j.is_running()) else {
                break;
            };
            inner.recent.remove(pos);
        }
        job
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
        let doc = job.doc();
        let location = doc.url.clone();
        return Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, location)],
            Json(doc),
        )
            .into_response());
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
    let job = a.jobs.get(&id).ok_or_else(|| {
        let shown: String = id.chars().take(64).collect();
        ApiError::NotFound(format!(
            "unknown job {shown:?} (jobs are kept in memory, the newest {KEEP})"
        ))
    })?;
    Ok(Json(job.doc()))
}

pub(super) async fn list_jobs(State(a): Ctx) -> Json<JobList> {
    let inner = crate::rt::lock(&a.jobs.inner);
    let jobs = inner.recent.iter().rev().map(|j| j.doc()).collect();
    Json(JobList { jobs })
}
