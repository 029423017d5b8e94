//! What is inside backups, over HTTP: `GET …/backups/compare?a=&b=` (schema, row counts and a
//! page of changed rows between two backups or a backup and `live`) and
//! `GET …/backups/{id}/export?table=T` (one table as CSV, streamed; `{id}` may be `live`).
//!
//! With `async=true` either runs as a data job instead (`jobs::run_data_job`): `202` with the
//! job at once, the answer written to the job's result file and served by
//! `GET /api/v1/jobs/{id}/result` (also behind the `data` layer).
//!
//! What must stay true: both answer database content, so both sit behind the `data` layer (the
//! token always); both only read; every parameter is checked before anything is opened (400
//! naming it), an unknown backup is a 404; an export streams through a bounded channel from a
//! blocking task (memory is a few chunks whatever the table's size) and a failure before the
//! first byte is an ordinary error answer, after it an aborted body.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{ApiError, Ctx, Pairs, pairs};
use crate::admin::blocking;
use crate::admin::compare::{Comparison, Page, Source};
use crate::admin::export::export_csv;
use crate::admin::sources::{PointReplica, compare_sources, resolve};
use crate::replica::Replica;

/// Bytes per streamed CSV chunk.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the exporting task and the response.
const IN_FLIGHT: usize = 4;

/// The query's parameters by name: each of `known` at most once, each of `repeatable` any
/// number of times; any other name is a 400 naming it.
pub(super) fn query_params(
    query: Pairs,
    known: &[&'static str],
    repeatable: &[&'static str],
) -> Result<BTreeMap<&'static str, Vec<String>>, ApiError> {
    let mut out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for (key, value) in pairs(query)? {
        let Some(name) = known.iter().chain(repeatable).find(|k| **k == key) else {
            let shown: String = key.chars().take(32).collect();
            let all: Vec<&str> = known.iter().chain(repeatable).copied().collect();
            return Err(ApiError::BadRequest(format!(
                "unknown parameter {shown:?} (known: {})",
                all.join(", ")
            )));
        };
        let values = out.entry(name).or_default();
        if !values.is_empty() && !repeatable.contains(name) {
            return Err(ApiError::BadRequest(format!(
                "parameter {key:?} given twice"
            )));
        }
        values.push(value);
    }
    Ok(out)
}

/// The single value of `name`, if given.
fn one<'p>(params: &'p BTreeMap<&'static str, Vec<String>>, name: &str) -> Option<&'p str> {
    params.get(name).and_then(|v| v.first()).map(String::as_str)
}

/// A required `a`/`b` side: a backup id or `live`.
fn source(params: &BTreeMap<&'static str, Vec<String>>, name: &str) -> Result<Source, ApiError> {
    let text = one(params, name)
        .ok_or_else(|| ApiError::BadRequest(format!("parameter {name:?} is required")))?;
    Ok(Source::parse(text)?)
}

pub(super) async fn compare(
    State(a): Ctx,
    Path(db): Path<String>,
    query: Pairs,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let params = query_params(query, &["a", "b", "table", "offset", "limit", "async"], &[])?;
    let asynchronous = super::jobs::async_flag(one(&params, "async"))?;
    let (from, to) = (source(&params, "a")?, source(&params, "b")?);
    let page = Page::new(
        one(&params, "table").map(String::from),
        one(&params, "offset"),
        one(&params, "limit"),
    )?;
    let (store, replica) = (d.store.clone(), first_replica(&d));
    let work = async move {
        let point = replica.as_deref().map(point_replica);
        compare_sources(&store, (&from, &to), page, point).await
    };
    if asynchronous {
        let kind = ("application/json", "json", None);
        return super::jobs::run_data_job(&a, &d, "compare", kind, |job, out| async move {
            job.set_phase("comparing");
            let comparison = work.await?;
            blocking(move || write_json(&out, &comparison)).await?;
            Ok(())
        })
        .await;
    }
    Ok(Json(super::run_work(a.life(), work).await??).into_response())
}

/// The comparison as the synchronous answer's JSON, into the job's result file.
fn write_json(out: &std::path::Path, c: &Comparison) -> Result<(), crate::admin::AdminError> {
    let file = std::fs::File::create(out).map_err(crate::admin::AdminError::io("create", out))?;
    let mut w = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut w, c)
        .map_err(|e| crate::admin::AdminError::io("write", out)(std::io::Error::other(e)))?;
    w.flush()
        .map_err(crate::admin::AdminError::io("write", out))
}

/// The replica a point-in-time side restores from (the first configured one).
fn first_replica(d: &super::AdminDb) -> Option<Arc<Replica>> {
    d.entry.replicas.first().map(|r| Arc::clone(&r.replica))
}

fn point_replica(r: &Replica) -> PointReplica<'_> {
    PointReplica {
        name: r.name(),
        client: r.client(),
    }
}

pub(super) async fn export(
    State(a): Ctx,
    Path((db, id)): Path<(String, String)>,
    query: Pairs,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let params = query_params(query, &["table", "async"], &[])?;
    let asynchronous = super::jobs::async_flag(one(&params, "async"))?;
    let table = one(&params, "table")
        .ok_or_else(|| ApiError::BadRequest("parameter \"table\" is required".into()))?
        .to_string();
    crate::admin::compare::check_table_name(&table)?;
    let source = Source::parse(&id)?;
    let (store, replica) = (d.store.clone(), first_replica(&d));
    let resolving = async move {
        let point = replica.as_deref().map(point_replica);
        resolve(&store, &source, point).await
    };
    if asynchronous {
        let disposition = super::attachment(&d.entry, &format!("{id}-{table}"), "csv");
        let kind = ("text/csv; charset=utf-8", "csv", Some(disposition));
        return super::jobs::run_data_job(&a, &d, "export", kind, |job, out| async move {
            job.set_phase("resolving");
            let resolved = resolving.await?;
            job.set_phase("exporting");
            blocking(move || {
                let file = std::fs::File::create(&out)
                    .map_err(crate::admin::AdminError::io("create", &out))?;
                let mut w = std::io::BufWriter::with_capacity(CHUNK, file);
                export_csv(resolved.side(), &table, &mut w)?;
                w.flush()
                    .map_err(crate::admin::AdminError::io("write", &out))
            })
            .await?;
            Ok(())
        })
        .await;
    }
    let resolved = super::run_work(a.life(), resolving).await??;
    let name = table.clone();
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Bytes>>(IN_FLIGHT);
    let task = blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(CHUNK, Sender(tx.clone()));
        let result = export_csv(resolved.side(), &name, &mut out);
        if let Err(e) = &result {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
        result
    });
    let task = a.life().spawn_work(task);
    let first = match rx.recv().await {
        Some(Ok(first)) => first,
        // Failed before its first byte: answer the export's own error.
        Some(Err(_)) | None => match task.await {
            Ok(Some(ended)) => {
                ended?;
                Bytes::new()
            }
            Ok(None) => return Err(ApiError::shutting_down()),
            Err(join) => return Err(ApiError::Internal(join.to_string())),
        },
    };
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let body = Body::from_stream(futures::stream::once(async { Ok(first) }).chain(rest));
    let disposition = super::attachment(&d.entry, &format!("{id}-{table}"), "csv");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// A `Write` that sends each buffer it is given as one chunk; a gone receiver (the client
/// left) is a broken pipe, which stops the export.
struct Sender(mpsc::Sender<std::io::Result<Bytes>>);

impl Write for Sender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
