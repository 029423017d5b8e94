//! The crash suite: kills `walstream replicate` (and the application writer) at random moments
//! while it replicates, restarts, and checks that every restore is an intact, correct prefix of
//! the application's history holding everything `POST …/sync` made durable. See
//! `tests/crash_support/` and the README's "Crash suite" section.
//!
//! A `harness = false` test, so it takes its own flags:
//!
//! ```sh
//! cargo test --test crash                                        # CI: 20 rounds, seed 1, file replica
//! cargo test --release --test crash -- --rounds 300 --seed 7     # a long run by hand
//! bash scripts/test.sh -- cargo test --test crash -- --s3        # replica on the test S3 server
//! cargo test --release --test crash -- --dbs 4 --rounds 300      # one walstream, four databases
//! ```
//!
//! `--keep` keeps the working directory. libtest's own flags (`--nocapture`, `--test-threads`,
//! `--list`, a name filter, …) are accepted so `cargo test [FILTER]` behaves as for other tests;
//! `--writer-child DB SEED PID` is the writer process (the binary re-executing itself).
//!
//! Must stay true: with no flags it is the short fixed-seed run CI relies on; the exit code is
//! non-zero on any loss or error.

mod common;
mod crash_support;

use std::process::ExitCode;
use std::time::Instant;

use crash_support::driver::Driver;
use crash_support::{Options, writer};

/// The one test this binary contains (what `cargo test FILTER` is matched against).
const NAME: &str = "crash_suite";
const DEFAULT_ROUNDS: u64 = 20;
const DEFAULT_SEED: u64 = 1;
/// Upper bound of `--dbs` (each database has its own writer process).
const MAX_DBS: usize = 16;
/// libtest flags that take a value (ignored with it).
const VALUE_FLAGS: &[&str] = &[
    "--test-threads",
    "--color",
    "--format",
    "--logfile",
    "--skip",
    "-Z",
    "--shuffle-seed",
];

enum Mode {
    Run(Options),
    /// Nothing selected (`--list`, `--ignored`, a filter that does not match).
    Nothing {
        list: bool,
    },
    Writer {
        db: String,
        seed: u64,
        parent: i32,
    },
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(Mode::Writer { db, seed, parent }) => {
            ExitCode::from(writer::child_main(db.as_ref(), seed, parent) as u8)
        }
        Ok(Mode::Nothing { list }) => {
            if list {
                println!("{NAME}: test");
            } else {
                println!("running 0 tests");
            }
            ExitCode::SUCCESS
        }
        Ok(Mode::Run(opts)) => run(opts),
        Err(e) => {
            eprintln!("crash: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(opts: Options) -> ExitCode {
    let keep = tempfile::Builder::new()
        .prefix("walstream-crash-")
        .tempdir()
        .expect("temp dir");
    let dir = std::fs::canonicalize(keep.path()).expect("canonical temp dir");
    println!(
        "test {NAME} (seed {}, {} rounds, {} database(s)) in {}",
        opts.seed,
        opts.rounds,
        opts.dbs,
        dir.display()
    );
    let start = Instant::now();
    let mut driver = Driver::new(opts.clone(), dir.clone());
    driver.run();
    let stats = &driver.stats;
    print!("{}", stats.report(&opts, start.elapsed()));
    let failed = stats.failed();
    drop(driver);
    if opts.keep || failed {
        let path = keep.keep();
        println!("working directory kept: {}", path.display());
    }
    if failed {
        println!("test {NAME} ... FAILED");
        ExitCode::from(101)
    } else {
        println!("test {NAME} ... ok");
        ExitCode::SUCCESS
    }
}

fn parse(args: &[String]) -> Result<Mode, String> {
    let mut opts = Options {
        rounds: DEFAULT_ROUNDS,
        seed: DEFAULT_SEED,
        s3: false,
        keep: false,
        dbs: 1,
    };
    let (mut list, mut ignored_only, mut exact) = (false, false, false);
    let mut filters = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--writer-child" => {
                let db = value(a)?;
                let seed = number(&value(a)?)?;
                let parent = number(&value(a)?)? as i32;
                return Ok(Mode::Writer { db, seed, parent });
            }
            "--rounds" => opts.rounds = number(&value(a)?)?,
            "--seed" => opts.seed = number(&value(a)?)?,
            "--s3" => opts.s3 = true,
            "--dbs" => {
                let n = number(&value(a)?)?;
                if n == 0 || n > MAX_DBS as u64 {
                    return Err(format!("--dbs must be 1..={MAX_DBS}, got {n}"));
                }
                opts.dbs = n as usize;
            }
            "--keep" => opts.keep = true,
            "--list" => list = true,
            "--ignored" => ignored_only = true,
            "--exact" => exact = true,
            f if VALUE_FLAGS.contains(&f) => {
                value(f)?;
            }
            f if f.starts_with('-') => {} // other libtest flags: --nocapture, -q, --include-ignored, …
            filter => filters.push(filter.to_string()),
        }
    }
    let selected = filters.is_empty()
        || filters.iter().any(|f| {
            if exact {
                f == NAME
            } else {
                NAME.contains(f.as_str())
            }
        });
    if list || ignored_only || !selected {
        return Ok(Mode::Nothing {
            list: list && selected && !ignored_only,
        });
    }
    Ok(Mode::Run(opts))
}

fn number(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}
