#!/usr/bin/env bash
# benches/soak.sh — soak run of `walstream replicate` (run by hand; not in CI).
#
# One database, one replica (a local directory, or the test S3 server with SOAK_S3=1), with
# periodic snapshots, retention and validation all running, while a Python writer commits
# SOAK_RATE transactions/s (small upserts, occasional range updates and deletes so the database
# stays bounded, and an occasional ~1 MiB transaction). Every SOAK_SAMPLE_SECONDS it samples
# walstream's RSS (VmRSS), open file descriptors (/proc/PID/fd), CPU seconds (utime+stime) and
# the writer's achieved commit count: one line per sample on stdout and a CSV ($work/soak.csv).
# At the end walstream gets SIGTERM (it must exit 0 after its final sync), `walstream restore`
# brings the latest point into a new file, which must pass `PRAGMA integrity_check` and hold the
# same rows as the source. Prints RSS and fd slopes (least squares, per hour, over the samples
# after the first 5 minutes), CPU seconds in total and per hour, and PASS or FAIL (exit 0 / 1).
#
# Usage:  benches/soak.sh [--keep] [--dir DIR]
#   SOAK_SECONDS          how long the writer runs (default 3600)
#   SOAK_RATE             commits per second (default 200)
#   SOAK_SAMPLE_SECONDS   sampling period (default 60)
#   SOAK_SNAPSHOT, SOAK_RETENTION, SOAK_VALIDATION
#                         snapshot-interval, retention and validation-interval (5m, 15m, 5m)
#   SOAK_S3=1             replica on S3: needs WALSTREAM_TEST_S3_ENDPOINT and WALSTREAM_TEST_BUCKET
#                         (run under `bash scripts/test.sh -- bash benches/soak.sh`); keys from
#                         SOAK_S3_ACCESS_KEY_ID / SOAK_S3_SECRET_ACCESS_KEY (default: the test keys)
#   WALSTREAM (or WALSTREAM_BIN)  binary to run as is (default: this checkout's release build)
# Needs: cargo (unless WALSTREAM is given), python3 (standard library only).
# Whatever stops the soak (walstream exiting, a bad setting, a failed restore) is said in one line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -z ${WALSTREAM:-} && -n ${WALSTREAM_BIN:-} ]] && WALSTREAM=$WALSTREAM_BIN
. "$ROOT/benches/lib.sh"

keep=0 work=""
while (($#)); do
    bench_common_arg "$0" "$@"
    shift "$shift_by"
done
soak_seconds=${SOAK_SECONDS:-3600} rate=${SOAK_RATE:-200} sample=${SOAK_SAMPLE_SECONDS:-60}
bench_int SOAK_SECONDS "$soak_seconds" 10
bench_int SOAK_RATE "$rate" 1
bench_int SOAK_SAMPLE_SECONDS "$sample" 1
snapshot=${SOAK_SNAPSHOT:-5m} retention=${SOAK_RETENTION:-15m} validation=${SOAK_VALIDATION:-5m}
for v in "$snapshot" "$retention" "$validation"; do
    [[ $v =~ ^[0-9]+(ms|s|m|h)$ ]] || bench_die "interval '$v' must look like 30s, 5m or 1h"
done

walstream=$(bench_walstream)
bench_work_dir walstream-soak
db=$work/soak.db
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

if [[ ${SOAK_S3:-0} == 1 ]]; then
    [[ -n ${WALSTREAM_TEST_S3_ENDPOINT:-} && -n ${WALSTREAM_TEST_BUCKET:-} ]] ||
        bench_die "SOAK_S3=1 needs WALSTREAM_TEST_S3_ENDPOINT and WALSTREAM_TEST_BUCKET (run under scripts/test.sh)"
    backend="s3 (bucket $WALSTREAM_TEST_BUCKET, prefix soak-$$-$EPOCHSECONDS)"
    replica="      - type: s3
        bucket: \"$WALSTREAM_TEST_BUCKET\"
        path: \"soak-$$-$EPOCHSECONDS\"
        endpoint: \"$WALSTREAM_TEST_S3_ENDPOINT\"
        region: us-east-1
        force-path-style: true
        access-key-id: \"${SOAK_S3_ACCESS_KEY_ID:-walstream-test-key}\"
        secret-access-key: \"${SOAK_S3_SECRET_ACCESS_KEY:-walstream-test-secret}\""
else
    backend="file ($work/replica)"
    replica="      - url: \"file://$work/replica\""
fi
cat >"$work/walstream.yml" <<EOF
addr: "127.0.0.1:$port"
dbs:
  - path: "$db"
    replicas:
$replica
        sync-interval: 1s
        snapshot-interval: $snapshot
        retention: $retention
        retention-check-interval: 1m
        validation-interval: $validation
EOF

log "walstream $walstream; replica $backend; work dir $work"
log "soak: ${soak_seconds}s at $rate commits/s, snapshots every $snapshot, retention $retention, validation every $validation"

# The writer creates the schema before walstream starts (walstream attaches an existing file).
python3 - "$db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA journal_mode=WAL")
c.executescript("""CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS big(id INTEGER PRIMARY KEY, data BLOB NOT NULL);""")
c.commit()
PY

ready() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "http://127.0.0.1:$port/readyz" 2>/dev/null; }
bench_replicate "$walstream" "$work/walstream.yml" 120 "/readyz answering 200" ready
pid=$ls_pid

# Writer and sampler: runs until SOAK_SECONDS have passed or walstream dies; prints the samples
# and the slopes, writes $work/soak.csv and $work/soak.result (key=value lines).
set +e
python3 - "$db" "$pid" "$soak_seconds" "$rate" "$sample" "$work" <<'PY'
import csv, os, random, sqlite3, sys, threading, time

DB, PID, SECS, RATE, SAMPLE, WORK = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
WARMUP = 300          # samples before this many seconds are left out of the slopes
ROWS = 20000          # key space of t: the database stays bounded
TICKS = os.sysconf("SC_CLK_TCK")

state = {"commits": 0, "big": 0, "error": None}
stop = threading.Event()

def writer():
    rnd = random.Random(1)
    try:
        c = sqlite3.connect(DB, timeout=30, isolation_level=None)
        c.execute("PRAGMA synchronous=NORMAL")
        start = time.monotonic()
        n = 0
        while not stop.is_set():
            c.execute("BEGIN IMMEDIATE")
            k = rnd.random()
            if n % 2000 == 1999:       # an occasional larger transaction: ~1 MiB
                c.execute("INSERT OR REPLACE INTO big(id, data) VALUES (?, randomblob(1048576))", (n // 2000 % 4,))
                state["big"] += 1
            elif k < 0.02:             # a range update
                lo = rnd.randrange(ROWS)
                c.execute("UPDATE t SET n = n + 1, v = v || 'u' WHERE id BETWEEN ? AND ? AND length(v) < 200", (lo, lo + 50))
            elif k < 0.04:             # a range delete
                lo = rnd.randrange(ROWS)
                c.execute("DELETE FROM t WHERE id BETWEEN ? AND ?", (lo, lo + 20))
            else:                      # a small row
                c.execute("INSERT OR REPLACE INTO t(id, v, n) VALUES (?, ?, ?)",
                          (rnd.randrange(ROWS), "%x" % rnd.getrandbits(200), n))
            c.execute("COMMIT")
            n += 1
            state["commits"] = n
            delay = start + n / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        c.close()
    except Exception as e:  # reported by the main thread
        state["error"] = f"writer: {e}"

def proc_sample():
    with open(f"/proc/{PID}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
    fds = len(os.listdir(f"/proc/{PID}/fd"))
    with open(f"/proc/{PID}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return rss, fds, (int(fields[11]) + int(fields[12])) / TICKS

def slope(points):
    """Least-squares slope of (seconds, value) per hour; None with fewer than two points."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return None if den == 0 else sum((x - mx) * (y - my) for x, y in points) / den * 3600

t = threading.Thread(target=writer, daemon=True)
t0 = time.monotonic()
t.start()
rows, problem = [], None
with open(os.path.join(WORK, "soak.csv"), "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["seconds", "rss_mib", "fds", "cpu_s", "commits"])
    print(f"{'seconds':>8} {'rss_mib':>8} {'fds':>5} {'cpu_s':>8} {'commits':>9} {'commits/s':>9}", flush=True)
    next_at = t0
    while True:
        try:
            rss, fds, cpu = proc_sample()
        except (OSError, StopIteration):
            problem = "walstream exited during the soak"
            break
        el = time.monotonic() - t0
        commits = state["commits"]
        rows.append((el, rss, fds, cpu, commits))
        out.writerow([f"{el:.0f}", f"{rss:.1f}", fds, f"{cpu:.2f}", commits])
        f.flush()
        print(f"{el:8.0f} {rss:8.1f} {fds:5d} {cpu:8.2f} {commits:9d} {commits / max(el, 1e-9):9.1f}", flush=True)
        if state["error"]:
            problem = state["error"]
            break
        if el >= SECS:
            break
        next_at += SAMPLE
        time.sleep(max(0.0, min(next_at, t0 + SECS) - time.monotonic()))
stop.set()
t.join(timeout=60)
if state["error"] and not problem:
    problem = state["error"]

late = [r for r in rows if r[0] >= WARMUP]
basis = "samples after the first 5 minutes"
if len(late) < 2:
    late, basis = rows, "all samples (run shorter than 5 minutes plus two samples)"
rss_slope = slope([(r[0], r[1]) for r in late])
fd_slope = slope([(r[0], r[2]) for r in late])
el, cpu, commits = rows[-1][0], rows[-1][3], rows[-1][4]
fmt = lambda v: "n/a" if v is None else f"{v:+.2f}"
with open(os.path.join(WORK, "soak.result"), "w") as f:
    f.write(f"problem={problem or ''}\n")
    f.write(f"summary=RSS {rows[0][1]:.1f} -> {rows[-1][1]:.1f} MiB (slope {fmt(rss_slope)} MiB/h); "
            f"fds {rows[0][2]} -> {rows[-1][2]} (slope {fmt(fd_slope)} /h); slopes over {len(late)} {basis}\n")
    f.write(f"cpu=CPU {cpu:.1f} s over {el:.0f} s ({cpu / max(el, 1e-9) * 3600:.0f} s per hour); "
            f"commits {commits} ({commits / max(el, 1e-9):.1f}/s, target {RATE}/s), large transactions {state['big']}\n")
    f.write(f"short={'1' if commits < 0.9 * RATE * min(el, SECS) else ''}\n")
sys.exit(1 if problem else 0)
PY
phase=$?
set -e
result() { sed -n "s/^$1=//p" "$work/soak.result" 2>/dev/null; }
fail=""
((phase == 0)) || fail="${fail}$(result problem); "
[[ -z $(result short) ]] || fail="${fail}the writer fell short of 90% of SOAK_RATE; "

log "stopping walstream (SIGTERM, final sync)"
if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    set +e
    wait "$pid"
    rc=$?
    set -e
    ls_pid=""
    ((rc == 0)) || fail="${fail}walstream exited $rc after SIGTERM (log: $work/litestream.log); "
else
    ls_pid=""
    fail="${fail}walstream was not running at the end; "
fi
errors=$(grep -c 'level=ERROR' "$work/litestream.log" || true)

log "restoring the latest point"
restored=$work/restored.db
if "$walstream" restore -config "$work/walstream.yml" -o "$restored" "$db" >"$work/restore.log" 2>&1; then
    check=$(python3 - "$db" "$restored" <<'PY'
import hashlib, sqlite3, sys
def digest(path):
    c = sqlite3.connect(path)
    ok = c.execute("PRAGMA integrity_check").fetchone()[0]
    h, n = hashlib.sha256(), 0
    for table in ("t", "big"):
        for row in c.execute(f"SELECT * FROM {table} ORDER BY id"):
            h.update(repr(row).encode())
            n += 1
    return ok, h.hexdigest(), n
src, got = digest(sys.argv[1]), digest(sys.argv[2])
if got[0] != "ok":
    print(f"restored integrity_check: {got[0]}")
elif src[1:] != got[1:]:
    print(f"restored rows differ from the source ({got[2]} rows vs {src[2]})")
else:
    print(f"ok: integrity ok, {src[2]} rows equal to the source")
PY
) || check="comparing the restore failed"
    [[ $check == ok:* ]] || fail="${fail}${check}; "
else
    check="walstream restore failed (log: $work/restore.log)"
    fail="${fail}${check}; "
fi

echo "soak: ${soak_seconds}s, replica $backend, snapshots $snapshot, retention $retention, validation $validation"
echo "soak: $(result summary)"
echo "soak: $(result cpu)"
echo "soak: walstream log ERROR lines $errors; restore: $check"
if [[ -z $fail ]]; then
    echo "soak: PASS"
else
    echo "soak: FAIL: ${fail%; }"
    keep=1
    exit 1
fi
