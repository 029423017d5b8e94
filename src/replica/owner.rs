//! One writer per replica path across processes: the owner record `walstream-owner.json` at the
//! replica root (beside `generations/` or `ltx/`) names the database identity (`db::identity`)
//! that writes the path. Before a replica's first write in this process, and again at each new
//! generation, [`Replica::ensure_owner`] reads it: absent → claimed (create-only PUT), same
//! identity → ours, another identity → the replica is refused.
//!
//! What must stay true:
//! - a refused replica writes and deletes nothing (every storage-writing entry point of the
//!   replica calls [`Replica::ensure_owner`] first); its other loops skip their rounds without a
//!   storage request; only the upload loop reads the record again, on its failure backoff, so
//!   deleting the record lets the replica resume without a restart;
//! - the check costs nothing while confirmed: no request until the generation or the database
//!   identity changes, so an idle database makes no storage request for it;
//! - a refusal is logged once (ERROR, naming the replica's credential-free URL and the other
//!   database's path, host and since), shown in the status (`owner_conflict`), `/readyz` and
//!   `walstream_replica_owner_conflict`;
//! - a record of another identity is taken over only when the database at this path was
//!   replaced: the record names the same database path on the same host, or this process
//!   confirmed the path for that identity before (the file was replaced while attached); the
//!   take-over is logged (WARN);
//! - the record is never encrypted and holds no database content; restores never read it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use super::{Replica, ReplicaError};
use crate::db::format_id;
use crate::storage::RootPut;

/// Name of the owner record at the replica root.
pub const OWNER_OBJECT: &str = "walstream-owner.json";
/// Longest text accepted in one field of a record read from storage.
const MAX_FIELD: usize = 4096;

/// The owner record as stored (JSON). Unknown fields are ignored; only `identity` is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    /// The owning database's identity, 16 lower-case hex digits.
    pub identity: String,
    /// The owning database's path on its host.
    #[serde(default)]
    pub database: String,
    #[serde(default)]
    pub host: String,
    /// When this identity claimed the path (RFC 3339).
    #[serde(default)]
    pub since: String,
    /// `walstream <version>`.
    #[serde(default)]
    pub tool: String,
}

impl OwnerRecord {
    /// The record this process would write for `identity` at `database`.
    pub fn ours(identity: u64, database: &str) -> OwnerRecord {
        OwnerRecord {
            identity: format_id(identity),
            database: database.to_string(),
            host: host_name(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            tool: format!("walstream {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Parses and validates a stored record (`key` names it in errors).
    pub fn parse(body: &[u8], key: &str) -> Result<OwnerRecord, String> {
        let r: OwnerRecord = serde_json::from_slice(body)
            .map_err(|e| format!("owner record {key} is not valid JSON: {e}"))?;
        let hex = r.identity.len() == 16
            && r.identity
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex {
            return Err(format!(
                "owner record {key}: identity {:?} is not 16 lower-case hex digits",
                r.identity.chars().take(40).collect::<String>()
            ));
        }
        let fields = [&r.database, &r.host, &r.since, &r.tool];
        if fields.iter().any(|f| f.len() > MAX_FIELD) {
            return Err(format!(
                "owner record {key}: a field is longer than {MAX_FIELD} bytes"
            ));
        }
        Ok(r)
    }

    pub fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec_pretty(self).unwrap_or_default())
    }
}

/// What the check does with the stored record (pure; see [`decide`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No record: claim the path (create-only).
    Claim,
    /// Ours and up to date: nothing to write.
    Owned,
    /// Ours, but the database path or host changed: rewrite it, keeping `since`.
    Refresh(OwnerRecord),
    /// Another identity, but the database at this path was replaced: the record names this
    /// very database path on this host, or this process wrote the path for that identity.
    /// Overwrite it with ours.
    TakeOver,
    /// Another database writes this path: refuse.
    Conflict(OwnerRecord),
}

/// The verdict for `stored` when this database is `ours`; `owned_before` is the identity this
/// process last confirmed for the path (if any).
pub fn decide(
    stored: Option<&OwnerRecord>,
    ours: &OwnerRecord,
    owned_before: Option<&str>,
) -> Verdict {
    let Some(stored) = stored else {
        return Verdict::Claim;
    };
    if stored.identity == ours.identity {
        if stored.database == ours.database && stored.host == ours.host {
            return Verdict::Owned;
        }
        return Verdict::Refresh(OwnerRecord {
            since: stored.since.clone(),
            ..ours.clone()
        });
    }
    // The same database path on the same host holds a new file (replaced while `replicate` ran
    // or was stopped): that is this writer's slot, as Litestream starts a new generation there.
    let same_slot = stored.database == ours.database && stored.host == ours.host;
    if same_slot || owned_before == Some(stored.identity.as_str()) {
        return Verdict::TakeOver;
    }
    Verdict::Conflict(stored.clone())
}

/// The one-line refusal: where, who writes it, and what to do.
pub fn conflict_message(url: &str, other: &OwnerRecord, ours: &OwnerRecord) -> String {
    let show = |s: &str| {
        if s.is_empty() {
            "?".to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "replica {url} belongs to another database: {} on host {} (identity {}, since {}); this database {} (identity {}) writes nothing there. If that database is gone for good, delete {}",
        show(&other.database),
        show(&other.host),
        other.identity,
        show(&other.since),
        ours.database,
        ours.identity,
        record_location(url),
    )
}

/// Where the record of the replica described by `url` lives: `<url>/walstream-owner.json`,
/// before any `?query` of the description.
pub fn record_location(url: &str) -> String {
    match url.split_once('?') {
        Some((base, query)) => format!("{}/{OWNER_OBJECT}?{query}", base.trim_end_matches('/')),
        None => format!("{}/{OWNER_OBJECT}", url.trim_end_matches('/')),
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`), `unknown` when unreadable.
fn host_name() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().chars().take(255).collect::<String>())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    })
    .clone()
}

/// What this process knows about the ownership of one replica path.
#[derive(Debug, Default)]
pub(super) struct OwnerGate {
    /// (generation, identity) confirmed as the path's owner; checks for them cost nothing.
    confirmed: Option<(String, u64)>,
    /// The identity this process last confirmed (kept across generations).
    owned: Option<String>,
    /// Set while refused: the message of [`conflict_message`].
    refused: Option<String>,
}

impl Replica {
    /// Refuses (`ReplicaError::OwnerConflict`) when another database owns this replica path,
    /// claiming the path first when nobody does. Free while confirmed for the current
    /// generation and identity; a refused replica reads the record again only with `recheck`.
    pub(super) async fn ensure_owner(&self, recheck: bool) -> Result<(), ReplicaError> {
        let generation = self.db_state.borrow().generation.clone();
        let Some(generation) = generation else {
            return Ok(()); // nothing to write yet
        };
        let identity = match self.db.database_id() {
            Some(id) => id,
            None => match self.db.ensure_database_id().await {
                Ok(Some(id)) => id,
                Ok(None) => return Ok(()), // not attached: nothing to write yet
                Err(e) => return Err(ReplicaError::from(e)),
            },
        };
        let mut gate = self.owner.lock().await;
        if gate.confirmed.as_ref() == Some(&(generation.clone(), identity)) {
            return Ok(());
        }
        if let Some(msg) = gate.refused.as_ref().filter(|_| !recheck) {
            return Err(ReplicaError::OwnerConflict(msg.clone()));
        }
        let ours = OwnerRecord::ours(identity, &self.db_label);
        match self.settle_owner(&ours, gate.owned.as_deref()).await? {
            None => {
                if gate.refused.take().is_some() {
                    info!(db = %self.db_label, replica = %self.name(), url = %self.client.describe(), "replica owner conflict resolved");
                    self.update_status(|s| s.owner_conflict = None);
                }
                gate.confirmed = Some((generation, identity));
                gate.owned = Some(ours.identity);
                Ok(())
            }
            Some(msg) => {
                gate.confirmed = None;
                if gate.refused.as_ref() != Some(&msg) {
                    error!(db = %self.db_label, replica = %self.name(), error = %msg, "replica refused");
                    let shown = msg.clone();
                    self.update_status(|s| s.owner_conflict = Some(shown));
                }
                gate.refused = Some(msg.clone());
                Err(ReplicaError::OwnerConflict(msg))
            }
        }
    }

    /// Reads the record and acts on the verdict; `Some(message)` when refused.
    async fn settle_owner(
        &self,
        ours: &OwnerRecord,
        owned_before: Option<&str>,
    ) -> Result<Option<String>, ReplicaError> {
        // Twice at most: a lost race for the claim reads the winner's record once more.
        for _ in 0..2 {
            let stored = match self.read_owner().await? {
                Ok(stored) => stored,
                Err(unreadable) => return Ok(Some(unreadable)),
            };
            let (body, create_only) = match decide(stored.as_ref(), ours, owned_before) {
                Verdict::Owned => return Ok(None),
                Verdict::Conflict(other) => {
                    return Ok(Some(conflict_message(
                        &self.client.describe(),
                        &other,
                        ours,
                    )));
                }
                Verdict::Claim => (ours.to_json(), true),
                Verdict::Refresh(record) => (record.to_json(), false),
                Verdict::TakeOver => {
                    let replaced = stored.as_ref().map_or("", |r| r.identity.as_str());
                    warn!(db = %self.db_label, replica = %self.name(), url = %self.client.describe(), previous = %replaced, identity = %ours.identity, "database at this path was replaced; taking the replica's owner record over");
                    (ours.to_json(), false)
                }
            };
            match self
                .client
                .put_root_object(OWNER_OBJECT, body, create_only)
                .await?
            {
                RootPut::Stored => {
                    info!(db = %self.db_label, replica = %self.name(), url = %self.client.describe(), identity = %ours.identity, "replica owner record written");
                    return Ok(None);
                }
                RootPut::Exists => continue,
            }
        }
        Ok(Some(format!(
            "replica {}: owner record {OWNER_OBJECT} keeps changing under this process; nothing is written there",
            self.client.describe()
        )))
    }

    /// The stored record; the inner `Err` (a refusal message) when it cannot be read as one.
    async fn read_owner(&self) -> Result<Result<Option<OwnerRecord>, String>, ReplicaError> {
        let Some(body) = self.client.get_root_object(OWNER_OBJECT).await? else {
            return Ok(Ok(None));
        };
        let url = self.client.describe();
        Ok(OwnerRecord::parse(&body, &record_location(&url))
            .map(Some)
            .map_err(|e| {
                format!("{e}; nothing is written to replica {url} until it is fixed or deleted")
            }))
    }

    /// True while another database owns this replica path (no storage request).
    pub fn owner_refused(&self) -> bool {
        self.status.borrow().owner_conflict.is_some()
    }
}

#[cfg(test)]
#[path = "owner_tests.rs"]
mod tests;
