#!/usr/bin/env bash
# scripts/fuzz.sh — coverage-guided fuzzing of walstream's parsers of untrusted input with
# cargo-fuzz (libFuzzer): targets wal, lz4, key, config (fuzz/fuzz_targets/*.rs, each calling
# walstream::fuzzing::<target>). CI does not run this; it runs tests/fuzz_harness.rs instead.
#
# Must stay true: cargo-fuzz is installed into .testenv/cargo-fuzz (never committed) when missing;
# the stable toolchain is used with RUSTC_BOOTSTRAP=1 because cargo-fuzz passes -Z sanitizer
# flags; new corpus entries go to fuzz/corpus/<target> (gitignored) and the committed seeds in
# tests/fuzz_corpus/<target> are read but never written; a crash leaves its input in
# fuzz/artifacts/<target>/ and makes the script exit non-zero after the remaining targets ran.
#
# Usage:
#   scripts/fuzz.sh [--seconds N] [--jobs J] [TARGET...]   N seconds per target (default 30);
#                                                           all four targets when none is named
#   reproduce a crash: scripts/fuzz.sh --repro fuzz/artifacts/wal/crash-... wal
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

# shellcheck source=scripts/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"  # WS_ROOT, WS_CARGO_FUZZ (the .testenv layout)
root=$WS_ROOT
seconds=30
jobs=1
repro=
targets=()
while (($#)); do
    case "$1" in
        --seconds) seconds=${2:?--seconds needs a value}; shift ;;
        --jobs) jobs=${2:?--jobs needs a value}; shift ;;
        --repro) repro=${2:?--repro needs a file}; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) printf 'unknown argument: %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
        *) targets+=("$1") ;;
    esac
    shift
done
((${#targets[@]})) || targets=(wal lz4 key config)

fuzz_root=$WS_CARGO_FUZZ
if [[ ! -x $fuzz_root/bin/cargo-fuzz ]]; then
    echo "installing cargo-fuzz into $fuzz_root" >&2
    cargo install cargo-fuzz --version 0.13.2 --locked --root "$fuzz_root"
fi
export PATH="$fuzz_root/bin:$PATH"
export RUSTC_BOOTSTRAP=1

cd "$root"
if [[ -n $repro ]]; then
    exec cargo fuzz run "${targets[0]}" "$repro"
fi
failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    echo "== fuzz $t for ${seconds}s" >&2
    parallel=()
    ((jobs > 1)) && parallel=(-jobs="$jobs" -workers="$jobs")
    if ! cargo fuzz run "$t" "fuzz/corpus/$t" "tests/fuzz_corpus/$t" -- \
        -max_total_time="$seconds" -max_len=16384 -print_final_stats=1 "${parallel[@]}"; then
        failed+=("$t")
    fi
done
if ((${#failed[@]})); then
    echo "fuzz: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: no crash in: ${targets[*]}" >&2
