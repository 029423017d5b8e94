//! The command line and top-level run of a crash-suite binary (`tests/crash.rs`, v0.3 layout by
//! default, and `tests/crash_ltx.rs`, the Litestream v0.5 LTX layout): both are `harness = false`
//! tests built from this one entry point with their own name and defaults ([`Suite`]).
//!
//! Flags: `--rounds N`, `--seed S`, `--s3`, `--dbs N`, `--ltx` (LTX layout), `--keep`; libtest's
//! own flags (`--nocapture`, `--test-threads`, `--list`, a name filter, …) are accepted so `cargo
//! test [FILTER]` behaves as for other tests; `--writer-child DB SEED PID` is the writer process
//! (the binary re-executing itself).
//!
//! Must stay true: with no flags a binary runs its short fixed-seed CI run; the exit code is
//! non-zero on any loss or error.

use std::process::ExitCode;
use std::time::Instant;

use super::driver::Driver;
use super::{Options, writer};

/// What one crash-suite binary runs by default.
#[derive(Clone, Copy, Debug)]
pub struct Suite {
    /// The one test the binary contains (what `cargo test FILTER` is matched against).
    pub name: &'static str,
    pub rounds: u64,
    pub seed: u64,
    /// LTX layout without `--ltx`.
    pub ltx: bool,
}

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

/// The binary's `main`.
pub fn main(suite: Suite) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&suite, &args) {
        Ok(Mode::Writer { db, seed, parent }) => {
            ExitCode::from(writer::child_main(db.as_ref(), seed, parent) as u8)
        }
        Ok(Mode::Nothing { list }) => {
            if list {
                println!("{}: test", suite.name);
            } else {
                println!("running 0 tests");
            }
            ExitCode::SUCCESS
        }
        Ok(Mode::Run(opts)) => run(suite.name, opts),
        Err(e) => {
            eprintln!("{}: {e}", suite.name);
            ExitCode::from(2)
        }
    }
}

fn run(name: &str, opts: Options) -> ExitCode {
    if opts.ltx {
        // Fail now, not after the run: the final comparison needs the real Litestream v0.5.17.
        crate::common::litestream5_bin();
        if let Err(e) = super::ltx::self_test() {
            println!("test {name}: the LTX listing checks are wrong: {e}");
            println!("test {name} ... FAILED");
            return ExitCode::from(101);
        }
    }
    let keep = tempfile::Builder::new()
        .prefix("walstream-crash-")
        .tempdir()
        .expect("temp dir");
    let dir = std::fs::canonicalize(keep.path()).expect("canonical temp dir");
    println!(
        "test {name} (seed {}, {} rounds, {} database(s), {} layout) in {}",
        opts.seed,
        opts.rounds,
        opts.dbs,
        if opts.ltx { "ltx" } else { "v0.3" },
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
        println!("test {name} ... FAILED");
        ExitCode::from(101)
    } else {
        println!("test {name} ... ok");
        ExitCode::SUCCESS
    }
}

fn parse(suite: &Suite, args: &[String]) -> Result<Mode, String> {
    let mut opts = Options {
        rounds: suite.rounds,
        seed: suite.seed,
        s3: false,
        keep: false,
        dbs: 1,
        ltx: suite.ltx,
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
            "--ltx" => opts.ltx = true,
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
                f == suite.name
            } else {
                suite.name.contains(f.as_str())
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
