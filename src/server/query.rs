//! Paging and filtering of `GET /api/v1/status` for large fleets (`limit`, `offset`, `q`,
//! `state`; documented in `docs/http-api.md`): parsing and validation of the query, the health
//! class of a database, and the selection of one page.
//!
//! What must stay true:
//! - no parameter at all means "no paging": the caller answers the full document unchanged;
//! - every value is validated and size-limited (an unknown, repeated or bad parameter is an
//!   error naming it, answered 400);
//! - a page observes only the databases it shows, unless `state` is given (classifying needs an
//!   observation of every database that matches `q`); the order is the config order.

use std::time::{Duration, SystemTime};

use super::api::PageDoc;
use crate::state::{AppState, DbObservation};

/// Most databases per page.
pub const MAX_LIMIT: usize = 1000;
/// Page size when a parameter is given without `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// Longest accepted `q` (bytes).
pub const MAX_Q: usize = 256;
/// Largest accepted `offset`.
pub const MAX_OFFSET: usize = 100_000_000;

/// The health class of one database (`state=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not attached yet (the file does not exist or could not be opened).
    Waiting,
    /// Sync ticks fail, or a replica's upload rounds fail.
    Failing,
    /// A replica never completed a round, or lags more than `readiness-max-lag`.
    Lagging,
    Ok,
}

impl Health {
    pub const ALL: [Health; 4] = [
        Health::Waiting,
        Health::Failing,
        Health::Lagging,
        Health::Ok,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Waiting => "waiting",
            Health::Failing => "failing",
            Health::Lagging => "lagging",
            Health::Ok => "ok",
        }
    }

    /// The class of `db` (the first that applies, in the order of [`Health::ALL`]).
    pub fn of(db: &DbObservation, max_lag: Duration) -> Health {
        if !db.attached {
            Health::Waiting
        } else if db.failing_since.is_some()
            || db.replicas.iter().any(|r| r.status.failure_streak > 0)
        {
            Health::Failing
        } else if db
            .replicas
            .iter()
            .any(|r| r.status.last_sync.is_none() || r.lag > max_lag)
        {
            Health::Lagging
        } else {
            Health::Ok
        }
    }
}

/// A validated status query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusQuery {
    pub limit: usize,
    pub offset: usize,
    /// Lower-case substring of the database id or path (`None`: every database).
    pub q: Option<String>,
    pub state: Option<Health>,
}

/// Parses the query pairs; `Ok(None)` when there are none (the unpaged document).
pub fn parse(pairs: &[(String, String)]) -> Result<Option<StatusQuery>, String> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut query = StatusQuery {
        limit: DEFAULT_LIMIT,
        offset: 0,
        q: None,
        state: None,
    };
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in pairs {
        if seen.contains(&key.as_str()) {
            return Err(format!("parameter {key:?} given twice"));
        }
        match key.as_str() {
            "limit" => query.limit = number(key, value, 1, MAX_LIMIT)?,
            "offset" => query.offset = number(key, value, 0, MAX_OFFSET)?,
            "q" => query.q = search(value)?,
            "state" => query.state = Some(state(value)?),
            _ => {
                let shown: String = key.chars().take(32).collect();
                return Err(format!(
                    "unknown parameter {shown:?} (known: limit, offset, q, state)"
                ));
            }
        }
        seen.push(key);
    }
    Ok(Some(query))
}

fn number(key: &str, value: &str, min: usize, max: usize) -> Result<usize, String> {
    let bad = || format!("invalid {key}: want an integer in {min}..={max}");
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

fn search(value: &str) -> Result<Option<String>, String> {
    if value.len() > MAX_Q {
        return Err(format!("invalid q: longer than {MAX_Q} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err("invalid q: control characters".to_string());
    }
    Ok((!value.is_empty()).then(|| value.to_lowercase()))
}

fn state(value: &str) -> Result<Health, String> {
    Health::ALL
        .into_iter()
        .find(|h| h.as_str() == value)
        .ok_or_else(|| "invalid state: want waiting, failing, lagging or ok".to_string())
}

/// The databases of one page, observed at `at`, and the paging fields.
pub fn select(
    state: &AppState,
    query: &StatusQuery,
    at: SystemTime,
) -> (Vec<DbObservation>, PageDoc) {
    let max_lag = state.settings.readiness_max_lag;
    let window = query.offset..query.offset.saturating_add(query.limit);
    let mut total = 0;
    let mut shown = Vec::new();
    for entry in &state.entries() {
        if query
            .q
            .as_ref()
            .is_some_and(|q| !entry.search_key.contains(q.as_str()))
        {
            continue;
        }
        let observed = match query.state {
            Some(wanted) => {
                let obs = entry.observe(at);
                if Health::of(&obs, max_lag) != wanted {
                    continue;
                }
                Some(obs)
            }
            None => None,
        };
        if window.contains(&total) {
            shown.push(observed.unwrap_or_else(|| entry.observe(at)));
        }
        total += 1;
    }
    let next = (window.end < total).then(|| next_link(query, window.end));
    let page = PageDoc {
        total,
        offset: query.offset,
        limit: query.limit,
        next,
    };
    (shown, page)
}

/// The path and query of the page starting at `offset`.
fn next_link(query: &StatusQuery, offset: usize) -> String {
    let mut link = format!("/api/v1/status?limit={}&offset={offset}", query.limit);
    if let Some(q) = &query.q {
        link.push_str("&q=");
        link.push_str(&percent_encode(q));
    }
    if let Some(s) = query.state {
        link.push_str("&state=");
        link.push_str(s.as_str());
    }
    link
}

/// Percent-encodes every byte except RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_parameter_means_no_paging() {
        assert_eq!(parse(&[]), Ok(None));
    }

    #[test]
    fn values_are_parsed_with_defaults() {
        let q = parse(&pairs(&[("q", "App"), ("state", "failing")]))
            .expect("valid")
            .expect("paged");
        assert_eq!(
            q,
            StatusQuery {
                limit: DEFAULT_LIMIT,
                offset: 0,
                q: Some("app".into()),
                state: Some(Health::Failing),
            }
        );
        let q = parse(&pairs(&[("limit", "1000"), ("offset", "0"), ("q", "")]))
            .expect("valid")
            .expect("paged");
        assert_eq!((q.limit, q.offset, q.q), (1000, 0, None));
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        let long = "x".repeat(MAX_Q + 1);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("limit", "0")], "invalid limit"),
            (&[("limit", "1001")], "invalid limit"),
            (&[("limit", "-1")], "invalid limit"),
            (&[("limit", "1e3")], "invalid limit"),
            (&[("limit", "")], "invalid limit"),
            (&[("offset", "99999999999999999999")], "invalid offset"),
            (&[("state", "broken")], "invalid state"),
            (&[("q", &long)], "invalid q"),
            (&[("q", "a\nb")], "invalid q"),
            (&[("limit", "5"), ("limit", "6")], "given twice"),
            (&[("page", "2")], "unknown parameter \"page\""),
        ];
        for (input, want) in cases {
            let err = parse(&pairs(input)).expect_err("refused");
            assert!(err.contains(want), "{input:?}: {err}");
            assert!(!err.contains('\n'));
        }
        assert!(parse(&pairs(&[("q", &"x".repeat(MAX_Q))])).is_ok());
    }

    #[test]
    fn next_link_keeps_the_filters_encoded() {
        let q = StatusQuery {
            limit: 10,
            offset: 0,
            q: Some("a b/&é".into()),
            state: Some(Health::Lagging),
        };
        assert_eq!(
            next_link(&q, 10),
            "/api/v1/status?limit=10&offset=10&q=a%20b%2F%26%C3%A9&state=lagging"
        );
    }
}
