//! `walstream replicate`: `replicate [-config P] [-no-expand-env] [-exec CMD]` and
//! `replicate [-exec CMD] DB_PATH REPLICA_URL...` (spec §6.2), plus walstream's own
//! `-shutdown-timeout DURATION` (deadline for the final sync; default the config's
//! `shutdown-sync-timeout`, else 30s) and `-heartbeat-interval DURATION` (replaces the config's
//! `heartbeat-interval` without Litestream's 1m floor, at least [`MIN_HEARTBEAT_FLAG`]; for
//! monitors that want faster pings, and tests).
//!
//! What must stay true:
//! - argument errors use Litestream's wording: `must specify at least one replica URL for <db>`,
//!   `cannot specify a replica URL and the -config flag`, `duplicate replica name: "file"`;
//! - a config with a key `replicate` cannot honour (`config::Config::check_replicate`, e.g. a
//!   Litestream v0.5 singular `replica:`) fails with that one line before anything is written;
//! - URL mode reads no config file (logging stays in the pre-config format), each replica gets
//!   sync-interval 1 s;
//! - SIGINT/SIGTERM: `signal received, walstream shutting down`, forwarded to the `-exec` child
//!   (whose exit is then awaited), final sync, exit 0; a second signal exits at once (status 1);
//! - when the `-exec` child exits on its own: `subprocess exited, walstream shutting down`, final
//!   sync, then exit 0 if it exited 0, else 1 with `exit status N` (Litestream's behaviour).

use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::info;

use super::flags::FlagSet;
use super::source::{load_config, register_config_flags};
use super::{HelpRequested, log, parse_flags};
use crate::config::{self, Config};
use crate::gofmt;

/// Least `-heartbeat-interval`: one ping a second is the most a monitor is ever sent.
pub const MIN_HEARTBEAT_FLAG: Duration = Duration::from_secs(1);

/// Runs `replicate` with the arguments after the command word; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    match command(args) {
        Ok(()) => 0,
        Err(e) if e.is::<HelpRequested>() => 1,
        Err(e) => {
            log::failed_to_run(&e);
            1
        }
    }
}

/// The command as a `Result` (for the dispatcher, which logs `failed to run` itself).
pub fn command(args: &[String]) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    register_config_flags(&mut fs)
        .string("exec", "")
        .custom("shutdown-timeout", "30s", |v| {
            gofmt::parse_go_duration(v).map(|_| ())
        })
        .custom("heartbeat-interval", "", |v| heartbeat_flag(v).map(|_| ()));
    let p = parse_flags(&fs, args, "replicate")?;
    let mut cfg = match p.args.as_slice() {
        [] => {
            let cfg = load_config(p.str("config"), p.bool("no-expand-env"))?;
            // Keys this command cannot honour (e.g. a v0.5 singular `replica:`): one line, and
            // nothing is written.
            cfg.check_replicate()?;
            cfg
        }
        [db] => bail!("must specify at least one replica URL for {db}"),
        [db, urls @ ..] => {
            if !p.str("config").is_empty() {
                bail!("cannot specify a replica URL and the -config flag");
            }
            config::config_for_urls(db, urls)?
        }
    };
    if !p.str("exec").is_empty() {
        cfg.exec = Some(p.str("exec").to_string());
    }
    if p.is_set("heartbeat-interval") {
        cfg.v05.heartbeat_interval =
            heartbeat_flag(p.str("heartbeat-interval")).map_err(anyhow::Error::msg)?;
    }
    // The flag, else the config's `shutdown-sync-timeout` (Litestream v0.5; same 30s default).
    let timeout = if p.is_set("shutdown-timeout") {
        gofmt::parse_go_duration(p.str("shutdown-timeout")).map_err(anyhow::Error::msg)?
    } else {
        cfg.v05.shutdown_sync_timeout
    };
    crate::rt::limit_malloc_arenas();
    super::block_on(replicate(cfg, timeout))?
}

/// `-heartbeat-interval`: a Go duration of at least [`MIN_HEARTBEAT_FLAG`].
fn heartbeat_flag(v: &str) -> Result<Duration, String> {
    let d = gofmt::parse_go_duration(v)?;
    if d < MIN_HEARTBEAT_FLAG {
        return Err(format!("-heartbeat-interval must be at least 1s, got {v}"));
    }
    Ok(d)
}

/// How the run ended, decided by the shutdown future.
#[derive(Debug, Default)]
struct Ending {
    /// The child's exit when it ended on its own (not after a forwarded signal).
    child_exit: Option<ExitStatus>,
}

async fn replicate(cfg: Config, shutdown_timeout: Duration) -> anyhow::Result<()> {
    // The HTTP server (when `addr` is set) binds before anything starts and serves the
    // handles once they exist (see crate::server).
    let server = match cfg.addr.as_deref() {
        Some(addr) => Some(crate::server::Server::bind(addr, cfg.http.clone())?),
        None => None,
    };
    let mut sigint = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let child = match cfg.exec.as_deref().filter(|c| !c.is_empty()) {
        Some(cmd) => Some(spawn_child(cmd)?),
        None => None,
    };
    let ending = Arc::new(Mutex::new(Ending::default()));
    let shutdown = wait_for_end(child, Arc::clone(&ending), &mut sigint, &mut sigterm);
    let opts = crate::replicate::Options {
        shutdown_timeout,
        ..Default::default()
    };
    crate::replicate::run_with(cfg, shutdown, opts, move |fleet, lifecycle| {
        if let Some(Err(e)) = server.map(|s| s.start(fleet, lifecycle)) {
            tracing::error!(error = %e, "http server error");
        }
    })
    .await?;
    let child_exit = ending.lock().map(|e| e.child_exit).unwrap_or(None);
    match child_exit {
        Some(status) if !status.success() => bail!("{}", describe_exit(status)),
        _ => Ok(()),
    }
}

fn spawn_child(cmd: &str) -> anyhow::Result<tokio::process::Child> {
    let words = split_shell_words(cmd)
        .map_err(|e| anyhow::anyhow!("cannot parse exec command {cmd:?}: {e}"))?;
    let Some((prog, rest)) = words.split_first() else {
        bail!("cannot parse exec command: {cmd}");
    };
    tokio::process::Command::new(prog)
        .args(rest)
        .spawn()
        .with_context(|| format!("cannot start exec command: {prog}"))
}

/// Resolves at the first SIGINT/SIGTERM (after forwarding it to the child and waiting for the
/// child) or when the child exits by itself.
async fn wait_for_end(
    child: Option<tokio::process::Child>,
    ending: Arc<Mutex<Ending>>,
    sigint: &mut Signal,
    sigterm: &mut Signal,
) {
    let mut child = child;
    let child_exit = async {
        match child.as_mut() {
            Some(c) => c.wait().await.ok(),
            None => std::future::pending().await,
        }
    };
    let signo = tokio::select! {
        _ = sigint.recv() => libc::SIGINT,
        _ = sigterm.recv() => libc::SIGTERM,
        status = child_exit => {
            info!("subprocess exited, walstream shutting down");
            if let Ok(mut e) = ending.lock() {
                e.child_exit = status;
            }
            return;
        }
    };
    info!("signal received, walstream shutting down");
    exit_on_second_signal();
    if let Some(c) = child.as_mut() {
        if let Some(pid) = c.id() {
            info!("sending signal to exec process");
            // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
            unsafe { libc::kill(pid as libc::pid_t, signo) };
        }
        info!("waiting for exec process to close");
        let _ = c.wait().await;
    }
}

/// After the first signal, any further SIGINT/SIGTERM ends the process at once. The streams are
/// registered before this returns, so a signal sent right after the first one is not missed.
fn exit_on_second_signal() {
    let (Ok(mut i), Ok(mut t)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = i.recv() => {}
            _ = t.recv() => {}
        }
        std::process::exit(1);
    });
}

/// Go's `exec.ExitError` text: `exit status N` or `signal: <name>`.
fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("signal: {}", signal_name(sig)),
        (None, None) => "exit status unknown".to_string(),
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "interrupt".into(),
        libc::SIGTERM => "terminated".into(),
        libc::SIGKILL => "killed".into(),
        libc::SIGHUP => "hangup".into(),
        libc::SIGABRT => "aborted".into(),
        libc::SIGSEGV => "segmentation fault".into(),
        n => format!("signal {n}"),
    }
}

/// Splits a command line like a POSIX shell does for words: whitespace separates, single quotes
/// are literal, double quotes allow `\"`, `\\`, `\$` and `` \` `` escapes, a backslash outside
/// quotes escapes the next character. Unbalanced quotes are an error.
pub fn split_shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words() {
        let w = |s: &str| split_shell_words(s).expect("valid");
        assert_eq!(w("sh -c 'exit 3'"), vec!["sh", "-c", "exit 3"]);
        assert_eq!(
            w(r#"  a  "b \"c\" \n" d\ e ''"#),
            vec!["a", "b \"c\" \\n", "d e", ""]
        );
        assert_eq!(w("x'y'\"z\""), vec!["xyz"]);
        assert!(w("").is_empty());
        assert!(split_shell_words("'open").is_err());
        assert!(split_shell_words("\"open").is_err());
        assert!(split_shell_words("a\\").is_err());
    }

    #[test]
    fn heartbeat_flag_needs_a_second() {
        assert_eq!(heartbeat_flag("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(heartbeat_flag("2m"), Ok(Duration::from_secs(120)));
        assert!(heartbeat_flag("999ms").is_err());
        assert!(heartbeat_flag("soon").is_err());
    }

    #[test]
    fn exit_descriptions() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe_exit(ExitStatus::from_raw(3 << 8)), "exit status 3");
        assert_eq!(
            describe_exit(ExitStatus::from_raw(libc::SIGKILL)),
            "signal: killed"
        );
    }
}
