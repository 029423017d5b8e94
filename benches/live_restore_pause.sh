#!/usr/bin/env bash
# benches/live_restore_pause.sh — how long the application's writers wait while walstream
# restores a backup INTO the running database (`POST …/backups/{id}/restore`).
#
# Run by hand (not in CI). For each size in --db-mb: a WAL-mode database of about that size
# (benches/lib.sh's rows), `walstream replicate` on it (file replica, 1 s sync interval, HTTP API
# with a token), a backup through the API, then --changed-pct percent of the rows rewritten (the
# work the restore undoes). An application writer then commits one small row every --every-ms
# ms (its own connection, busy_timeout 60 s) and times every commit, from 2 s before the restore
# request to 5 s after its answer (so walstream's checkpoint of the restore's WAL is included).
# Printed per size: the restore's wall time, the writer's longest commit, its p99, the time all
# commits over 100 ms waited in total, and `PRAGMA integrity_check` plus the row count of the
# restored database (it must hold the backup's rows and every commit the writer made).
#
# Usage:
#   benches/live_restore_pause.sh [--db-mb "100 1024"] [--changed-pct N] [--every-ms N]
#                                 [--dir DIR] [--keep]
#   Environment: WALSTREAM (benches/lib.sh) — e.g. an older build, to compare.
#
# Must stay true: nothing this script starts outlives it; every failure is one line on stderr.
set -euo pipefail

sizes="100 1024" changed_pct=1 every_ms=10 work="" keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --db-mb) sizes=$2; shift 2 ;;
        --changed-pct) changed_pct=$2; shift 2 ;;
        --every-ms) every_ms=$2; shift 2 ;;
        --dir) work=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        *) echo "bench: unknown argument $1" >&2; exit 2 ;;
    esac
done
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/benches/lib.sh"
for mb in $sizes; do bench_int --db-mb "$mb" 1; done
bench_int --changed-pct "$changed_pct" 0
((changed_pct <= 100)) || bench_die "--changed-pct must be at most 100"
bench_int --every-ms "$every_ms" 1
walstream=$(bench_walstream)
command -v curl >/dev/null || bench_die "curl is required"
bench_work_dir live-restore-pause
token=bench-token-$$
port=$((20000 + RANDOM % 20000))
api="http://127.0.0.1:$port/api/v1/databases/app.db"

call() { curl -fsS -H "Authorization: Bearer $token" "$@"; }

run_size() {
    local mb=$1 dir="$work/$1mb"
    rm -rf "$dir" && mkdir -p "$dir"
    log "${mb} MiB: writing the database"
    local rows
    rows=$(bench_source_db "$dir/app.db" "$mb")
    python3 - "$dir/app.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("CREATE TABLE w(id INTEGER PRIMARY KEY, at REAL)")
c.commit()
PY
    cat > "$dir/config.yml" <<EOF
addr: 127.0.0.1:$port
http-token: $token
dbs:
  - path: $dir/app.db
    backups:
      path: $dir/backups
    replicas:
      - path: $dir/replica
        sync-interval: 1s
EOF
    bench_replicate "$walstream" "$dir/config.yml" 300 "a ready API" \
        curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"
    local id
    id=$(call -X POST -H 'Content-Type: application/json' -d '{"name":"pause-bench"}' "$api/backups" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    log "${mb} MiB: backup $id taken; rewriting ${changed_pct}% of $rows rows"
    python3 - "$dir/app.db" "$rows" "$changed_pct" <<'PY'
import sqlite3, sys
path, rows, pct = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(path, timeout=60)
step = max(1, 100 // pct) if pct else 0
if step:
    for lo in range(1, rows + 1, 10000):
        c.execute("UPDATE t SET v = randomblob(500) || substr(v, 501) WHERE id BETWEEN ? AND ? AND id % ? = 0",
                  (lo, lo + 9999, step))
        c.commit()
PY
    # The writer: starts, commits for 2 s, then the restore request; it stops 5 s after the
    # restore answered (the marker file).
    python3 - "$dir/app.db" "$every_ms" "$dir/done" "$dir/latencies" <<'PY' &
import os, sqlite3, sys, time
path, every, done, out = sys.argv[1], int(sys.argv[2]) / 1000, sys.argv[3], sys.argv[4]
c = sqlite3.connect(path, timeout=60)
c.execute("PRAGMA busy_timeout=60000")
lat, stop_at = [], None
while stop_at is None or time.monotonic() < stop_at:
    t = time.monotonic()
    c.execute("INSERT INTO w(at) VALUES (?)", (time.time(),))
    c.commit()
    lat.append(time.monotonic() - t)
    if stop_at is None and os.path.exists(done):
        stop_at = time.monotonic() + 5
    time.sleep(every)
with open(out, "w") as f:
    f.write("\n".join(f"{x:.6f}" for x in lat))
PY
    local writer=$!
    sleep 2
    local t0 t1
    t0=$(date +%s.%N)
    call -X POST -H 'Content-Type: application/json' -d '{}' "$api/backups/$id/restore" >"$dir/restore.json" ||
        { kill "$writer"; bench_die "the restore request failed (log: $dir/../litestream.log)"; }
    t1=$(date +%s.%N)
    touch "$dir/done"
    wait "$writer" || bench_die "the writer failed"
    bench_stop_replicator
    python3 - "$dir/app.db" "$dir/latencies" "$mb" "$t0" "$t1" "$rows" <<'PY'
import sqlite3, sys
path, lat_file, mb, t0, t1, rows = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
lat = sorted(float(x) for x in open(lat_file).read().split())
c = sqlite3.connect(path)
ok = c.execute("PRAGMA integrity_check").fetchone()[0]
n = c.execute("SELECT count(*) FROM t").fetchone()[0]
w = c.execute("SELECT count(*) FROM w").fetchone()[0]
p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
slow = sum(x for x in lat if x > 0.1)
state = "ok" if ok == "ok" and n == rows else f"BAD: integrity {ok!r}, {n} of {rows} rows"
print(f"{mb:>5} MiB  restore {t1 - t0:6.2f} s  commits {len(lat):5}  longest {max(lat):6.3f} s  "
      f"p99 {p99:6.3f} s  waited >100ms {slow:6.2f} s  writer rows after {w:5}  {state}")
PY
}

echo "live restore pause: ${changed_pct}% of rows changed since the backup, a commit every ${every_ms} ms; $("$walstream" version); load $(cut -d' ' -f1-3 /proc/loadavg)"
for mb in $sizes; do run_size "$mb"; done
