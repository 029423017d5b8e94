//! Backup ids, names and descriptions: generation and validation (admin contract).
//!
//! What must stay true: an id is `[A-Za-z0-9_-]{1,64}` and is the only caller-supplied text
//! that ever becomes part of a path (`<id>.db`, `<id>.json`), so it can hold no separator, no
//! `.` and no `..`; a name is 1..=100 characters without `/`, `\`, NUL or control characters and
//! is never `.` or `..`; a description is at most 1000 characters. Generated ids sort by time.

use chrono::{DateTime, Utc};

use super::AdminError;

/// Longest id.
pub const MAX_ID_LEN: usize = 64;
/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

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
