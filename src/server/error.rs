//! [`ApiError`]: every failed HTTP answer of the server, one variant per kind of failure, turned
//! into its status, headers and JSON body in one place ([`IntoResponse`]).
//!
//! What must stay true:
//! - every error answer is JSON: `{"error": …}` plus `database` / `replica` when the failure is
//!   about one (actions, timeouts), `{"error", "database", "running"}` for a busy database, or
//!   `{"error", "schema_conflict"}` for a live restore refused by the schema guard;
//! - the status of each domain error is decided here and only here (the table in
//!   [`ApiError::status`]); a 401 carries `WWW-Authenticate: Bearer realm="walstream"`;
//! - texts come from the domain errors' `Display`, which names paths, replicas and positions but
//!   never credentials (replica URLs are `describe()`d, tokens are never part of an error);
//!   server-side failures of admin operations are logged as well.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::error;

use super::actions::ActionError;
use super::api::ErrorDoc;
use super::auth::Denied;
use crate::admin::{AdminError, Busy};
use crate::restore::RestoreError;
use crate::state::AppState;

/// Most database ids named in an "unknown database" error.
const IDS_SHOWN: usize = 20;

/// A failed request, as the client will see it.
#[derive(Debug)]
pub enum ApiError {
    /// 400: a bad query string, parameter, body or id.
    BadRequest(String),
    /// 401 (no token, with `WWW-Authenticate`) or 403 (wrong token, mutations disabled).
    Denied(Denied),
    /// 404 with this text (unknown route, unknown database).
    NotFound(String),
    /// 409: another admin operation runs on the database.
    Busy(Busy),
    /// 409 with this text (a job's result asked for while it runs).
    Conflict(String),
    /// 410 with this text (a job result that has been deleted).
    Gone(String),
    /// 413: the declared body is larger than the limit (bytes).
    TooLarge(u64),
    /// 415 with this text (an upload whose `Content-Type` is not a database file's).
    UnsupportedMediaType(String),
    /// `POST …/sync` or `…/snapshot` failed on database `database`.
    Action {
        database: String,
        error: Box<ActionError>,
    },
    /// An admin operation failed.
    Admin(Box<AdminError>),
    /// 504: the action on `database` did not finish within `limit` (it goes on).
    Timeout { database: String, limit: Duration },
    /// 503 with this text (not attached yet, shutting down).
    Unavailable(String),
    /// 500 with this text.
    Internal(String),
}

impl ApiError {
    /// 404 naming `id` and the first known ids of `state`.
    pub fn unknown_db(state: &AppState, id: &str) -> ApiError {
        let entries = state.entries();
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
        ApiError::NotFound(format!(
            "unknown database {id:?} (known: {}{tail})",
            known.join(", ")
        ))
    }

    /// 503 of work asked for once shutdown started (it would reach storage after the final sync).
    pub fn shutting_down() -> ApiError {
        ApiError::Unavailable(
            "walstream is shutting down; the final sync covers this database".into(),
        )
    }

    /// The action error of database `database`.
    pub fn action(database: &str, error: ActionError) -> ApiError {
        ApiError::Action {
            database: database.to_string(),
            error: Box::new(error),
        }
    }

    /// The HTTP status of each kind of failure.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Denied(Denied::Missing) => StatusCode::UNAUTHORIZED,
            ApiError::Denied(Denied::Disabled(_) | Denied::Wrong) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Busy(_) | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Action { error, .. } => action_status(error),
            ApiError::Admin(e) => admin_status(e),
            ApiError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn action_status(e: &ActionError) -> StatusCode {
    match e {
        ActionError::NotAttached | ActionError::NoGeneration => StatusCode::SERVICE_UNAVAILABLE,
        ActionError::DbSync(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ActionError::Replica { .. } | ActionError::Behind { .. } => StatusCode::BAD_GATEWAY,
    }
}

fn admin_status(e: &AdminError) -> StatusCode {
    match e {
        AdminError::Invalid { .. } => StatusCode::BAD_REQUEST,
        AdminError::SchemaConflict(_) => StatusCode::CONFLICT,
        AdminError::NotFound { .. } | AdminError::NoReplica { .. } => StatusCode::NOT_FOUND,
        AdminError::Pinned { .. } => StatusCode::CONFLICT,
        AdminError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        AdminError::Restore {
            source: RestoreError::NoMatchingBackups,
            ..
        } => StatusCode::NOT_FOUND,
        AdminError::Restore { .. } => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        ApiError::Admin(Box::new(e))
    }
}

impl From<Busy> for ApiError {
    fn from(b: Busy) -> Self {
        ApiError::Busy(b)
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        ApiError::Denied(d)
    }
}

/// The body of a 409.
#[derive(Debug, Serialize)]
struct BusyDoc {
    error: String,
    database: String,
    running: String,
    /// The job running it (`GET /api/v1/jobs/{id}`), when it runs as one in this process.
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<String>,
}

/// The body of a restore's 409 for a schema change: both versions and the differences.
#[derive(Debug, Serialize)]
struct SchemaConflictDoc {
    error: String,
    schema_conflict: crate::admin::guard::SchemaConflict,
}

fn doc(error: String, database: Option<String>, replica: Option<String>) -> ErrorDoc {
    ErrorDoc {
        error,
        database,
        replica,
    }
}

impl ApiError {
    /// The status and JSON body of this answer: what [`IntoResponse`] sends (less a 401's
    /// `WWW-Authenticate` header), and what a job records as its outcome.
    pub fn status_and_body(self) -> (StatusCode, serde_json::Value) {
        let status = self.status();
        let value = |v: Result<serde_json::Value, serde_json::Error>| {
            v.unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
        };
        let body = match self {
            ApiError::Busy(b) => {
                let busy = BusyDoc {
                    error: b.to_string(),
                    database: b.database,
                    running: b.running,
                    job: b.job,
                };
                return (status, value(serde_json::to_value(busy)));
            }
            ApiError::Denied(d) => doc(d.to_string(), None, None),
            ApiError::BadRequest(text)
            | ApiError::NotFound(text)
            | ApiError::Conflict(text)
            | ApiError::Gone(text)
            | ApiError::Unavailable(text)
            | ApiError::UnsupportedMediaType(text)
            | ApiError::Internal(text) => doc(text, None, None),
            ApiError::TooLarge(limit) => doc(
                format!("request body larger than {limit} bytes"),
                None,
                None,
            ),
            ApiError::Action { database, error } => {
                let replica = error.replica().map(str::to_string);
                doc(error.to_string(), Some(database), replica)
            }
            ApiError::Admin(e) => {
                if let AdminError::SchemaConflict(conflict) = *e {
                    let body = SchemaConflictDoc {
                        error: conflict.to_string(),
                        schema_conflict: *conflict,
                    };
                    return (status, value(serde_json::to_value(body)));
                }
                if status.is_server_error() {
                    error!(error = %e, "admin operation failed");
                }
                doc(e.to_string(), None, None)
            }
            ApiError::Timeout { database, limit } => doc(
                format!(
                    "not finished within {}; still running",
                    crate::gofmt::format_go_duration(limit.as_nanos() as i128)
                ),
                Some(database),
                None,
            ),
        };
        (status, value(serde_json::to_value(body)))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let challenge = matches!(self, ApiError::Denied(Denied::Missing));
        let (status, body) = self.status_and_body();
        let mut resp = (status, Json(body)).into_response();
        if challenge {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"walstream\""),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::Access;

    fn body(e: ApiError) -> (StatusCode, Option<HeaderValue>, serde_json::Value) {
        let resp = e.into_response();
        let status = resp.status();
        let auth = resp.headers().get(header::WWW_AUTHENTICATE).cloned();
        let bytes = futures::executor::block_on(axum::body::to_bytes(resp.into_body(), 1 << 16))
            .expect("body");
        (status, auth, serde_json::from_slice(&bytes).expect("json"))
    }

    #[test]
    fn a_missing_token_is_401_with_a_challenge_a_wrong_one_403() {
        let (status, auth, doc) = body(ApiError::Denied(Denied::Missing));
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(auth.expect("challenge"), "Bearer realm=\"walstream\"");
        assert_eq!(doc["error"], Denied::Missing.to_string());
        let (status, auth, _) = body(ApiError::Denied(Denied::Wrong));
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(auth.is_none());
        let off = Denied::Disabled(Access::Data);
        let (status, auth, doc) = body(ApiError::Denied(off));
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(auth.is_none());
        assert_eq!(doc["error"], off.to_string());
    }

    #[test]
    fn busy_names_what_runs_and_actions_name_database_and_replica() {
        let b = Busy {
            database: "app.db".into(),
            running: "restore".into(),
            started: "2026-01-01T00:00:00.000Z".into(),
            job: Some("j-7".into()),
        };
        let (status, _, doc) = body(ApiError::Busy(b.clone()));
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(doc["running"], "restore");
        assert_eq!(doc["job"], "j-7");
        assert_eq!(doc["database"], "app.db");
        assert_eq!(doc["error"], b.to_string());
        let behind = ActionError::Behind {
            replica: "s3".into(),
            reached: "nothing".into(),
            target: "g/1:32".into(),
        };
        let (status, _, doc) = body(ApiError::action("app.db", behind));
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(doc["database"], "app.db");
        assert_eq!(doc["replica"], "s3");
        let (status, _, doc) = body(ApiError::Timeout {
            database: "app.db".into(),
            limit: Duration::from_millis(1500),
        });
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(doc["error"], "not finished within 1.5s; still running");
        assert!(doc.get("replica").is_none());
    }

    #[test]
    fn admin_errors_map_to_their_status() {
        let invalid = AdminError::invalid("id", "too long");
        assert_eq!(ApiError::from(invalid).status(), StatusCode::BAD_REQUEST);
        let none = AdminError::NoReplica { path: "/a".into() };
        assert_eq!(ApiError::from(none).status(), StatusCode::NOT_FOUND);
        let pinned = AdminError::Pinned { id: "x".into() };
        assert_eq!(ApiError::from(pinned).status(), StatusCode::CONFLICT);
        let locked = AdminError::LockTimeout {
            path: "/a".into(),
            seconds: 60,
        };
        let (status, _, doc) = body(ApiError::from(locked));
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(doc.get("database").is_none());
        let big = AdminError::TooLarge { limit: 2048 };
        assert_eq!(ApiError::from(big).status(), StatusCode::PAYLOAD_TOO_LARGE);
        let (status, _, doc) = body(ApiError::TooLarge(16));
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(doc["error"], "request body larger than 16 bytes");
    }
}
