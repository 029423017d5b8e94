//! walstream: continuous replication of SQLite databases to object storage, compatible with the
//! Litestream v0.3.13 replica format (see `shared/spec/litestream-v0.3-format.md`).
//!
//! Module map, from the bottom layer up (each owns one concern; see DESIGN.md). A module uses
//! only modules of lower layers; `tests/layering.rs` enforces the order and the absence of
//! circles (its `LAYERS` list splits the rows below where one member needs another).
//! - [`gofmt`]: Go's text formats (durations, `strconv`, `%q`, RFC 3339) Litestream's users see;
//!   [`rt`]: runtime helpers (poison-tolerant locks, the one `spawn_blocking` wrapper, backoff);
//!   [`crc64`]: CRC-64/GO-ISO, the checksum of Litestream's validator and of LTX files.
//! - [`config`]: YAML config model with Litestream v0.3.13 keys, env expansion, validation, URLs;
//!   [`wal`]: SQLite WAL header/frame parsing and the checksum chain; [`lz4`]: the LZ4 frame
//!   codec of every snapshot and segment; [`ltx`]: Litestream v0.5 LTX files, streamed.
//! - [`storage`]: replica storage over `object_store` (key layout, listing, put/get/delete, retries).
//! - [`db`]: one live database (read lock, shadow WAL, checkpoints, generations); [`discover`]:
//!   which files of a directory entry are SQLite databases (pattern, depth, header).
//! - [`restore`]: restore planning, download, WAL apply and verification; above it [`replica`]
//!   (sync, snapshot, retention and validation loops for one replica) and [`admin`] (manual
//!   backups, safe live restore, the per-database operation lock).
//! - [`replicate`]: the orchestrator of every database and replica.
//! - [`state`]: the observed replication state (positions, lag, restore points) that
//!   [`metrics`] and [`server`] both read.
//! - [`metrics`]: the Prometheus registry (Litestream's metric names plus walstream's); above it
//!   [`server`]: HTTP endpoints (metrics, health, API).
//! - [`cli`]: command-line commands with Litestream's flag syntax and output (and the hidden
//!   `fuzzing` targets); `main.rs` on top.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![deny(clippy::dbg_macro, clippy::todo)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod crc64;
pub mod db;
pub mod discover;
#[doc(hidden)]
#[allow(
    clippy::expect_used,
    reason = "fuzz targets report a broken invariant by panicking"
)]
pub mod fuzzing;
pub mod gofmt;
pub mod ltx;
pub mod lz4;
pub mod metrics;
pub mod replica;
pub mod replicate;
pub mod restore;
pub mod rt;
pub mod server;
pub mod state;
pub mod storage;
pub mod wal;
