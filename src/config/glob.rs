//! File-name patterns of directory entries (`dbs[].pattern`), with the syntax and meaning of Go's
//! `filepath.Match` on Unix, which Litestream v0.5 applies to the base name of each file:
//! `*` (any run of characters), `?` (one character), `[...]` / `[^...]` classes with `a-z`
//! ranges, and `\` escaping the next character.
//!
//! What must stay true: a pattern is validated completely when it is parsed (Go reports
//! `ErrBadPattern` for an unclosed class, an empty class, a range or class starting with `-` or
//! `]`, a trailing `\`), so an invalid pattern is a config error, never a silent non-match;
//! `/` is never matched by `*`, `?` or a class, as in Go.

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyChar,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    /// Parses `pattern`; the error says what is wrong with it.
    pub fn parse(pattern: &str) -> Result<Glob, String> {
        let mut chars = pattern.chars().peekable();
        let mut tokens = Vec::new();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' => Token::AnyRun,
                '?' => Token::AnyChar,
                '[' => parse_class(&mut chars)?,
                '\\' => Token::Literal(chars.next().ok_or("trailing \"\\\"")?),
                other => Token::Literal(other),
            };
            tokens.push(token);
        }
        Ok(Glob { tokens })
    }

    /// True when the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        match_from(&self.tokens, &name)
    }
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After `[`: an optional `^`, then at least one char or range, then `]`.
fn parse_class(chars: &mut Chars<'_>) -> Result<Token, String> {
    let negated = chars.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    loop {
        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
            return Ok(Token::Class { negated, ranges });
        }
        let lo = class_char(chars)?;
        let hi = if chars.next_if_eq(&'-').is_some() {
            class_char(chars)?
        } else {
            lo
        };
        if hi < lo {
            return Err(format!("character range {lo}-{hi} is out of order"));
        }
        ranges.push((lo, hi));
    }
}

/// One (possibly escaped) character of a class; `-`, `]` and the end are errors here, as in Go.
fn class_char(chars: &mut Chars<'_>) -> Result<char, String> {
    match chars.next() {
        None => Err("unclosed character class \"[\"".to_string()),
        Some('-') | Some(']') => Err(
            "character class needs a character before \"-\" or \"]\" (escape it with \"\\\")"
                .to_string(),
        ),
        Some('\\') => chars
            .next()
            .ok_or_else(|| "unclosed character class \"[\"".to_string()),
        Some(c) => Ok(c),
    }
}

fn match_one(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyChar => c != '/',
        Token::AnyRun => unreachable!("runs are matched by match_from"),
        Token::Class { negated, ranges } => {
            c != '/' && ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
    }
}

/// Iterative glob matching with backtracking to the last `*` (linear in practice).
fn match_from(tokens: &[Token], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::AnyRun) => {
                star = Some((t, n));
                t += 1;
            }
            Some(tok) if match_one(tok, name[n]) => {
                t += 1;
                n += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character (never a `/`).
                Some((st, sn)) if name[sn] != '/' => {
                    star = Some((st, sn + 1));
                    t = st + 1;
                    n = sn + 1;
                }
                _ => return false,
            },
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        Glob::parse(pattern).expect(pattern).matches(name)
    }

    #[test]
    fn matches_like_go_filepath_match() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.db", "app.db", true),
            ("*.db", ".db", true),
            ("*.db", "app.db-wal", false),
            ("*.db", "app.sqlite", false),
            ("*", "anything", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("tenant-?.db", "tenant-7.db", true),
            ("tenant-?.db", "tenant-17.db", false),
            ("[a-c]*.db", "b1.db", true),
            ("[a-c]*.db", "d1.db", false),
            ("[^a-c]*.db", "d1.db", true),
            ("[^a-c]*.db", "a1.db", false),
            ("\\*.db", "*.db", true),
            ("\\*.db", "x.db", false),
            ("[\\]]", "]", true),
            ("]", "]", true),
            ("*", "a/b", false),
            ("*.DB", "app.db", false),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(m(pattern, name), *want, "{pattern:?} vs {name:?}");
        }
    }

    #[test]
    fn invalid_patterns_are_errors() {
        for bad in [
            "[", "[a", "[]", "[^]", "[-a]", "[a-]", "x\\", "[z-a]", "[a\\",
        ] {
            assert!(Glob::parse(bad).is_err(), "{bad:?} should be invalid");
        }
    }
}
