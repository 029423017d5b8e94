//! `POST …/backups/upload?name=&description=&label=k=v`: a whole `.db` file as the request body
//! (`Content-Type: application/vnd.sqlite3` or `application/octet-stream`), kept as a backup of
//! kind `uploaded` after the admin layer's checks (`admin::upload`).
//!
//! What must stay true:
//! - the route sits behind the token (`mutate`) and outside the server's 16 KiB body limit; its
//!   own limit is the database's `max-upload-size`: a declared `Content-Length` above it is a
//!   413 before anything is read or locked, and the admin layer stops at the limit while
//!   streaming (413 too);
//! - the body is streamed to the admin layer's blocking task through a bounded channel (a few
//!   chunks in memory whatever the file's size); a body that ends early (the client went away)
//!   fails the upload instead of keeping a truncated file; after a refusal at most
//!   [`DRAIN_MAX`] more bytes of the body are read (and dropped) before the answer;
//! - parameters, content type and labels are checked before the lock is taken; the work holds
//!   the database's operation lock (409 when busy) in its own task, as a job like every
//!   mutation (`?async=true` answers 202 once the whole body has been received).

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{ApiError, Ctx, Pairs, jobs, record_doc};
use crate::admin::backups::NewBackup;
use crate::admin::names::{check_description, check_labels, check_name, parse_labels};
use crate::admin::{AdminError, BackupKind, CreatedBy, blocking};

/// Chunks in flight between the request body and the blocking writer.
const IN_FLIGHT: usize = 4;
/// Most bytes of a refused upload's body still read (and dropped) before the answer: enough
/// for a client that sent a little too much to see its 413 or 400; beyond it the connection
/// is closed with the answer.
const DRAIN_MAX: usize = 1 << 20;
/// The accepted request content types.
const CONTENT_TYPES: [&str; 2] = ["application/vnd.sqlite3", "application/octet-stream"];

/// One message from the body to the writer: a chunk, or `None` once the body is complete.
type Piece = std::io::Result<Option<Bytes>>;

pub(super) async fn upload(
    State(a): Ctx,
    Path(db): Path<String>,
    query: Pairs,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let d = a.db(&db)?;
    let params = super::data::query_params(query, &["name", "description", "async"], &["label"])?;
    let one = |n: &str| params.get(n).and_then(|v| v.first()).cloned();
    let (name, description) = (one("name"), one("description"));
    let asynchronous = jobs::async_flag(one("async").as_deref())?;
    if let Some(n) = &name {
        check_name(n)?;
    }
    check_description(description.as_deref().unwrap_or(""))?;
    let labels = parse_labels(params.get("label").map(Vec::as_slice).unwrap_or_default())?;
    check_labels(&labels)?;
    check_content_type(&headers)?;
    let limit = d.store.max_upload_size();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(AdminError::TooLarge { limit }.into());
    }
    let (tx, rx) = mpsc::channel::<Piece>(IN_FLIGHT);
    let store = d.store.clone();
    let work = blocking(move || {
        store.upload(
            BodyReader::new(rx),
            NewBackup {
                kind: BackupKind::Uploaded,
                name: name.as_deref(),
                description: description.as_deref(),
                source: None,
                labels,
                created_by: CreatedBy::Api,
            },
        )
    });
    // The job owns the verification; the body is fed here either way, so even with `async`
    // the answer (202) comes once the whole file has been received.
    let job = jobs::run_job(&a, &d, ("upload", asynchronous), move |_| async move {
        let record = work.await?;
        Ok((StatusCode::CREATED, jobs::body(&record_doc(&db, record))))
    });
    let (answer, ()) = tokio::join!(job, feed(body, tx));
    answer
}

/// 415 unless the request says it carries a SQLite file (parameters such as `; charset` are
/// ignored).
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = given.split(';').next().unwrap_or("").trim();
    if CONTENT_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(essence))
    {
        return Ok(());
    }
    let shown: String = given.chars().take(64).collect();
    Err(ApiError::UnsupportedMediaType(format!(
        "Content-Type {shown:?} is not accepted: send the database file as {}",
        CONTENT_TYPES.join(" or ")
    )))
}

/// Sends the body's chunks to the writer, then the end mark. When the writer is gone (it
/// refused the file early) the rest of the body is read and dropped, up to [`DRAIN_MAX`]
/// bytes, so that a client still sending gets the answer instead of a reset connection.
async fn feed(body: Body, tx: mpsc::Sender<Piece>) {
    let mut stream = body.into_data_stream();
    while let Some(frame) = stream.next().await {
        let piece = frame.map(Some).map_err(std::io::Error::other);
        let failed = piece.is_err();
        if failed {
            let _ = tx.send(piece).await;
            return;
        }
        if tx.send(piece).await.is_err() {
            let mut drained = 0usize;
            while let Some(Ok(chunk)) = stream.next().await {
                drained += chunk.len();
                if drained > DRAIN_MAX {
                    return;
                }
            }
            return;
        }
    }
    let _ = tx.send(Ok(None)).await;
}

/// The request body as a blocking `Read` on the writer's thread.
struct BodyReader {
    rx: mpsc::Receiver<Piece>,
    chunk: Bytes,
    done: bool,
}

impl BodyReader {
    fn new(rx: mpsc::Receiver<Piece>) -> Self {
        BodyReader {
            rx,
            chunk: Bytes::new(),
            done: false,
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.chunk.is_empty() {
                let n = buf.len().min(self.chunk.len());
                buf[..n].copy_from_slice(&self.chunk.split_to(n));
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(Some(chunk))) => self.chunk = chunk,
                Some(Ok(None)) => self.done = true,
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the request body ended early",
                    ));
                }
            }
        }
    }
}
