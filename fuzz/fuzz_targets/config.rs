//! cargo-fuzz target: the config loader (YAML text to a validated config) via `walstream::fuzzing::config`, which must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| walstream::fuzzing::config(data));
