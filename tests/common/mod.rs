//! The one support module of the integration suites. Here: where the test servers and the real
//! Litestream binaries are, per-backend replica config/URL/environment, unique key prefixes, and
//! running commands with useful failure messages. Beside it: [`process`] (a running walstream or
//! Litestream, restores), [`workspace`] (the temp-dir fixture), [`poll`] (the one poller) and
//! [`sqlite`] (the application table, the row reader and the restore checks).
//!
//! Must stay true:
//! - A missing test server or binary makes the test FAIL (never skip) with a message naming the
//!   variable and `scripts/test.sh`, which starts the servers and exports `WALSTREAM_TEST_*`.
//! - [`Backend::replica_yaml`] is accepted by both the real Litestream v0.3.13 and walstream.
//! - Litestream (Go GCS client) talks to fake-gcs-server directly; walstream (object_store, GCS
//!   XML API) talks to it through `scripts/gcs_proxy.py`. Both see the same objects.
//! - Nothing here sleeps to wait for readiness: [`poll_until`] polls with a deadline.
#![allow(dead_code, unused_imports)]

pub mod litestream;
pub mod poll;
pub mod process;
pub mod sqlite;
pub mod workspace;

pub use poll::{DEADLINE, POLL, poll_until};
pub use process::{Proc, litestream_env, restore_with, walstream, walstream_config, walstream_env};
pub use sqlite::{Rows, assert_restores_to, insert, integrity, open_app, rows};
pub use workspace::{Workspace, tempdir};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The Azure storage emulator's well-known account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// The Azure storage emulator's published, well-known key (not a secret).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Credentials given to moto, which accepts any.
pub const S3_ACCESS_KEY_ID: &str = "walstream-test-key";
pub const S3_SECRET_ACCESS_KEY: &str = "walstream-test-secret";
/// Region used with moto (Litestream needs one for a custom endpoint).
pub const S3_REGION: &str = "us-east-1";

/// The value of a variable exported by `scripts/test.sh`; panics (fails the test) when unset.
pub fn require_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: run the tests with scripts/test.sh, which starts the test servers"
        ),
    }
}

/// The shared bucket / container on every test server (`walstream-test`).
pub fn bucket() -> String {
    require_env("WALSTREAM_TEST_BUCKET")
}

/// moto (S3), `http://127.0.0.1:PORT`.
pub fn s3_endpoint() -> String {
    require_env("WALSTREAM_TEST_S3_ENDPOINT")
}

/// azurite's blob service, `http://127.0.0.1:PORT` (the account is in the path).
pub fn azurite_url() -> String {
    require_env("WALSTREAM_TEST_AZURITE_URL")
}

/// object_store's client for the shared bucket on moto (path-style, plain HTTP).
pub fn moto_store() -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(s3_endpoint())
        .with_bucket_name(bucket())
        .with_region(S3_REGION)
        .with_access_key_id(S3_ACCESS_KEY_ID)
        .with_secret_access_key(S3_SECRET_ACCESS_KEY)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .expect("build S3 store")
}

/// fake-gcs-server itself, `http://127.0.0.1:PORT` (JSON API; what Litestream uses).
pub fn gcs_server() -> String {
    require_env("WALSTREAM_TEST_GCS_SERVER")
}

/// The GCS XML-API translating proxy in front of fake-gcs-server (what object_store needs).
pub fn gcs_proxy() -> String {
    require_env("WALSTREAM_TEST_GCS_PROXY")
}

/// The text of the repository file `rel` (a manifest, a config, the README), read at test time.
pub fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `text` with `from` replaced by `to`; `from` must occur, so a test that maps a repository file
/// fails when the file changed instead of testing it in an old form.
pub fn replace_existing(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not found in {text:?}");
    text.replace(from, to)
}

/// The walstream binary built for this test run.
pub fn walstream_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_walstream"))
}

/// The real Litestream v0.3.13.
pub fn litestream_bin() -> PathBuf {
    PathBuf::from(require_env("WALSTREAM_TEST_LITESTREAM"))
}

/// The real Litestream v0.5.17 (restores v0.3 replicas).
pub fn litestream5_bin() -> PathBuf {
    PathBuf::from(require_env("WALSTREAM_TEST_LITESTREAM5"))
}

/// `tag` plus a suffix unique across processes and calls: lowercase `[a-z0-9-]`, usable as an
/// object key prefix, a file name or a container name.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tag: String = tag
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{tag}-{nanos:x}-{:x}-{n}", std::process::id())
}

/// The replica backends every compatibility test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    File,
    S3,
    Abs,
    Gcs,
}

impl Backend {
    pub const ALL: [Backend; 4] = [Backend::File, Backend::S3, Backend::Abs, Backend::Gcs];

    /// Litestream's replica type name.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::File => "file",
            Backend::S3 => "s3",
            Backend::Abs => "abs",
            Backend::Gcs => "gcs",
        }
    }

    /// One replica entry as YAML mapping lines (`key: value`, no leading `- `, no indent), for
    /// both Litestream v0.3.13 and walstream. Object stores put the replica under `prefix` in the
    /// shared bucket; `File` uses `file_dir` (and ignores `prefix`). Pair it with
    /// [`Backend::env_for_litestream`] / [`Backend::env_for_walstream`].
    pub fn replica_yaml(&self, prefix: &str, file_dir: &Path) -> String {
        let fields: Vec<(&str, String)> = match self {
            Backend::File => vec![
                ("type", q("file")),
                ("path", q(&file_dir.display().to_string())),
            ],
            Backend::S3 => vec![
                ("type", q("s3")),
                ("bucket", q(&bucket())),
                ("path", q(prefix)),
                ("endpoint", q(&s3_endpoint())),
                ("region", q(S3_REGION)),
                ("force-path-style", "true".to_string()),
            ],
            Backend::Abs => vec![
                ("type", q("abs")),
                ("account-name", q(AZURITE_ACCOUNT)),
                ("bucket", q(&bucket())),
                ("path", q(prefix)),
                (
                    "endpoint",
                    q(&format!("{}/{AZURITE_ACCOUNT}", azurite_url())),
                ),
            ],
            Backend::Gcs => vec![
                ("type", q("gcs")),
                ("bucket", q(&bucket())),
                ("path", q(prefix)),
            ],
        };
        fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
    }

    /// [`Backend::replica_yaml`] as a YAML list item (`- type: …`) indented by `indent` spaces,
    /// ready to follow a `replicas:` line.
    pub fn replica_list_item(&self, prefix: &str, file_dir: &Path, indent: usize) -> String {
        let pad = " ".repeat(indent);
        let yaml = self.replica_yaml(prefix, file_dir);
        yaml.lines()
            .enumerate()
            .map(|(i, line)| {
                let lead = if i == 0 { "- " } else { "  " };
                format!("{pad}{lead}{line}\n")
            })
            .collect()
    }

    /// The replica as a URL, where one can reach the test server, with the same environment as
    /// the YAML form. `None` for `Abs`: an `abs://` URL cannot name azurite's endpoint. S3 uses
    /// Litestream's `BUCKET.localhost:PORT` host form, which means `http://localhost:PORT`.
    pub fn replica_url(&self, prefix: &str, file_dir: &Path) -> Option<String> {
        match self {
            Backend::File => Some(format!("file://{}", file_dir.display())),
            Backend::S3 => {
                let endpoint = s3_endpoint();
                let port = endpoint.rsplit(':').next().unwrap_or_default().to_string();
                Some(format!("s3://{}.localhost:{port}/{prefix}", bucket()))
            }
            Backend::Abs => None,
            Backend::Gcs => Some(format!("gcs://{}/{prefix}", bucket())),
        }
    }

    /// Environment for running the real Litestream against this backend.
    pub fn env_for_litestream(&self) -> Vec<(String, String)> {
        match self {
            Backend::Gcs => vec![pair("STORAGE_EMULATOR_HOST", &gcs_server())],
            _ => self.common_env(),
        }
    }

    /// Environment for running walstream against this backend (GCS goes through the proxy).
    pub fn env_for_walstream(&self) -> Vec<(String, String)> {
        match self {
            Backend::Gcs => vec![pair("STORAGE_EMULATOR_HOST", &gcs_proxy())],
            _ => self.common_env(),
        }
    }

    /// Credentials shared by both tools.
    fn common_env(&self) -> Vec<(String, String)> {
        match self {
            Backend::File | Backend::Gcs => Vec::new(),
            Backend::S3 => vec![
                pair("LITESTREAM_ACCESS_KEY_ID", S3_ACCESS_KEY_ID),
                pair("LITESTREAM_SECRET_ACCESS_KEY", S3_SECRET_ACCESS_KEY),
            ],
            Backend::Abs => vec![pair("LITESTREAM_AZURE_ACCOUNT_KEY", AZURITE_KEY)],
        }
    }
}

/// Environment for running Litestream against any of the object-store backends (the union of
/// [`Backend::env_for_litestream`]; needs every server).
pub fn env_for_litestream() -> Vec<(String, String)> {
    Backend::ALL
        .iter()
        .flat_map(|b| b.env_for_litestream())
        .collect()
}

/// Environment for running walstream against any of the object-store backends (the union of
/// [`Backend::env_for_walstream`]; needs every server).
pub fn env_for_walstream() -> Vec<(String, String)> {
    Backend::ALL
        .iter()
        .flat_map(|b| b.env_for_walstream())
        .collect()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// Runs `cmd`, panicking with its stdout and stderr unless it exits 0.
pub fn run(cmd: &mut Command) -> Output {
    let out = output_of(cmd);
    assert!(
        out.status.success(),
        "command failed: {}",
        describe(cmd, &out)
    );
    out
}

/// Runs `cmd`, panicking with its stdout and stderr unless it exits non-zero.
pub fn run_expect_fail(cmd: &mut Command) -> Output {
    let out = output_of(cmd);
    assert!(
        !out.status.success(),
        "command unexpectedly succeeded: {}",
        describe(cmd, &out)
    );
    out
}

fn output_of(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The command, its exit status, stdout and stderr, for failure messages.
pub fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "{cmd:?}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every name in `dir`, sorted (hidden and temporary files included: tests that check what a
/// failure left behind need them).
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// stdout as text.
pub fn stdout_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The id a `walstream backup create|upload` printed: the first word of its first line that is
/// not a log line (`time=… level=INFO …` lines go to stdout too, as in Litestream).
pub fn printed_id(stdout: &str) -> String {
    stdout
        .lines()
        .find(|l| !l.starts_with("time="))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no id printed: {stdout}"))
        .to_string()
}

/// Everything a command said: stdout, then stderr (the configured logger writes to stdout, like
/// Litestream's; errors go to stderr).
pub fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One `#[test]` per line, each running the listed scenario functions on one [`Backend`]:
/// `backend_tests! { compat_s3: compat => S3; handover_s3: from, to => S3; }`.
#[macro_export]
macro_rules! backend_tests {
    ($($(#[$attr:meta])* $name:ident: $($scenario:ident),+ => $backend:ident;)+) => {
        $(
            $(#[$attr])*
            #[test]
            fn $name() {
                $($scenario($crate::common::Backend::$backend);)+
            }
        )+
    };
}
