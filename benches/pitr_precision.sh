#!/usr/bin/env bash
# benches/pitr_precision.sh — point-in-time precision of the LTX (Litestream v0.5) replicas walstream
# writes: how far before T the state `restore -timestamp T` returns is, per level, measured.
#
# Run by hand (not in CI). A writer commits --rate rows a second for --duration seconds (each row
# holds its sequence number and the wall time taken just before its commit, so a restored database
# tells which commit it ends at) into a WAL-mode database that `walstream replicate` copies to a file
# replica, using Litestream v0.5's config shape (singular `replica:`) with short levels: L1 5 s,
# L2 30 s, L3 2 m, `l0-retention` 20 s, `snapshot.interval` 1 m, `snapshot.retention` 1 h (nothing
# of the run expires), `sync-interval` 1 s. After the writer stops (and walstream's final sync),
# the replica's files are listed with `walstream ltx -level all -json` and --probes times T spread
# over its whole window (seeded jitter, microsecond precision) are restored with
# `walstream restore -timestamp T`, and every --lt-every-th also with `litestream restore` v0.5.17,
# which must end at the same commit.
#
# v0.5's retention never leaves a time covered by L2 or L3 alone (L0 files go only once in L1; the
# snapshot retention floor removes every compacted level below the same TXID), so the replica as
# written has an L0 band (its newest seconds) and an L1 band (everything older). To measure the
# coarser levels too, the same probes run against copies of the replica holding only the oldest
# snapshot plus L2 ("L2 only"), the oldest snapshot plus L3 ("L3 only"), and only the L9 snapshots
# ("L9 only"): what a restore gets where nothing finer is left.
#
# Each probe's band (from the listing; the stamps' sub-second part from the files' mtimes, where
# the file backend stores them, since the listing prints whole seconds) is the level whose files
# are the restore points around T: the finest level of a file stamped before T that ends at the
# restored TXID and of the first file stamped at or after T that would restore further, the
# coarser of the two (a snapshot only where both are snapshots). Reported per replica and band:
# the lag T − (commit time of the last row restored), median, p90, max and count, against the
# expected bound (the level's interval; the sync interval for L0; the snapshot interval for L9).
# The lag can pass the bound by up to about one sync interval: a compaction at a boundary merges
# the files already stored, so an L0 captured just before the boundary but uploaded after it
# goes into the next file, which then spans interval + sync. The script exits non-zero if
# any restore returns a commit made after T (overshoot), if a restored TXID is not the newest one
# reachable from the files stamped before T (coarsening beyond the retained files, computed
# independently here from the listing), or if Litestream ends at another commit.
#
# Usage:
#   benches/pitr_precision.sh [--duration S] [--rate N] [--probes N] [--lt-every N] [--keep] [--dir DIR]
#     --duration S  seconds the writer commits (default 300)
#     --rate N      commits per second (default 20)
#     --probes N    timestamps restored per replica view (default 200)
#     --lt-every N  also restore every Nth probe with Litestream v0.5.17 (default 10; 0 = never)
#     --keep        keep the work directory
#     --dir DIR     work directory (default: a new one under ${TMPDIR:-/tmp})
#   Environment: WALSTREAM and LITESTREAM5 (see benches/lib.sh).
#
# Must stay true: every restore compared is of the same replica files; nothing this script starts
# outlives it (the replicator and the writer are stopped by PID on exit).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/benches/lib.sh"
duration=300 rate=20 probes=200 lt_every=10 keep=0 work=""
while (($#)); do
    case "$1" in
        --duration) duration=${2:-}; shift ;;
        --rate) rate=${2:-}; shift ;;
        --probes) probes=${2:-}; shift ;;
        --lt-every) lt_every=${2:-}; shift ;;
        *) bench_common_arg "$0" "$@"; shift $((shift_by - 1)) ;;
    esac
    shift
done
bench_int --duration "$duration" 10
bench_int --rate "$rate" 1
bench_int --probes "$probes" 1
bench_int --lt-every "$lt_every" 0
walstream=$(bench_walstream)
litestream=$(bench_litestream5)
bench_work_dir walstream-pitr
writer_pid=""
pitr_cleanup() {
    if [[ -n $writer_pid ]] && kill -0 "$writer_pid" 2>/dev/null; then kill "$writer_pid"; wait "$writer_pid" || true; fi
    bench_cleanup
}
trap pitr_cleanup EXIT
db=$work/app.db

# --- 1. the database, the writer, the replicator -------------------------------------------------
python3 - "$db" <<'PY'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE c(seq INTEGER PRIMARY KEY, t REAL NOT NULL)")
c.execute("INSERT INTO c(seq, t) VALUES (0, ?)", (time.time(),))
c.commit()
PY
cat >"$work/walstream.yml" <<EOF
levels:
  - interval: 5s
  - interval: 30s
  - interval: 2m
snapshot:
  interval: 1m
  retention: 1h
l0-retention: 20s
dbs:
  - path: $db
    replica:
      type: file
      path: $work/replica
      sync-interval: 1s
EOF

log "writing $rate commits/s for $duration s while walstream replicates (levels 5s/30s/2m, snapshots every 1m)"
# The writer starts first, so the first snapshot already holds commits; it paces itself by the
# clock (commit k at start + k/rate), and the time in each row is taken just before its commit.
python3 - "$db" "$duration" "$rate" <<'PY' &
import sqlite3, sys, time
path, duration, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
c = sqlite3.connect(path, timeout=30)
start = time.time()
seq = 0
while True:
    due = start + seq / rate
    if due - start >= duration:
        break
    pause = due - time.time()
    if pause > 0:
        time.sleep(pause)
    seq += 1
    c.execute("INSERT INTO c(seq, t) VALUES (?, ?)", (seq, time.time()))
    c.commit()
PY
writer_pid=$!
snapshot_ready() { compgen -G "$work/replica/ltx/9/*.ltx" >/dev/null; }
bench_replicate "$walstream" "$work/walstream.yml" 60 "snapshot" snapshot_ready
wait "$writer_pid" || bench_die "the writer failed"
writer_pid=""
log "writer done; stopping walstream (final sync)"
kill -TERM "$ls_pid"
wait "$ls_pid" || true
ls_pid=""
"$walstream" ltx -level all -json "file://$work/replica" >"$work/ltx.json"

# --- 2. probes -----------------------------------------------------------------------------------
log "probing $probes timestamps per replica view (Litestream v0.5.17 on every ${lt_every}th)"
python3 - "$walstream" "$litestream" "$work" "$probes" "$lt_every" "$rate" <<'PY'
import datetime, json, os, random, shutil, sqlite3, subprocess, sys

ws, lt, work, probes, lt_every, rate = sys.argv[1:7]
probes, lt_every, rate = int(probes), int(lt_every), int(rate)
replica = os.path.join(work, "replica")
INTERVAL = {0: 1, 1: 5, 2: 30, 3: 120, 9: 60}  # sync, levels, snapshot: seconds (the config above)

def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(1)

# The listing, with each file's stamp to the nanosecond from its mtime.
files = []
for row in json.load(open(os.path.join(work, "ltx.json"))):
    level, lo, hi = row["level"], row["min_txid"], row["max_txid"]
    path = os.path.join(replica, "ltx", str(level), f"{lo}-{hi}.ltx")
    ns = os.stat(path).st_mtime_ns
    listed = datetime.datetime.strptime(row["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    if int(listed.timestamp()) != ns // 10**9:
        die(f"{path}: listed at {row['timestamp']} but its mtime is {ns} ns")
    files.append({"level": level, "min": int(lo, 16), "max": int(hi, 16), "ns": ns, "path": path})
if not any(f["level"] == 9 for f in files):
    die("the replica has no snapshot")
count = {l: sum(1 for f in files if f["level"] == l) for l in sorted({f["level"] for f in files})}
print("replica as written: " + ", ".join(f"L{l} {n} files" for l, n in count.items()), file=sys.stderr)

oldest_snap = min((f for f in files if f["level"] == 9), key=lambda f: f["ns"])
views = [("as written", files)]
for name, keep in (("L2 only", {2}), ("L3 only", {3}), ("L9 only", {9})):
    sel = [f for f in files if f["level"] in keep or f is oldest_snap]
    if any(f["level"] != 9 for f in sel) or keep == {9}:
        views.append((name, sel))

def reachable(view, t_ns):
    """Newest TXID any chain of files stamped before T reaches (the newest such snapshot, then any
    file that extends it), computed apart from walstream's planner."""
    ok = [f for f in view if f["ns"] < t_ns]
    cur = max((f["max"] for f in ok if f["level"] == 9), default=0)
    while True:
        nxt = max((f["max"] for f in ok if f["level"] != 9 and f["min"] <= cur + 1 < f["max"] + 1), default=cur)
        if nxt == cur:
            return cur
        cur = nxt

def band(view, t_ns, txid):
    """The level whose restore points are the ones around T: the finest level of a file stamped
    before T ending at the state T restores to (the previous restore point) and the finest level
    of the files stamped at the first later time that restores further (the next one), the
    coarser of the two; a snapshot counts only when the other side is a snapshot too (or
    missing). None when nothing is restorable at T."""
    if not txid:
        return None
    prev = min(f["level"] for f in view if f["ns"] < t_ns and f["max"] == txid)
    nxt = None
    for s in sorted({f["ns"] for f in view if f["ns"] >= t_ns}):
        if reachable(view, s + 1) > txid:
            nxt = min(f["level"] for f in view if f["ns"] == s)
            break
    sides = [x for x in (prev, nxt) if x is not None]
    compacted = [x for x in sides if x != 9]
    return max(compacted) if compacted else 9

def rfc3339(ns):
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    d = epoch + datetime.timedelta(seconds=ns // 10**9, microseconds=ns % 10**9 // 1000)
    return d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

def last_commit(path):
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return c.execute("SELECT seq, t FROM c ORDER BY seq DESC LIMIT 1").fetchone()
    finally:
        c.close()

def restore(cmd, out):
    for p in (out, out + "-wal", out + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    return subprocess.run(cmd, capture_output=True, text=True)

rng = random.Random(16)
csv = open(os.path.join(work, "probes.csv"), "w")
csv.write("view,T,T_ns,band,txid,seq,commit_time,lag\n")
results, failures, lt_checked = [], [], 0
for vi, (name, view) in enumerate(views):
    vdir = replica
    if name != "as written":
        vdir = os.path.join(work, "view-" + name.split()[0])
        for f in view:
            dst = os.path.join(vdir, os.path.relpath(f["path"], replica))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(f["path"], dst)  # keeps the mtime (the stamp) to the nanosecond
    url = "file://" + vdir
    # The window: all of the replica as written; in a copy, the span of the level it keeps (not
    # the seconds before that level's first file, where the base snapshot alone answers).
    own = [f["ns"] for f in view if f is not oldest_snap or name == "as written"] or [oldest_snap["ns"]]
    lo, hi = min(own), max(own)
    if hi <= lo:
        print(f"{name}: one restore point only (run longer for this view); skipped", file=sys.stderr)
        continue
    for i in range(probes):
        t_ns = lo + int((hi - lo) * (i + rng.uniform(0.01, 0.99)) / probes)
        ts = rfc3339(t_ns)
        t_ns = t_ns // 1000 * 1000
        out = os.path.join(work, "ws.db")
        r = restore([ws, "restore", "-timestamp", ts, "-json", "-o", out, url], out)
        want = reachable(view, t_ns)
        if r.returncode != 0:
            got_txid, got = 0, None
            if want != 0:
                failures.append(f"{name} T={ts}: walstream failed ({r.stderr.strip()}) but TXID {want:x} is reachable")
        else:
            got_txid = int(json.loads(r.stdout)["txid"], 16)
            got = last_commit(out)
            if got_txid != want:
                failures.append(f"{name} T={ts}: restored TXID {got_txid:x}, newest reachable from files stamped before T is {want:x}")
        lag = None
        if got is not None:
            lag = t_ns / 1e9 - got[1]
            if lag < 0:
                used = [os.path.relpath(f["path"], vdir) for f in view if f["ns"] < t_ns]
                failures.append(f"{name} T={ts}: OVERSHOOT, restored commit {got[0]} made at {got[1]:.6f}, after T (TXID {got_txid:x}; files stamped before T: {used[-3:]})")
        if lt_every and i % lt_every == 0:
            lt_checked += 1
            lout = os.path.join(work, "lt.db")
            lr = restore([lt, "restore", "-timestamp", ts, "-o", lout, url], lout)
            lt_got = last_commit(lout) if lr.returncode == 0 else None
            if (lt_got and lt_got[0]) != (got and got[0]):
                failures.append(f"{name} T={ts}: walstream ends at commit {got and got[0]}, litestream at {lt_got and lt_got[0]} ({lr.stderr.strip()[-200:]})")
        results.append((vi, band(view, t_ns, want), lag))
        csv.write(f"{name},{ts},{t_ns},{band(view, t_ns, want)},{got_txid:x},{got and got[0]},{got and got[1]},{lag}\n")

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, -(-len(xs) * p // 100) - 1))]

print()
print("| replica | finest level covering T | expected bound | probes | lag median | lag p90 | lag max | overshoots |")
print("|---|---|---|---|---|---|---|---|")
for vi, (name, _) in enumerate(views):
    for level in sorted({b for v, b, _ in results if v == vi}, key=lambda b: (b is None, b)):
        rows = [lag for v, b, lag in results if v == vi and b == level]
        lags = [x for x in rows if x is not None]
        what = "none" if level is None else f"L{level}"
        bound = "—" if level is None else f"{INTERVAL.get(level, '?')} s" + (" (sync interval)" if level == 0 else " (snapshot interval)" if level == 9 else " (level interval)")
        unrestorable = len(rows) - len(lags)
        n = f"{len(rows)}" + (f" ({unrestorable} not restorable)" if unrestorable else "")
        if lags:
            stats = f"{pct(lags, 50):.2f} s | {pct(lags, 90):.2f} s | {max(lags):.2f} s"
        else:
            stats = "— | — | —"
        print(f"| {name} | {what} | {bound} | {n} | {stats} | {sum(1 for x in lags if x < 0)} |")
print()
print(f"commit spacing {1 / rate:.3f} s; Litestream v0.5.17 restored {lt_checked} of the probes")
if failures:
    print(f"{len(failures)} FAILURES:", file=sys.stderr)
    for f in failures:
        print("  " + f, file=sys.stderr)
    sys.exit(1)
print("no overshoot; every restored TXID is the newest reachable from the files stamped before T; Litestream ended at the same commit on every probe it restored")
PY
