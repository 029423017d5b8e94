#!/usr/bin/env bash
# benches/checkpoint_stall.sh — how long an application's own `PRAGMA wal_checkpoint(TRUNCATE)`
# waits while a replicator runs beside it: walstream and Litestream v0.3.13, one after the other,
# on the same workload.
#
# Run by hand (not in CI). For each tool: a fresh WAL-mode database with a file replica, the tool
# replicating it (1 s sync interval, its defaults otherwise), then the application loop --rounds
# times: commit --rows small rows, then `PRAGMA wal_checkpoint(TRUNCATE)` with busy_timeout
# --busy-ms, timing the call and noting whether it came back busy (the first column of its
# answer). Prints per tool: rounds, total and largest wait, busy answers, and whether the tool
# logged a new generation (a replicator that loses track of the WAL starts one).
#
# Usage:
#   benches/checkpoint_stall.sh [--rounds N] [--rows N] [--busy-ms N] [--dir DIR]
#   Environment: WALSTREAM and LITESTREAM3 (benches/lib.sh).
#
# Must stay true: nothing this script starts outlives it.
set -euo pipefail

rounds=20 rows=50 busy_ms=2000 dir=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --busy-ms) busy_ms=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        *) echo "bench: unknown argument $1" >&2; exit 2 ;;
    esac
done
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/benches/lib.sh"
bench_int --rounds "$rounds" 1
bench_int --rows "$rows" 1
bench_int --busy-ms "$busy_ms" 1
walstream=$(bench_walstream)
litestream=$(bench_litestream3)
dir=${dir:-$(mktemp -d "${TMPDIR:-/tmp}/checkpoint-stall.XXXXXX")}
pid=""
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT

run_tool() {
    local name=$1 bin=$2 work="$dir/$1"
    rm -rf "$work" && mkdir -p "$work"
    python3 - "$work/app.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA journal_mode=wal")
c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
c.commit()
PY
    printf 'dbs:\n  - path: %s\n    replicas:\n      - path: %s\n        sync-interval: 1s\n' \
        "$work/app.db" "$work/replica" > "$work/config.yml"
    "$bin" replicate -config "$work/config.yml" > "$work/replicate.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do [[ -d $work/replica/generations ]] && break; sleep 0.1; done
    [[ -d $work/replica/generations ]] || bench_die "$name did not start replicating (see $work/replicate.log)"
    python3 - "$work/app.db" "$rounds" "$rows" "$busy_ms" "$name" <<'PY'
import sqlite3, sys, time
db, rounds, rows, busy_ms, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
c = sqlite3.connect(db, timeout=busy_ms / 1000)
c.execute(f"PRAGMA busy_timeout={busy_ms}")
waits, busy = [], 0
for r in range(rounds):
    with c:
        c.executemany("INSERT INTO t(v) VALUES (?)", [("x" * 100,)] * rows)
    t = time.monotonic()
    answer = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    waits.append(time.monotonic() - t)
    busy += answer[0] != 0
print(f"{name:11} rounds {rounds:3}  waited {sum(waits):6.2f} s in all, {max(waits):5.2f} s at most  busy {busy:3}", end="")
PY
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
    local gens
    gens=$(grep -c "new generation\|new-generation\|starting new generation" "$work/replicate.log" || true)
    echo "  new generations logged: $gens"
}

echo "checkpoint stall: $rounds rounds of $rows rows + PRAGMA wal_checkpoint(TRUNCATE), busy_timeout ${busy_ms} ms; load $(cut -d' ' -f1-3 /proc/loadavg)"
run_tool walstream "$walstream"
run_tool litestream "$litestream"
