//! The `walstream` binary: all logic lives in the library's `cli` module.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![deny(clippy::dbg_macro, clippy::todo)]

fn main() {
    std::process::exit(walstream::cli::main(std::env::args().collect()));
}
