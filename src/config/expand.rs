//! Environment expansion with Go `os.ExpandEnv` semantics, applied to the whole config text
//! (comments included) before YAML parsing (spec §7.5).
//!
//! Invariants (Go's `os.Expand`): `$NAME` takes the longest run of `[A-Za-z0-9_]`; `${NAME}` takes
//! everything up to the first `}`; a single special character (`* # $ @ ! ? -` or a digit) after
//! `$` or inside `${x}` is a one-character name; unset names become empty; `${}` and an unclosed
//! `${` are removed; a `$` followed by anything else (or at the end) stays literally. There is no
//! escape: `$$x` expands the variable `$` (normally unset) and yields `x`.

/// Expands `$VAR` / `${VAR}` in `text`, looking names up with `lookup` (unset → empty).
pub fn expand_env(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied_to = 0; // start of the not-yet-copied literal run
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&text[copied_to..j]);
            let (name, width) = shell_name(&text[j + 1..]);
            match name {
                Some(name) => out.push_str(&lookup(name).unwrap_or_default()),
                // Valid syntax but no name: keep the dollar.
                None if width == 0 => out.push('$'),
                // Bad syntax (`${}` or unclosed `${`): the consumed characters vanish.
                None => {}
            }
            j += width;
            copied_to = j + 1;
        }
        j += 1;
    }
    out.push_str(&text[copied_to.min(text.len())..]);
    out
}

fn is_special(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

fn is_name_char(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Go's `getShellName`: the name after a `$` (if any) and how many bytes it consumed.
/// `s` is never empty.
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
            return (Some(&s[1..2]), 3);
        }
        return match b.iter().skip(1).position(|&c| c == b'}') {
            Some(0) => (None, 2), // "${}"
            Some(k) => (Some(&s[1..k + 1]), k + 2),
            None => (None, 1), // unclosed "${": eat "${"
        };
    }
    if is_special(b[0]) {
        return (Some(&s[0..1]), 1);
    }
    let n = b.iter().take_while(|&&c| is_name_char(c)).count();
    if n == 0 {
        (None, 0)
    } else {
        (Some(&s[..n]), n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".into()),
            "MYDIR" => Some("/data".into()),
            "A_1" => Some("one".into()),
            "1" => Some("first-arg".into()),
            "a b" => Some("spaced".into()),
            _ => None,
        }
    }

    fn x(s: &str) -> String {
        expand_env(s, &env)
    }

    #[test]
    fn expands_like_go_os_expand_env() {
        let cases: &[(&str, &str)] = &[
            ("no dollars", "no dollars"),
            ("$MYDIR/a.db", "/data/a.db"),
            ("${MYDIR}/a.db", "/data/a.db"),
            ("${MYDIR}x", "/datax"),
            ("$MYDIRx", ""),
            ("$A_1-$A_1", "one-one"),
            ("pre $UNSET post", "pre  post"),
            ("${UNSET}", ""),
            ("/data/$$x", "/data/x"),
            ("$$", ""),
            ("cost: 5$", "cost: 5$"),
            ("a $ b", "a $ b"),
            ("$/", "$/"),
            ("$1abc", "first-argabc"),
            ("${1}", "first-arg"),
            ("$*", ""),
            ("${a b}", "spaced"),
            ("x${}y", "xy"),
            ("x${y", "xy"),
            ("x${", "x"),
            ("${MYDIR", "MYDIR"),
            (
                "# comment $MYDIR\npath: ${MYDIR}",
                "# comment /data\npath: /data",
            ),
            ("µ$MYDIR µ", "µ/data µ"),
        ];
        for (input, want) in cases {
            assert_eq!(x(input), *want, "input {input:?}");
        }
    }
}
