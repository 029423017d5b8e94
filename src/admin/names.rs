//! Backup ids, names and descriptions: generation and validation (admin contract).
//!
//! What must stay true: an id is `[A-Za-z0-9_-]{1,64}` and is the only caller-supplied text
//! that ever becomes part of a path (`<id>.db`, `<id>.json`), so it can hold no separator, no
//! `.` and no `..`; a name is 1..=100 characters without `/`, `\`, NUL or control characters and
//! is never `.` or `..`; a description is at most 1000 characters; a label key is
//! `[a-z0-9_.-]{1,63}`, a label value at most 256 bytes without control characters, and a backup
//! has at most 32 labels. Generated ids sort by time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::AdminError;

/// Longest id.
pub const MAX_ID_LEN: usize = 64;
/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// Longest label key, in bytes (ASCII).
pub const MAX_LABEL_KEY: usize = 63;
/// Longest label value, in bytes of UTF-8.
pub const MAX_LABEL_VALUE: usize = 256;
/// Most labels on one backup.
pub const MAX_LABELS: usize = 32;

/// A fresh id: UTC time to the second plus 6 random hex digits, e.g. `20261122T061500Z-3f9a2c`.
pub fn new_id(now: DateTime<Utc>) -> String {
    let suffix = rand::random::<u32>() & 0x00ff_ffff;
    format!("{}-{suffix:06x}", now.format("%Y%m%dT%H%M%SZ"))
}

/// Checks a backup id taken from a URL or the command line.
pub fn check_id(id: &str) -> Result<(), AdminError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.chars().all(ok_char) {
        return Err(AdminError::invalid(
            "backup id",
            format!("{id:?} must be 1 to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, '-' or '_'"),
        ));
    }
    Ok(())
}

/// Checks a user-given backup name.
pub fn check_name(name: &str) -> Result<(), AdminError> {
    let count = name.chars().count();
    let reason = if count == 0 || count > MAX_NAME_CHARS {
        Some(format!("must be 1 to {MAX_NAME_CHARS} characters"))
    } else if name == "." || name == ".." {
        Some("must not be \".\" or \"..\"".to_string())
    } else if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        Some("must not contain '/', '\\', NUL or control characters".to_string())
    } else {
        None
    };
    match reason {
        Some(r) => Err(AdminError::invalid("backup name", format!("{name:?} {r}"))),
        None => Ok(()),
    }
}

/// Checks a user-given description (may be empty).
pub fn check_description(text: &str) -> Result<(), AdminError> {
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AdminError::invalid(
            "backup description",
            format!("longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Checks one label: key `[a-z0-9_.-]{1,63}`, value at most 256 bytes without control
/// characters (may be empty).
pub fn check_label(key: &str, value: &str) -> Result<(), AdminError> {
    let key_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b);
    let shown: String = key.chars().take(MAX_LABEL_KEY + 1).collect();
    let reason = if key.is_empty() || key.len() > MAX_LABEL_KEY || !key.bytes().all(key_char) {
        format!(
            "key {shown:?} must be 1 to {MAX_LABEL_KEY} characters of a-z, 0-9, '_', '.' or '-'"
        )
    } else if value.len() > MAX_LABEL_VALUE {
        format!("value of {key:?} is longer than {MAX_LABEL_VALUE} bytes")
    } else if value.chars().any(char::is_control) {
        format!("value of {key:?} must not contain control characters")
    } else {
        return Ok(());
    };
    Err(AdminError::invalid("label", reason))
}

/// Checks every label of a backup and their number.
pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), AdminError> {
    if labels.len() > MAX_LABELS {
        return Err(AdminError::invalid(
            "labels",
            format!("{} given, at most {MAX_LABELS} allowed", labels.len()),
        ));
    }
    labels.iter().try_for_each(|(k, v)| check_label(k, v))
}

/// Parses and checks a `key=value` label (the value may contain `=`).
pub fn parse_label(text: &str) -> Result<(String, String), AdminError> {
    let Some((key, value)) = text.split_once('=') else {
        let shown: String = text.chars().take(MAX_LABEL_KEY + 1).collect();
        return Err(AdminError::invalid(
            "label",
            format!("{shown:?} must be key=value"),
        ));
    };
    check_label(key, value)?;
    Ok((key.to_string(), value.to_string()))
}

/// Parses repeated `key=value` labels into a map (a repeated key keeps the last value).
pub fn parse_labels<S: AsRef<str>>(texts: &[S]) -> Result<BTreeMap<String, String>, AdminError> {
    let labels = texts
        .iter()
        .map(|t| parse_label(t.as_ref()))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    check_labels(&labels)?;
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_sort_by_time() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T06:15:00.5Z")
            .expect("time")
            .with_timezone(&Utc);
        let id = new_id(t);
        check_id(&id).expect("generated id is valid");
        assert!(id.starts_with("20261122T061500Z-"), "{id}");
        assert_eq!(id.len(), "20261122T061500Z-".len() + 6);
        let later = new_id(t + chrono::Duration::seconds(1));
        assert!(later > id);
    }

    /// Every `bad` value is refused and every `good` one accepted by `check`.
    fn sorts(check: fn(&str) -> Result<(), AdminError>, bad: &[&str], good: &[&str]) {
        for v in bad {
            assert!(check(v).is_err(), "accepted {v:?}");
        }
        for v in good {
            check(v).unwrap_or_else(|e| panic!("refused {v:?}: {e}"));
        }
    }

    #[test]
    fn ids_refuse_separators_dots_and_length() {
        let long = "x".repeat(65);
        let longest = "x".repeat(64);
        let bad = ["", ".", "..", "a/b", "a\\b", "a.db", "%2F", "a b", &long];
        sorts(check_id, &bad, &["a", "A-b_9", &longest]);
    }

    #[test]
    fn names_refuse_paths_and_control_characters() {
        let long = "n".repeat(101);
        let longest = "n".repeat(100);
        let bad = ["", ".", "..", "a/b", "a\\b", "a\0b", "tab\there", &long];
        let good = ["before-migration", "v1.2 ..", "ünïcode ok", &longest];
        sorts(check_name, &bad, &good);
        check_description("").expect("empty");
        assert!(check_description(&"d".repeat(1001)).is_err());
    }
}
