//! walstream: continuous replication of SQLite databases to object storage, compatible with the
//! Litestream v0.3.13 replica format (see `shared/spec/litestream-v0.3-format.md`).
//!
//! Module map (each owns one concern; see DESIGN.md):
//! - [`admin`]: manual backups, safe live restore and the per-database operation lock.
//! - [`config`]: YAML config model with Litestream v0.3.13 keys, env expansion, validation, URLs.
//! - [`gofmt`]: Go's text formats (durations, `strconv`, `%q`, RFC 3339) Litestream's users see.
//! - [`rt`]: runtime helpers: poison-tolerant locks, the one `spawn_blocking` wrapper, backoff.
//! - [`storage`]: replica storage over `object_store` (key layout, listing, put/get/delete, retries).
//! - [`crc64`]: CRC-64/GO-ISO, the checksum of Litestream's validator and of LTX files.
//! - [`ltx`]: Litestream v0.5 LTX files (header, pages, index, trailer, checksums), streamed.
//! - [`lz4`]: the LZ4 frame codec used for every snapshot and segment.
//! - [`wal`]: SQLite WAL header/frame parsing and the checksum chain.
//! - [`db`]: one live database (read lock, shadow WAL, checkpoints, generations).
//! - [`discover`]: which files of a directory entry are SQLite databases (pattern, depth, header).
//! - [`replica`]: sync, snapshot and retention loops for one replica.
//! - [`restore`]: restore planning, download, WAL apply and verification.
//! - [`state`]: the observed replication state (positions, lag, restore points) that
//!   [`metrics`] and [`server`] both read.
//! - [`server`]: HTTP endpoints (metrics, health, API).
//! - [`metrics`]: the Prometheus registry (Litestream's metric names plus walstream's).
//! - [`cli`]: command-line commands with Litestream's flag syntax and output.

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
