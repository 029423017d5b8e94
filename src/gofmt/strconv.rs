//! Go's `strconv` and `%q` as Litestream's command line uses them: `ParseBool`, `ParseInt`
//! with base 0 (flags) and base 16 (`-index`), and quoting of user-typed strings.
//!
//! What must stay true: each function accepts exactly what Go accepts and nothing more
//! (signs, base prefixes, `_` separators only where Go's `underscoreOK` allows them), with Go's
//! range limits; [`go_quote`] escapes like Go's `%q` for the strings users type.

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Why [`parse_go_int`] failed; the `Display` text is what Go's `flag` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IntError {
    #[error("parse error")]
    Syntax,
    #[error("value out of range")]
    Range,
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, `0x`/`0o`/`0b`/leading-`0` octal prefixes,
/// `_` digit separators (only with a prefix-style literal, as Go's `underscoreOK` allows).
pub fn parse_go_int(s: &str) -> Result<i64, IntError> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_go_uint(body)?;
    if !underscores_ok(s) {
        return Err(IntError::Syntax);
    }
    let limit = 1u64 << 63;
    match (negative, magnitude) {
        (false, m) if m < limit => Ok(m as i64),
        (true, m) if m <= limit => Ok((m as i64).wrapping_neg()),
        _ => Err(IntError::Range),
    }
}

/// Unsigned part of Go's base-0 integer parsing (no sign).
fn parse_go_uint(s: &str) -> Result<u64, IntError> {
    if s.is_empty() {
        return Err(IntError::Syntax);
    }
    let b = s.as_bytes();
    let (base, digits) = if b[0] == b'0' && b.len() >= 3 {
        match b[1].to_ascii_lowercase() {
            b'b' => (2, &s[2..]),
            b'o' => (8, &s[2..]),
            b'x' => (16, &s[2..]),
            _ => (8, &s[1..]),
        }
    } else if b[0] == b'0' {
        (8, &s[1..])
    } else {
        (10, s)
    };
    let mut n: u64 = 0;
    for c in digits.chars() {
        if c == '_' {
            continue; // validity of separators is checked separately, as Go does
        }
        let d = c.to_digit(base).ok_or(IntError::Syntax)?;
        n = n
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(IntError::Range)?;
    }
    Ok(n)
}

/// Go's `underscoreOK`: `_` only between digits (a base prefix counts as a digit).
fn underscores_ok(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    if !b.contains(&b'_') {
        return true;
    }
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    for &c in &b[i..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// Go's `%q` for the strings users type: double quotes with `\"`, `\\` and control characters
/// escaped (non-ASCII printable characters are kept as is, like Go).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.ParseInt(s, 16, 32)`: optional sign, hex digits, no prefix, 32-bit range.
pub fn parse_go_hex_i32(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, 16).ok()?;
    let value = if neg { -magnitude } else { magnitude };
    (i64::from(i32::MIN)..=i64::from(i32::MAX))
        .contains(&value)
        .then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_int_syntax() {
        assert_eq!(parse_go_int("10"), Ok(10));
        assert_eq!(parse_go_int("-10"), Ok(-10));
        assert_eq!(parse_go_int("+7"), Ok(7));
        assert_eq!(parse_go_int("010"), Ok(8));
        assert_eq!(parse_go_int("0"), Ok(0));
        assert_eq!(parse_go_int("0x1F"), Ok(31));
        assert_eq!(parse_go_int("0b101"), Ok(5));
        assert_eq!(parse_go_int("0o17"), Ok(15));
        assert_eq!(parse_go_int("0x_1f"), Ok(31));
        assert_eq!(parse_go_int("1_000"), Ok(1000));
        assert_eq!(parse_go_int("_1"), Err(IntError::Syntax));
        assert_eq!(parse_go_int("1_"), Err(IntError::Syntax));
        assert_eq!(parse_go_int("0x1__f"), Err(IntError::Syntax));
        assert_eq!(parse_go_int("0x"), Err(IntError::Syntax));
        assert_eq!(parse_go_int("08"), Err(IntError::Syntax));
        assert_eq!(parse_go_int(""), Err(IntError::Syntax));
        assert_eq!(parse_go_int("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_go_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_go_int("9223372036854775808"), Err(IntError::Range));
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(go_quote("é"), "\"é\"");
    }

    #[test]
    fn hex_index_like_go_parse_int() {
        assert_eq!(parse_go_hex_i32("0"), Some(0));
        assert_eq!(parse_go_hex_i32("1f"), Some(31));
        assert_eq!(parse_go_hex_i32("1F"), Some(31));
        assert_eq!(parse_go_hex_i32("7fffffff"), Some(i64::from(i32::MAX)));
        assert_eq!(parse_go_hex_i32("-1"), Some(-1));
        assert_eq!(parse_go_hex_i32("+a"), Some(10));
        for bad in ["", "zz", "0x1", "80000000", "1_0", "-", " 1"] {
            assert_eq!(parse_go_hex_i32(bad), None, "{bad:?}");
        }
    }
}
