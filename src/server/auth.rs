//! Bearer-token checks of the HTTP API.
//!
//! What must stay true:
//! - mutating endpoints ([`Access::Mutate`]) and endpoints that return database content
//!   ([`Access::Data`]: backup and replica downloads) are refused (403) unless a token is
//!   configured (`http-token` / `WALSTREAM_HTTP_TOKEN`), and need it whatever
//!   `http-protect-reads` says; other read endpoints need it only with `http-protect-reads`;
//!   `/healthz` and `/readyz` never do;
//! - no `Authorization: Bearer …` → 401 with `WWW-Authenticate: Bearer`; a wrong token → 403;
//! - the token is compared in constant time (for a given length) and never logged or echoed.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Metadata (status, metrics, listings): token only with `http-protect-reads`.
    Read,
    /// The bytes of a database (downloads): always the token; disabled without one.
    Data,
    /// Changes something: always the token; disabled without one.
    Mutate,
}

impl Access {
    /// What is disabled without a token, for the 403 text.
    fn disabled_what(self) -> &'static str {
        match self {
            Access::Data => "endpoints returning database content",
            Access::Read | Access::Mutate => "mutating endpoints",
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "{} are disabled: configure http-token (or WALSTREAM_HTTP_TOKEN) to enable them",
        .0.disabled_what()
    )]
    Disabled(Access),
    #[error("missing bearer token: send \"Authorization: Bearer <token>\"")]
    Missing,
    #[error("invalid bearer token")]
    Wrong,
}

/// Checks `headers` for `access` under the configured `token` and `protect_reads`.
pub fn check(
    token: Option<&str>,
    protect_reads: bool,
    access: Access,
    headers: &HeaderMap,
) -> Result<(), Denied> {
    let Some(expected) = token else {
        return match access {
            Access::Mutate | Access::Data => Err(Denied::Disabled(access)),
            Access::Read => Ok(()),
        };
    };
    if access == Access::Read && !protect_reads {
        return Ok(());
    }
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or(Denied::Missing)?;
    if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Denied::Wrong)
    }
}

/// The credentials of a `Bearer` authorization value (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Equality whose running time depends only on the lengths, not on where the bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_str(a).expect("header"));
        }
        h
    }

    #[test]
    fn no_token_configured_disables_mutations_and_data() {
        let h = headers(Some("Bearer x"));
        for access in [Access::Mutate, Access::Data] {
            for protect in [false, true] {
                let got = check(None, protect, access, &h);
                assert_eq!(got, Err(Denied::Disabled(access)), "{access:?}");
            }
        }
        assert_eq!(check(None, false, Access::Read, &h), Ok(()));
        let text = |a| Denied::Disabled(a).to_string();
        assert!(text(Access::Mutate).starts_with("mutating endpoints are disabled: configure"));
        assert!(
            text(Access::Data)
                .starts_with("endpoints returning database content are disabled: configure")
        );
    }

    #[test]
    fn data_needs_the_token_even_when_reads_are_open() {
        let t = Some("s3cret");
        for protect in [false, true] {
            let check_data = |auth| check(t, protect, Access::Data, &headers(auth));
            assert_eq!(check_data(None), Err(Denied::Missing));
            assert_eq!(check_data(Some("Basic s3cret")), Err(Denied::Missing));
            assert_eq!(check_data(Some("Bearer nope")), Err(Denied::Wrong));
            assert_eq!(check_data(Some("Bearer s3cret")), Ok(()));
        }
    }

    #[test]
    fn token_cases() {
        let t = Some("s3cret");
        let m = Access::Mutate;
        assert_eq!(check(t, false, m, &headers(None)), Err(Denied::Missing));
        assert_eq!(
            check(t, false, m, &headers(Some("Basic abc"))),
            Err(Denied::Missing)
        );
        assert_eq!(
            check(t, false, m, &headers(Some("Bearer "))),
            Err(Denied::Missing)
        );
        assert_eq!(
            check(t, false, m, &headers(Some("Bearer nope"))),
            Err(Denied::Wrong)
        );
        assert_eq!(
            check(t, false, m, &headers(Some("Bearer s3cre"))),
            Err(Denied::Wrong)
        );
        assert_eq!(check(t, false, m, &headers(Some("Bearer s3cret"))), Ok(()));
        assert_eq!(
            check(t, false, m, &headers(Some("bearer  s3cret "))),
            Ok(())
        );
    }

    #[test]
    fn reads_need_the_token_only_when_protected() {
        let t = Some("s3cret");
        assert_eq!(check(t, false, Access::Read, &headers(None)), Ok(()));
        assert_eq!(
            check(t, true, Access::Read, &headers(None)),
            Err(Denied::Missing)
        );
        let good = headers(Some("Bearer s3cret"));
        assert_eq!(check(t, true, Access::Read, &good), Ok(()));
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
