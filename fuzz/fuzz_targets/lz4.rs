//! cargo-fuzz target: the LZ4 frame reader via `walstream::fuzzing::lz4`, which must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| walstream::fuzzing::lz4(data));
