//! cargo-fuzz target: the WAL parser (header, frame headers, FrameScanner) via `walstream::fuzzing::wal`, which must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| walstream::fuzzing::wal(data));
