//! Credential and emulator settings resolved from the environment — the only code in walstream
//! that reads `LITESTREAM_*`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (to decide precedence),
//! `STORAGE_EMULATOR_HOST` and `AZURITE_BLOB_STORAGE_URL`.
//!
//! Invariants: explicit config values always win; the environment is read through an injected
//! lookup so tests never mutate the process environment; a value left `None` means "let the
//! storage layer use the provider's default chain" (object_store reads `AWS_*`, web identity,
//! container credentials, Google application-default credentials).

use super::{AbsTarget, GcsTarget, ReplicaTarget, S3Target};

/// Environment lookup: `Some(value)` when set.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as an [`EnvLookup`] target.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Top-level `access-key-id` / `secret-access-key` (copied into replicas that leave theirs empty).
#[derive(Debug, Clone, Default)]
pub(crate) struct GlobalKeys {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

fn non_empty(env: EnvLookup<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

/// Litestream copies `LITESTREAM_X` to `AWS_X` at start-up when `AWS_X` is unset, so the
/// LITESTREAM value applies exactly when the AWS one is absent; otherwise the default chain
/// (which reads `AWS_X`) decides.
fn litestream_fallback(
    env: EnvLookup<'_>,
    litestream_name: &str,
    aws_name: &str,
) -> Option<String> {
    match env(aws_name) {
        Some(_) => None,
        None => non_empty(env, litestream_name),
    }
}

/// S3 keys: replica keys, else the top-level keys, else `LITESTREAM_ACCESS_KEY_ID` /
/// `LITESTREAM_SECRET_ACCESS_KEY` (per field), else `None`.
pub(crate) fn resolve_s3(target: &mut S3Target, global: &GlobalKeys, env: EnvLookup<'_>) {
    let keep = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    target.access_key_id = keep(&target.access_key_id)
        .or_else(|| keep(&global.access_key_id))
        .or_else(|| litestream_fallback(env, "LITESTREAM_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"));
    target.secret_access_key = keep(&target.secret_access_key)
        .or_else(|| keep(&global.secret_access_key))
        .or_else(|| {
            litestream_fallback(env, "LITESTREAM_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")
        });
}

/// Azure: `account-key`, else `LITESTREAM_AZURE_ACCOUNT_KEY`, else `None`; the emulator's blob
/// service URL from `AZURITE_BLOB_STORAGE_URL` (the variable `object_store` reads for its own
/// requests, so our listings go to the same service).
pub(crate) fn resolve_abs(target: &mut AbsTarget, env: EnvLookup<'_>) {
    if target.account_key.as_deref().is_none_or(str::is_empty) {
        target.account_key = non_empty(env, "LITESTREAM_AZURE_ACCOUNT_KEY");
    }
    target.emulator_url = non_empty(env, "AZURITE_BLOB_STORAGE_URL");
}

/// GCS: `STORAGE_EMULATOR_HOST` (the Go client library honours it; so do we).
pub(crate) fn resolve_gcs(target: &mut GcsTarget, env: EnvLookup<'_>) {
    target.emulator_host = non_empty(env, "STORAGE_EMULATOR_HOST");
}

/// Applies every environment-derived setting to a replica target.
pub(crate) fn resolve_target(target: &mut ReplicaTarget, global: &GlobalKeys, env: EnvLookup<'_>) {
    match target {
        ReplicaTarget::File { .. } => {}
        ReplicaTarget::S3(t) => resolve_s3(t, global, env),
        ReplicaTarget::Gcs(t) => resolve_gcs(t, env),
        ReplicaTarget::Abs(t) => resolve_abs(t, env),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn s3(key: Option<&str>, secret: Option<&str>) -> S3Target {
        S3Target {
            access_key_id: key.map(String::from),
            secret_access_key: secret.map(String::from),
            ..S3Target::default()
        }
    }

    fn global(key: &str, secret: &str) -> GlobalKeys {
        GlobalKeys {
            access_key_id: Some(key.into()),
            secret_access_key: Some(secret.into()),
        }
    }

    const LS_ENV: &[(&str, &str)] = &[
        ("LITESTREAM_ACCESS_KEY_ID", "env-key"),
        ("LITESTREAM_SECRET_ACCESS_KEY", "env-secret"),
    ];

    #[test]
    fn s3_precedence_replica_then_global_then_env() {
        let env = env_of(LS_ENV);
        let cases: Vec<(S3Target, GlobalKeys, (&str, &str))> = vec![
            (
                s3(Some("r-key"), Some("r-sec")),
                global("g-key", "g-sec"),
                ("r-key", "r-sec"),
            ),
            (s3(None, None), global("g-key", "g-sec"), ("g-key", "g-sec")),
            (
                s3(Some(""), Some("r-sec")),
                global("g-key", "g-sec"),
                ("g-key", "r-sec"),
            ),
            (
                s3(None, None),
                GlobalKeys::default(),
                ("env-key", "env-secret"),
            ),
        ];
        for (mut target, global, (key, secret)) in cases {
            resolve_s3(&mut target, &global, &env);
            assert_eq!(target.access_key_id.as_deref(), Some(key));
            assert_eq!(target.secret_access_key.as_deref(), Some(secret));
        }
    }

    #[test]
    fn s3_no_keys_anywhere_leaves_default_chain() {
        let mut target = s3(None, None);
        resolve_s3(&mut target, &GlobalKeys::default(), &env_of(&[]));
        assert_eq!(
            (target.access_key_id, target.secret_access_key),
            (None, None)
        );
    }

    #[test]
    fn aws_env_beats_litestream_env_like_go() {
        let env = env_of(&[
            ("LITESTREAM_ACCESS_KEY_ID", "env-key"),
            ("LITESTREAM_SECRET_ACCESS_KEY", "env-secret"),
            ("AWS_ACCESS_KEY_ID", "aws-key"),
        ]);
        let mut target = s3(None, None);
        resolve_s3(&mut target, &GlobalKeys::default(), &env);
        // The key id is left to the default chain (AWS_ACCESS_KEY_ID); the secret comes from
        // LITESTREAM_SECRET_ACCESS_KEY because AWS_SECRET_ACCESS_KEY is unset.
        assert_eq!(target.access_key_id, None);
        assert_eq!(target.secret_access_key.as_deref(), Some("env-secret"));
    }

    #[test]
    fn azure_key_precedence() {
        let env = env_of(&[("LITESTREAM_AZURE_ACCOUNT_KEY", "env-az")]);
        let mut explicit = AbsTarget {
            account_key: Some("cfg-az".into()),
            ..AbsTarget::default()
        };
        resolve_abs(&mut explicit, &env);
        assert_eq!(explicit.account_key.as_deref(), Some("cfg-az"));
        let mut from_env = AbsTarget::default();
        resolve_abs(&mut from_env, &env);
        assert_eq!(from_env.account_key.as_deref(), Some("env-az"));
        let mut none = AbsTarget::default();
        resolve_abs(&mut none, &env_of(&[]));
        assert_eq!(none.account_key, None);
    }

    #[test]
    fn gcs_emulator_host() {
        let mut t = GcsTarget::default();
        resolve_gcs(
            &mut t,
            &env_of(&[("STORAGE_EMULATOR_HOST", "http://127.0.0.1:4443")]),
        );
        assert_eq!(t.emulator_host.as_deref(), Some("http://127.0.0.1:4443"));
        resolve_gcs(&mut t, &env_of(&[]));
        assert_eq!(t.emulator_host, None);
    }

    #[test]
    fn azure_emulator_url() {
        let mut t = AbsTarget::default();
        resolve_abs(
            &mut t,
            &env_of(&[("AZURITE_BLOB_STORAGE_URL", "http://127.0.0.1:10010")]),
        );
        assert_eq!(t.emulator_url.as_deref(), Some("http://127.0.0.1:10010"));
        resolve_abs(&mut t, &env_of(&[]));
        assert_eq!(t.emulator_url, None);
    }
}
