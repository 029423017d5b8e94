//! Default values of every configurable setting, each with its source.
//!
//! Invariant: these equal Litestream v0.3.13's defaults (spec §3.5, §4.1, §7.2); an explicitly
//! configured value — including 0 — always replaces them.

use std::time::Duration;

/// `monitor-interval`: how often the database is checked for new WAL frames (spec §3.3;
/// Litestream `DefaultMonitorInterval`).
pub const DEFAULT_MONITOR_INTERVAL: Duration = Duration::from_secs(1);

/// `checkpoint-interval`: time-based PASSIVE checkpoint (spec §3.5; `DefaultCheckpointInterval`).
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// `min-checkpoint-page-count`: shadow WAL size (pages) that triggers a PASSIVE checkpoint
/// (spec §3.5; `DefaultMinCheckpointPageN`). Must be > 0.
pub const DEFAULT_MIN_CHECKPOINT_PAGE_COUNT: u64 = 1000;

/// `max-checkpoint-page-count`: shadow WAL size (pages) that forces a RESTART checkpoint;
/// 0 disables (spec §3.5; `DefaultMaxCheckpointPageN`).
pub const DEFAULT_MAX_CHECKPOINT_PAGE_COUNT: u64 = 10_000;

/// WAL size (pages) that forces a TRUNCATE checkpoint; not configurable in v0.3.13
/// (spec §3.5; `DefaultTruncatePageN`).
pub const TRUNCATE_PAGE_COUNT: u64 = 500_000;

/// `sync-interval`: minimum time between uploads of one replica (spec §4.1;
/// `DefaultSyncInterval`). Must be > 0 (Litestream panics on 0).
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// `snapshot-interval`: periodic snapshots are off by default (spec §4.1).
pub const DEFAULT_SNAPSHOT_INTERVAL: Duration = Duration::ZERO;

/// `retention`: snapshots older than this may be deleted; 0 disables retention (spec §4.1;
/// `DefaultRetention`).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// `retention-check-interval`: how often retention runs, clamped to ≤ `retention`
/// (spec §4.1; `DefaultRetentionCheckInterval`).
pub const DEFAULT_RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// `validation-interval`: periodic restore-and-compare is off by default (spec §4.1).
pub const DEFAULT_VALIDATION_INTERVAL: Duration = Duration::ZERO;

/// Config file used when neither `-config` nor an environment variable names one (spec §6).
pub const LITESTREAM_CONFIG_PATH: &str = "/etc/litestream.yml";

/// Preferred default config file of walstream; used when it exists.
pub const WALSTREAM_CONFIG_PATH: &str = "/etc/walstream.yml";

/// `readiness-max-lag` (walstream only): `/readyz` answers 503 once a replica's oldest commit not
/// yet in storage is older than this. One minute tolerates a few failed upload rounds (backoff
/// starts at 1 s) without flapping, yet reports a real outage quickly.
pub const DEFAULT_READINESS_MAX_LAG: Duration = Duration::from_secs(60);

/// Environment variable holding the HTTP bearer token when the config has no `http-token`.
pub const HTTP_TOKEN_ENV: &str = "WALSTREAM_HTTP_TOKEN";

/// `backups.retain` (walstream only): manual backups kept per database. Ten covers a release
/// cycle of "before migration" copies without filling the disk with full database copies.
pub const DEFAULT_BACKUPS_RETAIN: usize = 10;

/// `backups.pre-restore-retain` (walstream only): safety backups taken before live restores.
/// Five undo steps; they are full copies, so fewer than the manual ones.
pub const DEFAULT_PRE_RESTORE_RETAIN: usize = 5;

/// `backups.retention.scheduled` when not given (walstream only): keep-last 7 — a week of a
/// daily schedule; the tiers (keep-daily, keep-weekly, …) are opt-in because every backup is a
/// full copy of the database.
pub const DEFAULT_SCHEDULED_KEEP_LAST: usize = 7;

/// `backups.retention.uploaded` when not given (walstream only): keep-last 10, like `retain` of
/// manual backups — an upload is a deliberate copy somebody made, kept as long as a manual one.
pub const DEFAULT_UPLOADED_KEEP_LAST: usize = 10;

/// `backups.max-upload-size` (walstream only): largest `.db` file accepted by
/// `POST …/backups/upload` (and `walstream backup upload`), 1 GiB. An upload is streamed to disk,
/// never held in memory; the limit bounds the disk a single request can fill.
pub const DEFAULT_MAX_UPLOAD_SIZE: u64 = 1 << 30;
