//! The crash suite against the Litestream v0.5 (LTX) writer: the same driver, faults and restore
//! checks as `tests/crash.rs`, with walstream replicating through a v0.5-shaped config (singular
//! `replica:`, short `levels`, `snapshot.interval`/`retention` and `l0-retention`, so compaction,
//! L9 snapshots and retention run during every round and kills land in the middle of them);
//! restores at `-txid` file ends instead of `-timestamp`; every level gap- and overlap-free after
//! every round; and the real `litestream restore` v0.5.17 giving walstream's result. See
//! `tests/crash_support/ltx.rs` and the README's "Crash suite" section.
//!
//! Needs `WALSTREAM_TEST_LITESTREAM5` (and the S3 server for `--s3`):
//!
//! ```sh
//! bash scripts/test.sh -- cargo test --test crash_ltx                    # CI: 10 rounds, seed 1
//! bash scripts/test.sh -- cargo test --release --test crash_ltx -- --rounds 150 --seed 5 --s3
//! ```
//!
//! Takes the flags of `tests/crash.rs` (`tests/crash_support/cli.rs`).
//!
//! Must stay true: with no flags it is the short fixed-seed run CI relies on; the exit code is
//! non-zero on any loss or error.

mod common;
mod crash_support;

use std::process::ExitCode;

use crash_support::cli::{self, Suite};

fn main() -> ExitCode {
    cli::main(Suite {
        name: "crash_ltx_suite",
        rounds: 10,
        seed: 1,
        ltx: true,
    })
}
