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
use serde::{Deserialize, Serialize};

use super::{Ctx, RecordDoc, parse_body, record_doc, run_locked};
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
) -> Result<Json<RecordDoc>, ApiError> {
    set_pinned(a, db, id, true).await
}

pub(super) async fn unpin(
    State(a): Ctx,
    Path((db, id)): Path<(String, String)>,
) -> Result<Json<RecordDoc>, ApiError> {
    set_pinned(a, db, id, false).await
}

async fn set_pinned(
    a: Arc<super::Admin>,
    db: String,
    id: String,
    pinned: bool,
) -> Result<Json<RecordDoc>, ApiError> {
    let d = a.db(&db)?;
    crate::admin::names::check_id(&id)?;
    let guard = d.begin(if pinned { "pin" } else { "unpin" })?;
    let store = d.store.clone();
    let work = blocking(move || store.set_pinned(&id, pinned));
    let record = run_locked(a.life(), guard, work).await?;
    Ok(Json(record_doc(&db, record)))
}

pub(super) async fn expire(
    State(a): Ctx,
    Path(db): Path<String>,
    body: Bytes,
) -> Result<Json<ExpireDoc>, ApiError> {
    let d = a.db(&db)?;
    let req: ExpireBody = parse_body(&body)?;
    let store = d.store.clone();
    let backups = if req.dry_run {
        blocking(move || store.expire(true)).await?
    } else {
        let guard = d.begin("expire")?;
        run_locked(a.life(), guard, blocking(move || store.expire(false))).await?
    };
    Ok(Json(ExpireDoc {
        database: db,
        dry_run: req.dry_run,
        backups,
    }))
}
