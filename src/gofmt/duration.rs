//! Go `time.Duration` compatibility: parsing (`time.ParseDuration`), formatting
//! (`Duration.String()`) and the lag truncation used by `litestream generations`.
//!
//! Invariants: accepts exactly the grammar Go accepts (sign, decimal numbers with optional
//! fraction, units `ns us µs μs ms s m h`, bare `0`), so `1d` and `1` are rejected; formatting is
//! byte-identical to Go's output; all arithmetic is on signed nanoseconds with Go's int64 range.

use std::time::Duration;

const NANOSECOND: i64 = 1;
const MICROSECOND: i64 = 1_000 * NANOSECOND;
const MILLISECOND: i64 = 1_000 * MICROSECOND;
const SECOND: i64 = 1_000 * MILLISECOND;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// Parses a Go duration string into a non-negative [`Duration`].
///
/// Negative values (valid in Go) are rejected here because [`Duration`] cannot hold them; use
/// [`parse_go_duration_nanos`] where negatives carry meaning.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let nanos = parse_go_duration_nanos(s)?;
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| format!("negative duration {s:?}"))
}

/// Parses a Go duration string into signed nanoseconds (Go's `time.ParseDuration`).
pub fn parse_go_duration_nanos(s: &str) -> Result<i64, String> {
    let invalid = || format!("invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    // Accumulate the magnitude as u64 like Go, allowing exactly |i64::MIN| for negatives.
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (term, tail) = parse_term(rest).ok_or_else(invalid)?;
        total = total.checked_add(term).ok_or_else(invalid)?;
        rest = tail;
    }
    let limit = if neg { 1u64 << 63 } else { (1u64 << 63) - 1 };
    if total > limit {
        return Err(invalid());
    }
    let value = total as i128;
    Ok((if neg { -value } else { value }) as i64)
}

/// Parses one `<number>[.<fraction>]<unit>` term; returns its nanoseconds and the remaining text.
fn parse_term(s: &str) -> Option<(u64, &str)> {
    let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
    let (int_digits, after_int) = s.split_at(int_len);
    let (frac_digits, after_num) = match after_int.strip_prefix('.') {
        Some(t) => {
            let n = t.bytes().take_while(u8::is_ascii_digit).count();
            t.split_at(n)
        }
        None => ("", after_int),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None; // no digits at all (".s" or "s")
    }
    let unit_len = after_num
        .char_indices()
        .find(|(_, c)| *c == '.' || c.is_ascii_digit())
        .map_or(after_num.len(), |(i, _)| i);
    let (unit_text, tail) = after_num.split_at(unit_len);
    let unit = unit_nanos(unit_text)? as u64;
    let whole = parse_whole(int_digits)?;
    let mut v = whole.checked_mul(unit)?;
    if !frac_digits.is_empty() {
        let (frac, scale) = leading_fraction(frac_digits);
        // Go computes the fractional part in floating point and truncates.
        v = v.checked_add((frac as f64 * (unit as f64 / scale)) as u64)?;
    }
    Some((v, tail))
}

fn parse_whole(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Go's `leadingFraction`: digits beyond what fits are dropped (they cannot matter).
fn leading_fraction(digits: &str) -> (u64, f64) {
    let mut value: u64 = 0;
    let mut scale = 1.0f64;
    let mut overflow = false;
    for d in digits.bytes() {
        if overflow {
            continue;
        }
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
        {
            Some(v) if v <= 1 << 63 => {
                value = v;
                scale *= 10.0;
            }
            _ => overflow = true,
        }
    }
    (value, scale)
}

fn unit_nanos(unit: &str) -> Option<i64> {
    Some(match unit {
        "ns" => NANOSECOND,
        "us" | "µs" | "μs" => MICROSECOND,
        "ms" => MILLISECOND,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        _ => return None,
    })
}

/// A signed Go duration as a [`Duration`], negative values becoming 0: Litestream treats a
/// negative interval like 0 (disabled) for every setting where 0 is allowed.
pub fn non_negative(nanos: i64) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

/// Formats signed nanoseconds exactly like Go's `time.Duration.String()`.
pub fn format_go_duration(nanos: i128) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    // Built back to front like Go's implementation, then reversed.
    let mut rev = String::new();
    if u < SECOND as u128 {
        if u == 0 {
            return "0s".to_string();
        }
        let prec = if u < MICROSECOND as u128 {
            rev.push_str("sn");
            0
        } else if u < MILLISECOND as u128 {
            rev.push_str("sµ");
            3
        } else {
            rev.push_str("sm");
            6
        };
        u = push_fraction(&mut rev, u, prec);
        push_int(&mut rev, u);
    } else {
        rev.push('s');
        u = push_fraction(&mut rev, u, 9);
        push_int(&mut rev, u % 60);
        u /= 60;
        if u > 0 {
            rev.push('m');
            push_int(&mut rev, u % 60);
            u /= 60;
            if u > 0 {
                rev.push('h');
                push_int(&mut rev, u);
            }
        }
    }
    if neg {
        rev.push('-');
    }
    rev.chars().rev().collect()
}

/// Go's `fmtFrac`: appends (reversed) the fraction of `v / 10^prec` without trailing zeros,
/// and the decimal point only if the fraction is non-zero; returns the integer part.
fn push_fraction(rev: &mut String, mut v: u128, prec: u32) -> u128 {
    let mut printed = false;
    for _ in 0..prec {
        let digit = (v % 10) as u8;
        printed = printed || digit != 0;
        if printed {
            rev.push(char::from(b'0' + digit));
        }
        v /= 10;
    }
    if printed {
        rev.push('.');
    }
    v
}

/// Appends (reversed) the decimal digits of `v`.
fn push_int(rev: &mut String, mut v: u128) {
    if v == 0 {
        rev.push('0');
        return;
    }
    while v > 0 {
        rev.push(char::from(b'0' + (v % 10) as u8));
        v /= 10;
    }
}

/// Lag precision used by `generations` (spec §6.1): more than 10 s → whole seconds, more than
/// 1 s → tenths, more than 1 ms → milliseconds, more than 1 µs → microseconds; same thresholds
/// for negatives.
///
/// Litestream v0.3.13 (`truncateDuration` in cmd/litestream/generations.go) uses Go's
/// `Duration.Truncate`, i.e. it drops the remainder toward zero; this matches that source, not a
/// rounding to nearest.
pub fn round_lag(nanos: i128) -> i128 {
    let magnitude = nanos.unsigned_abs();
    let step = if magnitude > 10 * SECOND as u128 {
        SECOND
    } else if magnitude > SECOND as u128 {
        SECOND / 10
    } else if magnitude > MILLISECOND as u128 {
        MILLISECOND
    } else if magnitude > MICROSECOND as u128 {
        MICROSECOND
    } else {
        return nanos;
    };
    // `%` on i128 truncates toward zero, like Go's `d - d%m`.
    nanos - nanos % i128::from(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("0s", 0),
            ("1ns", 1),
            ("1us", 1_000),
            ("1µs", 1_000),
            ("1μs", 1_000),
            ("500ms", 500_000_000),
            ("10s", 10 * SECOND),
            ("1.5s", 1_500_000_000),
            (".5s", 500_000_000),
            ("1.s", SECOND),
            ("1h2m3.5s", HOUR + 2 * MINUTE + 3_500_000_000),
            ("24h", 24 * HOUR),
            ("-1.5h", -(HOUR + 30 * MINUTE)),
            ("1m1m", 2 * MINUTE),
            ("0.3333333333333s", 333_333_333),
            ("2562047h47m16.854775807s", i64::MAX),
            ("-2562047h47m16.854775808s", i64::MIN),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go_duration_nanos(input), Ok(*want), "input {input:?}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for input in [
            "",
            "1d",
            "1",
            "s",
            ".s",
            "-",
            "1.5",
            "1 s",
            "1sm",
            "1S",
            "2562047h47m16.854775808s",
            "9223372036854775808ns",
            "1e3s",
        ] {
            let err = parse_go_duration_nanos(input).expect_err(input);
            assert_eq!(err, format!("invalid duration {input:?}"));
        }
    }

    #[test]
    fn std_duration_rejects_negative() {
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Ok(Duration::new(3723, 500_000_000))
        );
        assert_eq!(
            parse_go_duration("-1s"),
            Err("negative duration \"-1s\"".to_string())
        );
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(i128, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_000, "1µs"),
            (1_500, "1.5µs"),
            (1_000_000, "1ms"),
            (168_000_000, "168ms"),
            (-168_000_000, "-168ms"),
            (1_500_000_000, "1.5s"),
            (SECOND as i128, "1s"),
            ((9 * MINUTE + 13 * SECOND) as i128, "9m13s"),
            (HOUR as i128, "1h0m0s"),
            ((HOUR + 2 * MINUTE + 3_500_000_000) as i128, "1h2m3.5s"),
            (i64::MAX as i128, "2562047h47m16.854775807s"),
            (i64::MIN as i128, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(format_go_duration(*nanos), *want, "nanos {nanos}");
        }
    }

    #[test]
    fn lag_truncation_matches_litestream() {
        let cases: &[(i128, i128)] = &[
            (553_987_654_321, 553_000_000_000), // > 10 s: whole seconds
            (10_000_000_000, 10_000_000_000),   // exactly 10 s: tenths
            (10_050_000_000, 10_000_000_000),   // > 10 s
            (5_678_900_000, 5_600_000_000),     // > 1 s: tenths, truncated
            (168_912_345, 168_000_000),         // > 1 ms: ms
            (-168_912_345, -168_000_000),       // negatives truncate toward zero
            (-12_900_000_000, -12_000_000_000), // < -10 s
            (1_999, 1_000),                     // > 1 µs: µs
            (999, 999),                         // ≤ 1 µs untouched
            (-999, -999),
        ];
        for (input, want) in cases {
            assert_eq!(round_lag(*input), *want, "input {input}");
        }
        assert_eq!(format_go_duration(round_lag(553_987_654_321)), "9m13s");
        assert_eq!(format_go_duration(round_lag(-168_912_345)), "-168ms");
    }
}
