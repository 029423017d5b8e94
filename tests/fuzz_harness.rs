//! The fuzz harnesses of `walstream::fuzzing` run without cargo-fuzz, so CI checks on every run
//! that the parsers of untrusted input (WAL, LZ4 frames, object keys, config YAML) never panic:
//! each committed seed in `tests/fuzz_corpus/<target>/`, then a fixed number of deterministic
//! pseudo-random inputs and mutations of those seeds (bit flips, byte overwrites, truncation,
//! insertion, duplication, splicing).
//!
//! What must stay true: deterministic (fixed PRNG seed, so a failure names a reproducible case
//! number), fast (a few seconds in a debug build), and a panic in a harness fails the test with
//! the target, case and input length printed. Long coverage-guided runs are `scripts/fuzz.sh`.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use walstream::fuzzing;

/// Random inputs per target (plus `MUTATIONS_PER_SEED` for every seed).
const RANDOM_CASES: usize = 1500;
const MUTATIONS_PER_SEED: usize = 200;
/// Longest random input; mutated seeds may grow a little beyond their own size.
const MAX_RANDOM_LEN: usize = 2048;

/// xorshift64*: tiny, deterministic, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn bytes(&mut self, len: usize, alphabet: Option<&[u8]>) -> Vec<u8> {
        (0..len)
            .map(|_| match alphabet {
                Some(a) => a[self.below(a.len())],
                None => self.next() as u8,
            })
            .collect()
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(target)
}

/// Every file of `dirs`, sorted by path so the run is deterministic.
fn seeds(dirs: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| fs::read_dir(d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "py"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let data = fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p.display().to_string(), data)
        })
        .collect()
}

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8], alphabet: Option<&[u8]>) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        let last = data.len().saturating_sub(1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let bit = rng.below(8);
                data[at.min(last)] ^= 1 << bit;
            }
            1 if !data.is_empty() => {
                let byte = rng.next() as u8;
                data[at.min(last)] = byte;
            }
            2 => data.truncate(at),
            3 => {
                let len = 1 + rng.below(16);
                let ins = rng.bytes(len, alphabet);
                data.splice(at..at, ins);
            }
            4 => {
                let end = (at + 1 + rng.below(64)).min(data.len());
                let copy = data[at.min(end)..end].to_vec();
                data.splice(at..at, copy);
            }
            5 => {
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => {
                let end = (at + rng.below(32)).min(data.len());
                data.drain(at.min(end)..end);
            }
        }
    }
    data
}

/// Runs `harness` on one input; a panic fails the test naming the case.
fn check(target: &str, case: &str, data: &[u8], harness: fn(&[u8])) {
    if panic::catch_unwind(AssertUnwindSafe(|| harness(data))).is_err() {
        let head: Vec<u8> = data.iter().copied().take(64).collect();
        panic!(
            "fuzz harness {target} panicked on {case} ({} bytes, starts {head:02x?})",
            data.len()
        );
    }
}

fn run(target: &str, extra_seed_dirs: &[PathBuf], alphabet: Option<&[u8]>, harness: fn(&[u8])) {
    let mut dirs = vec![corpus_dir(target)];
    dirs.extend_from_slice(extra_seed_dirs);
    let seeds = seeds(&dirs);
    assert!(seeds.len() >= 4, "{target}: too few seeds in {dirs:?}");
    for (name, data) in &seeds {
        check(target, name, data, harness);
    }
    let mut rng = Rng(0x5eed_0000_0000_0001 ^ target.len() as u64);
    for (i, (name, data)) in seeds.iter().enumerate() {
        for m in 0..MUTATIONS_PER_SEED {
            let other = &seeds[(i + m + 1) % seeds.len()].1;
            let input = mutate(&mut rng, data, other, alphabet);
            check(target, &format!("mutation {m} of {name}"), &input, harness);
        }
    }
    for case in 0..RANDOM_CASES {
        let len = rng.below(MAX_RANDOM_LEN + 1);
        let input = rng.bytes(len, alphabet);
        check(target, &format!("random case {case}"), &input, harness);
    }
}

#[test]
fn wal_parser_never_panics() {
    run("wal", &[], None, fuzzing::wal);
}

#[test]
fn lz4_reader_never_panics() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lz4");
    run("lz4", &[fixtures], None, fuzzing::lz4);
}

#[test]
fn key_parser_never_panics() {
    let alphabet = b"0123456789abcdefABCDEF_./\n-snapshotwalz4tmp\xc3\xa9";
    run("key", &[], Some(alphabet), fuzzing::key);
}

#[test]
fn config_loader_never_panics() {
    let alphabet: &[u8] = b"dbs:\n  - path replicas url type s3 file abs gcs bucket \
        retention: 1h2m3s &*<<{}[],'\"$FUZZ_A ${EMPTY}~/:@?=#|>-!%0123456789";
    run("config", &[], Some(alphabet), fuzzing::config);
}
