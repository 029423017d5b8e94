//! cargo-fuzz target: the replica object key parser (generations, snapshots, segments) via `walstream::fuzzing::key`, which must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| walstream::fuzzing::key(data));
