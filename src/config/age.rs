//! Parsing of a replica's `age.identities[]` / `age.recipients[]` strings (spec §9) into age
//! X25519 keys, with Litestream v0.3.13's rules (Go `age.ParseIdentities` / `ParseRecipients`):
//! each string is a list of lines; blank lines and `#` comments are skipped; every other line is
//! one key; at least one key per string.
//!
//! What must stay true:
//! - Messages never contain the key text (identities are secrets); they name the line number and
//!   the age crate's reason only.
//! - Only X25519 keys (`AGE-SECRET-KEY-1…`, `age1…`) are accepted, like Litestream v0.3.13.

use age::x25519;

/// Parses every identity in `text` (one per non-comment line).
pub fn parse_identities(text: &str) -> Result<Vec<x25519::Identity>, String> {
    parse_lines(text, "age identity", "AGE-SECRET-KEY-1")
}

/// Parses every recipient in `text` (one per non-comment line).
pub fn parse_recipients(text: &str) -> Result<Vec<x25519::Recipient>, String> {
    parse_lines(text, "age recipient", "age1")
}

fn parse_lines<K: std::str::FromStr<Err = &'static str>>(
    text: &str,
    what: &str,
    prefix: &str,
) -> Result<Vec<K>, String> {
    let keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(n, line)| {
            line.parse::<K>().map_err(|reason| {
                format!(
                    "malformed {what} at line {} (expected \"{prefix}…\"): {reason}",
                    n + 1
                )
            })
        })
        .collect::<Result<Vec<K>, String>>()?;
    if keys.is_empty() {
        return Err(format!("no {what} found"));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public X25519 test vector of the age crate's own tests.
    const IDENTITY: &str =
        "AGE-SECRET-KEY-1GQ9778VQXMMJVE8SK7J6VT8UJ4HDQAJUVSFCWCM02D8GEWQ72PVQ2Y5J33";
    const RECIPIENT: &str = "age1t7rxyev2z3rw82stdlrrepyc39nvn86l5078zqkf5uasdy86jp6svpy7pa";

    #[test]
    fn identity_matches_its_recipient() {
        let ids = parse_identities(IDENTITY).expect("identity");
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].to_public().to_string(), RECIPIENT);
        assert_eq!(parse_recipients(RECIPIENT).expect("recipient").len(), 1);
    }

    #[test]
    fn several_lines_with_comments() {
        let text = format!("# created: today\n{IDENTITY}\n\n  {IDENTITY}  \n");
        assert_eq!(parse_identities(&text).expect("two").len(), 2);
    }

    #[test]
    fn bad_key_names_the_line_but_not_the_text() {
        let secret = "AGE-SECRET-KEY-1NOTAREALKEYATALL";
        let Err(err) = parse_identities(&format!("{IDENTITY}\n{secret}")) else {
            panic!("malformed identity accepted");
        };
        assert!(err.starts_with("malformed age identity at line 2"), "{err}");
        assert!(!err.contains("NOTAREALKEY"), "{err}");
        let Err(err) = parse_recipients(IDENTITY) else {
            panic!("an identity is no recipient");
        };
        assert!(
            err.starts_with("malformed age recipient at line 1"),
            "{err}"
        );
        assert!(!err.contains("GQ9778"), "{err}");
        assert_eq!(
            parse_recipients("# nothing\n").err().as_deref(),
            Some("no age recipient found")
        );
    }
}
