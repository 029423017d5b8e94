//! The crash suite: kills `walstream replicate` (and the application writer) at random moments
//! while it replicates, restarts, and checks that every restore is an intact, correct prefix of
//! the application's history holding everything `POST …/sync` made durable. See
//! `tests/crash_support/` and the README's "Crash suite" section.
//!
//! A `harness = false` test, so it takes its own flags (`tests/crash_support/cli.rs`):
//!
//! ```sh
//! cargo test --test crash                                        # CI: 20 rounds, seed 1, file replica
//! cargo test --release --test crash -- --rounds 300 --seed 7     # a long run by hand
//! bash scripts/test.sh -- cargo test --test crash -- --s3        # replica on the test S3 server
//! cargo test --release --test crash -- --dbs 4 --rounds 300      # one walstream, four databases
//! bash scripts/test.sh -- cargo test --release --test crash -- --ltx --rounds 150   # LTX layout
//! ```
//!
//! `--keep` keeps the working directory. The LTX layout's CI run is `tests/crash_ltx.rs`.
//!
//! Must stay true: with no flags it is the short fixed-seed run CI relies on; the exit code is
//! non-zero on any loss or error.

mod common;
mod crash_support;

use std::process::ExitCode;

use crash_support::cli::{self, Suite};

fn main() -> ExitCode {
    cli::main(Suite {
        name: "crash_suite",
        rounds: 20,
        seed: 1,
        ltx: false,
    })
}
