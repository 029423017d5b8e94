//! `GET /api/v1/openapi.json`: the OpenAPI 3 document of the HTTP API, `src/server/openapi.json`,
//! written by hand from the serde types of [`super::api`], [`super::admin_api`] and
//! [`super::error`] and compiled into the binary.
//!
//! What must stay true: the document lists exactly the routes of the router (except the admin
//! page and its assets) with exactly their methods — the tests below compare both ways against
//! the router's source and against the router itself; its schemas match the real answers
//! (`tests/openapi.rs` validates every endpoint's body against them). It holds no data, so it
//! needs no token.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub(super) async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
