//! Writing a command's result to stdout: plain text, and JSON pretty-printed as Go's
//! `json.MarshalIndent(v, "", "  ")` (the `-json` outputs of the listing, `ltx` and `restore`
//! commands).
//!
//! What must stay true: a closed stdout is an error of the command (never a panic), and the
//! output is flushed before the command returns.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

/// Go's `json.MarshalIndent(v, "", "  ")` plus a newline.
pub(super) fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v).context("format JSON")?;
    write_stdout(&format!("{text}\n"))
}

/// Writes `text` to stdout and flushes it.
pub(super) fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).context("write to stdout")?;
    out.flush().context("flush stdout")
}
