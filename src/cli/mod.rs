//! The command line: Litestream v0.3.13's command surface (spec §6) under the name `walstream`.
//!
//! What must stay true:
//! - no command, `help`, or any `-flag` as the first word → program usage on stdout, exit 1;
//!   unknown command → `walstream <cmd>: unknown command`, exit 1;
//! - `-h`/`-help` on a command → that command's usage on stdout, exit 1, nothing else;
//! - a flag error prints Go's message on stderr, then the usage on stdout, then fails the command;
//! - a failed command logs exactly one `ERROR failed to run error="…"` line (Go's default logger on
//!   stderr before a config file is loaded, the configured logger after) and exits 1; success
//!   exits 0.
//!
//! One file per command; shared pieces: [`flags`] (Go flag syntax), [`table`] (Go tabwriter),
//! [`usage`] (help texts), [`log`] (Litestream's log formats), `source` (DB path / replica URL
//! resolution).

pub mod flags;
pub mod log;
pub mod replicate;
pub mod table;
pub mod usage;

mod backup;
mod backup_data;
mod control;
mod databases;
mod generations;
mod list;
mod ltx;
mod restore;
mod restore_damaged;
mod restore_dir;
mod restore_ltx;
mod restore_plan_v3;
mod snapshots;
mod source;
mod status;
mod stdout;
mod version;
mod wal;

use std::future::Future;
use std::io::Write;

use anyhow::{Context, bail};

pub use source::{Source, SourceReplica};

/// A command stopped because its usage was printed on request (`-h`); exit 1 without logging.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("flag: help requested")]
pub struct HelpRequested;

/// Runs the program with `args` as from `std::env::args()` (program name first); returns the
/// process exit code.
pub fn main(args: Vec<String>) -> i32 {
    log::init();
    let args: Vec<String> = args.into_iter().skip(1).collect();
    match run(&args) {
        Ok(()) => 0,
        Err(e) if e.is::<HelpRequested>() => 1,
        Err(e) => {
            log::failed_to_run(&e);
            1
        }
    }
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let (cmd, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("", args),
    };
    match cmd {
        "version" => version::run(rest),
        "backup" => backup::run(rest),
        "databases" => databases::run(rest),
        "generations" => generations::run(rest),
        "snapshots" => snapshots::run(rest),
        "wal" => wal::run(rest),
        "ltx" => ltx::run(rest),
        "restore" => restore::run(rest),
        "status" => status::run(rest),
        "sync" => control::sync(rest),
        "snapshot" => control::snapshot(rest),
        "replicate" => replicate::command(rest),
        "" | "help" => print_usage_and_stop(""),
        c if c.starts_with('-') => print_usage_and_stop(""),
        c => bail!("walstream {c}: unknown command"),
    }
}

/// The default config path as shown in usage texts (`LITESTREAM_CONFIG` or the built-in path).
fn default_config_display() -> String {
    crate::config::default_config_path().display().to_string()
}

/// Prints the usage of `command` (`""` = the program) to stdout.
pub fn print_usage(command: &str) {
    if let Some(text) = usage::usage(command, &default_config_display()) {
        let mut out = std::io::stdout().lock();
        // Nothing useful can be done if stdout is closed.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

fn print_usage_and_stop(command: &str) -> anyhow::Result<()> {
    print_usage(command);
    Err(HelpRequested.into())
}

/// Parses a command's flags like Go's `FlagSet.Parse` with `ContinueOnError` and the command's
/// usage: `-h` prints usage and stops; an invalid flag prints the message on stderr and the usage
/// on stdout, then fails with that message.
pub fn parse_flags(
    fs: &flags::FlagSet,
    args: &[String],
    command: &str,
) -> anyhow::Result<flags::Parsed> {
    match fs.parse(args) {
        Ok(p) => Ok(p),
        Err(flags::FlagError::Help) => {
            print_usage(command);
            Err(HelpRequested.into())
        }
        Err(flags::FlagError::Invalid(msg)) => {
            eprintln!("{msg}");
            print_usage(command);
            Err(anyhow::anyhow!(msg))
        }
    }
}

/// Most threads for blocking work (SQLite, file I/O). Tokio's default of 512 would let a burst
/// of syncs across thousands of databases start hundreds of threads; work beyond this queues.
const MAX_BLOCKING_THREADS: usize = 64;

/// Runs an async command body on a fresh multi-threaded tokio runtime.
pub fn block_on<F: Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
        .context("start async runtime")?;
    Ok(rt.block_on(f))
}

/// Writes a rendered table to stdout.
fn print_table(t: &table::Table) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    t.write_to(&mut out).context("write table to stdout")?;
    out.flush().context("flush stdout")
}
