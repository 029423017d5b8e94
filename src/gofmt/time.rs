//! Go's time layouts as Litestream prints and parses them: `time.RFC3339` of a UTC time (whole
//! seconds), `time.Parse(time.RFC3339, …)`, and the slog handlers' timestamps.
//!
//! What must stay true: printing truncates sub-seconds like Go's `Format` (never rounds);
//! parsing accepts only Go's RFC 3339 shape (`T` and `Z` upper-case, optional fraction, numeric
//! offsets with a colon).

use chrono::{DateTime, Local, Utc};

/// Go's `Format(time.RFC3339)` of a UTC time: `2026-11-22T02:48:45Z` (sub-seconds truncated).
pub fn rfc3339_seconds(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Go's `time.Parse(time.RFC3339, s)`: `T` and `Z` upper-case, optional fractional seconds,
/// numeric offsets with a colon.
pub fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    if !has_rfc3339_shape(s) {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `dddd-dd-ddTdd:dd:dd[.d+](Z|±dd:dd)`.
fn has_rfc3339_shape(s: &str) -> bool {
    const DATE_TIME: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    let b = s.as_bytes();
    let Some((head, mut rest)) = (b.len() >= DATE_TIME.len()).then(|| b.split_at(DATE_TIME.len()))
    else {
        return false;
    };
    if !matches_template(head, DATE_TIME) {
        return false;
    }
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &frac[digits..];
    }
    match rest {
        b"Z" => true,
        [b'+' | b'-', zone @ ..] => matches_template(zone, b"dd:dd"),
        _ => false,
    }
}

/// `s` has the template's length, a digit wherever the template has `d`, and its other bytes.
fn matches_template(s: &[u8], template: &[u8]) -> bool {
    s.len() == template.len()
        && s.iter().zip(template).all(|(c, t)| match t {
            b'd' => c.is_ascii_digit(),
            t => c == t,
        })
}

/// Go's time layouts: text handler `2006-01-02T15:04:05.000Z07:00` (millis), JSON handler
/// RFC 3339 with nanoseconds and trailing zeros trimmed.
pub fn log_time(t: DateTime<Local>, millis: bool) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = if millis {
        format!(".{:03}", t.timestamp_subsec_millis())
    } else {
        let nanos = format!("{:09}", t.timestamp_subsec_nanos());
        let trimmed = nanos.trim_end_matches('0');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!(".{trimmed}")
        }
    };
    let offset = t.offset().to_string(); // "+00:00"
    let zone = if offset == "+00:00" {
        "Z".to_string()
    } else {
        offset
    };
    format!("{base}{frac}{zone}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn log_time_layouts() {
        let utc = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 2, 49, 52)
            .unwrap()
            + chrono::Duration::nanoseconds(170_500_000);
        let t = utc.with_timezone(&Local);
        let text = log_time(t, true);
        let json = log_time(t, false);
        if t.offset().to_string() == "+00:00" {
            assert_eq!(text, "2026-11-22T02:49:52.170Z");
            assert_eq!(json, "2026-11-22T02:49:52.1705Z");
        } else {
            assert!(text.contains(".170"), "{text}");
            assert!(json.contains(".1705"), "{json}");
        }
    }

    #[test]
    fn rfc3339_truncates_subseconds() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 2, 48, 45).unwrap()
            + chrono::TimeDelta::milliseconds(999);
        assert_eq!(rfc3339_seconds(t), "2026-11-22T02:48:45Z");
    }

    #[test]
    fn parses_only_go_rfc3339() {
        let t = parse_rfc3339("2000-01-01T00:00:00Z").expect("utc");
        assert_eq!(t.timestamp(), 946_684_800);
        let t = parse_rfc3339("2000-01-01T01:00:00.5+01:00").expect("offset");
        assert_eq!(t.timestamp_millis(), 946_684_800_500);
        for bad in [
            "",
            "2000-01-01",
            "2000-01-01t00:00:00z",
            "2000-01-01 00:00:00Z",
            "2000-01-01T00:00:00.Z",
            "2000-01-01T00:00:00+0100",
            "2000-13-01T00:00:00Z",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }
}
