//! `POST /api/v1/databases/{db}/drill`: a restore drill now (`replicate::drill::drill_now`), as a
//! job like every admin operation (`?async=true` answers 202): the first replica's latest point
//! and the newest backup restored into a work folder and checked, with how long each took. The
//! answer is the drill's report, which also becomes the database's `drill` in the status.
//!
//! What must stay true: the route needs the token (a drill costs a full restore); the drill
//! changes nothing, but it runs under the database's operation lock so it never competes with a
//! live restore for the same work folder and bandwidth.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{ApiError, Ctx, Pairs, jobs};
use crate::server::api::DrillDoc;

pub(super) async fn drill(
    State(a): Ctx,
    Path(db): Path<String>,
    query: Pairs,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let asynchronous = jobs::wants_async(query)?;
    let handle = Arc::clone(&d.entry.handle);
    jobs::run_job(&a, &d, ("drill", asynchronous), move |_| async move {
        let report = crate::replicate::drill::drill_now(&handle).await;
        Ok((StatusCode::OK, jobs::body(&DrillDoc::from_report(&report))))
    })
    .await
}
