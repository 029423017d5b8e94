# benches/lib.sh — sourced by every bench script: the ONE way benches find the binaries they
# compare, plus the steps the restore benches share.
#
# Owns: locating walstream and the Litestream peers; the options every bench with a work
# directory takes; the restore benches' work directory, log line, source database, update
# workload, Litestream start/stop, timed runs and summaries.
# Must stay true: every bench honours the same environment overrides with the same defaults as
# the test command (the peers' paths come from scripts/services.sh, the install layout's one
# source), and whatever is wrong (a missing or wrong binary, a bad argument, too few samples, a
# replicator that died) is said in one line on stderr, never a traceback or a silent fallback to
# something else on PATH.
#
#   WALSTREAM    walstream binary to measure as is (default: this checkout's release build,
#                ${CARGO_TARGET_DIR:-target}/release/walstream, brought up to date with
#                `cargo build --release` first)
#   LITESTREAM3  Litestream v0.3.13 (default: .testenv/litestream-0.3.13/bin/litestream)
#   LITESTREAM5  Litestream v0.5.17 (default: .testenv/litestream-0.5.17/bin/litestream)
#
# The .testenv peers are installed by `scripts/test.sh --install-only` (Python venvs from PyPI).
# Functions print the path on stdout or exit with a message on stderr.

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/services.sh
. "$BENCH_ROOT/scripts/services.sh"  # WS_LITESTREAM3, WS_LITESTREAM5 (with the LITESTREAM3/5 overrides)

bench_die() {
    echo "bench: $*" >&2
    exit 1
}

# bench_peer VAR VERSION PATH: checks the binary PATH (named by $VAR or the install layout) and
# its version.
bench_peer() {
    local var=$1 want=$2 bin=$3
    [[ -x $bin ]] || bench_die "Litestream $want not found at $bin (set $var, or run scripts/test.sh --install-only)"
    local got
    got=$("$bin" version 2>/dev/null) || bench_die "$bin version failed"
    [[ ${got#v} == "${want#v}"* ]] || bench_die "$bin is Litestream $got, $var must be $want"
    echo "$bin"
}

bench_litestream3() { bench_peer LITESTREAM3 "v$WS_LITESTREAM3_VERSION" "$WS_LITESTREAM3"; }
bench_litestream5() { bench_peer LITESTREAM5 "v$WS_LITESTREAM5_VERSION" "$WS_LITESTREAM5"; }

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

# bench_int NAME VALUE MIN: VALUE must be a whole number >= MIN (else one line naming NAME).
bench_int() {
    [[ $2 =~ ^[0-9]+$ ]] && (($2 >= $3)) || bench_die "$1 must be a whole number >= $3, got '$2'"
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

# bench_source_db DB MIB: writes a WAL-mode database of about MIB MiB (~1000-byte rows, half
# random, half text, so LZ4 has real work to do); prints its row count.
bench_source_db() {
    python3 - "$1" "$2" <<'PY'
import os, sqlite3, sys
path, mb = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(path)
c.execute("PRAGMA page_size=4096")
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
row = lambda i: os.urandom(500) + (b"%010d-" % i) * 45
batch, i = 10000, 0
while os.path.getsize(path) + os.path.getsize(path + "-wal") < mb << 20:
    c.executemany("INSERT INTO t(v) VALUES (?)", [(row(i + k),) for k in range(batch)])
    c.commit()
    i += batch
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(i)
PY
}

# bench_updates DB MIB ROWS PACE_MS: about MIB transactions of ~1 MiB of WAL each (1000
# consecutive rows rewritten), PACE_MS apart so the replicator cuts them into many files (this
# shapes the workload; it is not a readiness wait).
bench_updates() {
    python3 - "$@" <<'PY'
import random, sqlite3, sys, time
path, mb, rows, pace = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) / 1000
c = sqlite3.connect(path, timeout=30)
for n in range(mb):
    start = random.randrange(1, max(2, rows - 1000))
    c.execute("UPDATE t SET v = randomblob(500) || substr(v, 501) WHERE id BETWEEN ? AND ?",
              (start, start + 999))
    c.commit()
    time.sleep(pace)
PY
}

# bench_replicate BIN CONFIG LIMIT_S WHAT READY_CMD...: starts `BIN replicate -config CONFIG`
# (log in $work/litestream.log, pid in $ls_pid) and polls READY_CMD until it succeeds; a
# replicator that exits, or LIMIT_S seconds without WHAT, ends the bench with its log.
bench_replicate() {
    local bin=$1 config=$2 limit=$3 what=$4
    shift 4
    "$bin" replicate -config "$config" >"$work/litestream.log" 2>&1 &
    ls_pid=$!
    local deadline=$((SECONDS + limit))
    until "$@"; do
        if ! kill -0 "$ls_pid" 2>/dev/null; then
            cat "$work/litestream.log" >&2
            bench_die "$bin replicate exited before $what (its log is above)"
        fi
        ((SECONDS < deadline)) || { cat "$work/litestream.log" >&2; bench_die "no $what after $limit s"; }
        sleep 0.5
    done
}

# bench_stop_replicator: SIGTERM to $ls_pid (its final sync), then waits for it.
bench_stop_replicator() {
    log "stopping Litestream (final sync)"
    kill -TERM "$ls_pid"
    wait "$ls_pid" || true
    ls_pid=""
}

# bench_measure NAME OUT CMD...: runs CMD under GNU time after a `sync` (so no run pays for the
# previous one's writeback); prints "NAME <wall> s <MB/s> MB/s <peak RSS> MiB <user+sys> cpu-s".
bench_measure() {
    local name=$1 out=$2
    shift 2
    [[ -x /usr/bin/time ]] || bench_die "/usr/bin/time (GNU time) is required"
    rm -f "$out" "$out".tmp*
    sync
    /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/run.log" 2>&1 || { cat "$work/run.log" >&2; bench_die "$name failed (its output is above)"; }
    local secs rss size cpu
    cpu=$(awk -F': ' '/User time|System time/ {c += $2} END {print c}' "$work/time.txt")
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$work/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$work/time.txt")
    size=$(stat -c %s "$out")
    awk -v n="$name" -v s="$secs" -v b="$size" -v r="$rss" -v c="$cpu" \
        'BEGIN { if (s <= 0) s = 0.01; printf "%-32s %8.2f s %9.1f MB/s %7d MiB %7.2f cpu-s\n", n, s, b / 1e6 / s, r, c }'
}

# bench_pick best|median RESULTS: one line per variant of RESULTS (lines of bench_measure), the
# fastest run or the median one (the lower middle for an even count).
bench_pick() {
    awk -v how="$1" '{ key = substr($0, 1, 32); split(substr($0, 33), f, " ");
           n[key]++; t[key, n[key]] = f[1] + 0; line[key, n[key]] = $0 }
         END { for (k in n) {
                 for (i = 1; i <= n[k]; i++) o[i] = i;
                 for (i = 2; i <= n[k]; i++) for (j = i; j > 1 && t[k, o[j]] < t[k, o[j-1]]; j--) {
                     x = o[j]; o[j] = o[j-1]; o[j-1] = x }
                 print line[k, (how == "best") ? o[1] : o[int((n[k] + 1) / 2)]] } }' "$2" | sort
}

# bench_restore_setup SCRIPT PEER WORK_PREFIX ARGS...: what both restore benches do first: their
# options (bench_restore_args), walstream and the peer (litestream3|litestream5) into $walstream
# and $litestream, GNU time, the work directory, $db and the S3 keys Litestream reads.
bench_restore_setup() {
    local script=$1 peer=$2 prefix=$3
    shift 3
    bench_restore_args "$script" "$@"
    walstream=$(bench_walstream)
    litestream=$(bench_"$peer")
    [[ -x /usr/bin/time ]] || bench_die "/usr/bin/time (GNU time) is required"
    bench_work_dir "$prefix"
    db=$work/app.db
    export LITESTREAM_ACCESS_KEY_ID=bench-key LITESTREAM_SECRET_ACCESS_KEY=bench-secret
}

# bench_common_arg SCRIPT ARGS...: the options every bench with a work directory takes, at the
# head of ARGS: --keep (sets keep=1), --dir DIR (sets work), -h/--help (SCRIPT's header comment);
# anything else is an error. Sets shift_by to the number of words used.
bench_common_arg() {
    local script=$1
    shift
    shift_by=1
    case "$1" in
        --keep) keep=1 ;;
        --dir) work=$2; shift_by=2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$script" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
}

# bench_restore_args SCRIPT ARGS...: the restore benches' options (see their --help) into db_mb
# (default 1024), wal_mb (256), runs (the caller's default, else 2), pace_ms (100), backend
# (file|s3; --s3 = --backend s3), keep and work. Every number is checked.
bench_restore_args() {
    local script=$1
    shift
    db_mb=1024 wal_mb=256 runs=${runs:-2} pace_ms=100 backend=file keep=0 work=""
    while (($#)); do
        case "$1" in
            --db-mb) db_mb=$2; shift ;;
            --wal-mb) wal_mb=$2; shift ;;
            --runs) runs=$2; shift ;;
            --pace-ms) pace_ms=$2; shift ;;
            --s3) backend=s3 ;;
            --backend)
                case "${2:-}" in
                    s3 | file) backend=$2 ;;
                    *) echo "--backend must be file or s3" >&2; exit 2 ;;
                esac
                shift ;;
            *) bench_common_arg "$script" "$@"; shift $((shift_by - 1)) ;;
        esac
        shift
    done
    bench_int --db-mb "$db_mb" 1
    bench_int --wal-mb "$wal_mb" 0
    bench_int --runs "$runs" 1
    bench_int --pace-ms "$pace_ms" 0
}
