//! The `walstream` binary: all logic lives in the library's `cli` module.

fn main() {
    std::process::exit(walstream::cli::main(std::env::args().collect()));
}
