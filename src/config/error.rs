//! The config module's error type.
//!
//! Invariant: every message is one line; errors about a value inside a file name the file, the
//! key path and the database (`config F: dbs[0] (/data/app.db): replicas[1] "s3": key: problem`);
//! no message contains a password or key.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file does not exist (Litestream's exact wording).
    #[error("config file not found: {}", .0.display())]
    NotFound(PathBuf),

    #[error("config {}: cannot read: {reason}", path.display())]
    Read { path: PathBuf, reason: String },

    /// The text is not valid YAML (or not a mapping at the top).
    #[error("{origin}: malformed YAML{}: {message}", at_line(*.line, *.column))]
    Yaml {
        origin: String,
        /// 1-based, 0 when unknown.
        line: usize,
        column: usize,
        message: String,
    },

    /// A value inside the file is invalid; `location` is the key path with database/replica.
    #[error("{origin}: {}{message}", prefixed(location))]
    Invalid {
        origin: String,
        location: String,
        message: String,
    },

    #[error("cannot expand path {0}, no home directory available")]
    NoHome(String),

    #[error("cannot make path {path} absolute: {reason}")]
    NoCurrentDir { path: String, reason: String },

    #[error("path is not valid UTF-8: {}", .0.display())]
    NonUtf8Path(PathBuf),

    #[error("replica url scheme required: {0}")]
    MissingScheme(String),

    #[error("invalid replica url {url}: {reason}")]
    BadUrl { url: String, reason: String },

    #[error("unknown replica url scheme {scheme:?} in {url} (supported: file, s3, gcs, abs)")]
    UnknownScheme { scheme: String, url: String },

    /// The URL has its password removed.
    #[error("sftp replicas are not supported by walstream: {0}")]
    Sftp(String),

    #[error("bucket required for {kind} replica: {url}")]
    MissingBucket { kind: &'static str, url: String },

    #[error("file replica path required: {0}")]
    MissingFilePath(String),

    #[error("duplicate replica name: {0:?}")]
    DuplicateReplicaName(String),
}

fn at_line(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" at line {line}, column {column}")
    }
}

fn prefixed(location: &str) -> String {
    if location.is_empty() {
        String::new()
    } else {
        format!("{location}: ")
    }
}

impl ConfigError {
    /// Places an error found while building a value at `location` inside the file `origin`.
    pub(crate) fn at(self, origin: &str, location: &str) -> ConfigError {
        match self {
            ConfigError::Invalid { .. } => self,
            other => ConfigError::Invalid {
                origin: origin.to_string(),
                location: location.to_string(),
                message: other.to_string(),
            },
        }
    }
}
