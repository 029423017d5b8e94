//! Pins and expiry of backups over HTTP (issue 17): `POST`/`DELETE …/backups/{id}/pin` and
//! `POST …/backups/expire` with `{"dry_run": true|false}`.
//!
//! What must stay true: all three are mutating routes (the token); pinning, unpinning and a
//! real expire take the database's operation lock like every other mutation (409 when busy),
//! a dry run takes none and changes nothing; the answers are the record (pins) and the
//! verdict of every backup with its reasons (expire), as `walstream backup expire -json`
//! prints them.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{Ctx, Pairs, jobs, parse_body, record_doc};
use crate::admin::blocking;
use crate::admin::retention::Verdict;
use crate::server::ApiError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpireBody {
    #[serde(default)]
    dry_run: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct ExpireDoc {
    database: String,
    dry_run: bool,
    backups: Vec<Verdict>,
}

pub(super) async fn pin(
    State(a): Ctx,
    Path((db, id)): Path<(String, String)>,
    query: Pairs,
) -> Result<Response, ApiError> {
    set_pinned(a, (db, id), query, true).await
}

pub(super) async fn unpin(
    State(a): Ctx,
    Path((db, id)): Path<(String, String)>,
    query: Pairs,
) -> Result<Response, ApiError> {
    set_pinned(a, (db, id), query, false).await
}

async fn set_pinned(
    a: Arc<super::Admin>,
    (db, id): (String, String),
    query: Pairs,
    pinned: bool,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let asynchronous = jobs::wants_async(query)?;
    crate::admin::names::check_id(&id)?;
    let store = d.store.clone();
    let op = if pinned { "pin" } else { "unpin" };
    jobs::run_job(&a, &d, (op, asynchronous), move |_| async move {
        let record = blocking(move || store.set_pinned(&id, pinned)).await?;
        Ok((StatusCode::OK, jobs::body(&record_doc(&db, record))))
    })
    .await
}

pub(super) async fn expire(
    State(a): Ctx,
    Path(db): Path<String>,
    query: Pairs,
    body: Bytes,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let asynchronous = jobs::wants_async(query)?;
    let req: ExpireBody = parse_body(&body)?;
    let store = d.store.clone();
    let doc = move |backups, dry_run| ExpireDoc {
        database: db,
        dry_run,
        backups,
    };
    if req.dry_run {
        let backups = blocking(move || store.expire(true)).await?;
        return Ok(Json(doc(backups, true)).into_response());
    }
    jobs::run_job(&a, &d, ("expire", asynchronous), move |_| async move {
        let backups = blocking(move || store.expire(false)).await?;
        Ok((StatusCode::OK, jobs::body(&doc(backups, false))))
    })
    .await
}
