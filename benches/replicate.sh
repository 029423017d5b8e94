#!/usr/bin/env bash
# benches/replicate.sh — replication benchmark, walstream vs Litestream v0.3.13, or with
# BENCH_FORMAT=ltx walstream's LTX writer vs Litestream v0.5.17 (run by hand).
#
# Measures, on a file:// replica, in the same run and on the same machine:
#   * commit-to-replica lag p50/p99 at 50 and 500 commits/s, with sync-interval 1s and 10ms;
#   * CPU seconds (user+sys) and peak RSS of the replicator during each of those runs;
#   * peak RSS while the replicator takes the initial snapshot of a 1 GiB database.
#
# Lag of a commit = time its WAL segment file appeared in the replica − time the commit returned.
# A watcher polls the replica's wal/ directory every 1 ms and records when each
# `<index>_<offset>.wal.lz4` appears; the segment starting at offset o_k holds the commits whose
# WAL end lies in (o_k, o_{k+1}]. With BENCH_FORMAT=ltx (both tools get the same v0.5 config:
# singular `replica:`) it watches `ltx/0/` instead and reads each new L0 file's header: the WAL
# salts, offset and size it covers; a commit is replicated when an L0 of its WAL cycle covers
# its end. Checkpoints are disabled during lag runs so the whole run stays
# in WAL index 0 (offsets in the real WAL = offsets in the replica). monitor-interval is set equal
# to sync-interval for both tools (Litestream only notices changes on its monitor tick).
#
# Usage:  benches/replicate.sh [SECONDS_PER_RUN] [SNAPSHOT_DB_MIB]
#         (defaults 20 and 1024; SNAPSHOT_DB_MIB=0 skips the snapshot runs). BENCH_RATES="50 500"
#         and BENCH_INTERVALS="1s 10ms" select the lag runs. Needs: cargo, python3.
#         Binaries: WALSTREAM, LITESTREAM3 or (ltx) LITESTREAM5 (see benches/lib.sh; default:
#         this checkout's release build and .testenv's v0.3.13 / v0.5.17 installs).
#         BENCH_CPU_ONLY=1 measures CPU and peak RSS only, over exactly the writing window (no
#         lag, no wait for the last upload), so runs can be long enough to count many clock ticks.
#         Whatever stops a run (a replicator that exits, a time-out, a bad setting) is one
#         `bench: …` line on stderr and exit 1; a run too short to measure says so in its row.
# Output: a Markdown table on stdout; work files under $BENCH_DIR (default a fresh temp dir).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_RUN="${1:-20}"
SNAPSHOT_MIB="${2:-1024}"
BENCH_DIR="${BENCH_DIR:-$(mktemp -d /tmp/walstream-bench.XXXXXX)}"

. "$ROOT/benches/lib.sh"
[[ $SECONDS_PER_RUN =~ ^[0-9]+([.][0-9]+)?$ ]] && [[ $SECONDS_PER_RUN != 0 && $SECONDS_PER_RUN != 0.0 ]] ||
    bench_die "SECONDS_PER_RUN must be a positive number of seconds, got '$SECONDS_PER_RUN'"
bench_int SNAPSHOT_DB_MIB "$SNAPSHOT_MIB" 0
BENCH_FORMAT="${BENCH_FORMAT:-v0.3}"
case $BENCH_FORMAT in
    v0.3) LITESTREAM=$(bench_litestream3) ;;
    ltx) LITESTREAM=$(bench_litestream5) ;;
    *) bench_die "BENCH_FORMAT must be v0.3 or ltx, got '$BENCH_FORMAT'" ;;
esac
export BENCH_FORMAT
WALSTREAM=$(bench_walstream)

echo "bench dir: $BENCH_DIR" >&2
export BENCH_RATES="${BENCH_RATES:-50 500}" BENCH_INTERVALS="${BENCH_INTERVALS:-1s 10ms}"
exec python3 - "$WALSTREAM" "$LITESTREAM" "$BENCH_DIR" "$SECONDS_PER_RUN" "$SNAPSHOT_MIB" <<'PY'
import os, re, signal, sqlite3, subprocess, sys, threading, time

WALSTREAM, LITESTREAM, BENCH_DIR, SECS, SNAP_MIB = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
MIN_SAMPLES = 100  # fewer matched commits than this make p99 a guess: the table says so
SEG = re.compile(r"^([0-9a-f]{8})_([0-9a-f]{8})\.wal\.lz4$")
LTX = os.environ["BENCH_FORMAT"] == "ltx"
CPU_ONLY = os.environ.get("BENCH_CPU_ONLY") == "1"
L0 = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$")
DEADLINE = 120.0

class BenchError(Exception):
    """Something the bench cannot measure through; printed as one line."""

def alive(p, tool, work):
    if p.poll() is not None:
        raise BenchError(f"{tool} exited with {p.returncode}; its log: {os.path.join(work, tool + '.log')}")

def proc_stats(pid):
    """(cpu seconds user+sys, peak RSS MiB) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return cpu, hwm

def write_config(work, db, replica, interval, checkpoints=False):
    if LTX:
        # v0.5.17's keys only: no max-checkpoint-page-count; truncate-page-n 0 turns off its
        # forced TRUNCATE.
        ckpt = "" if checkpoints else (
            "    checkpoint-interval: 0s\n    min-checkpoint-page-count: 100000000\n"
            "    truncate-page-n: 0\n")
    else:
        ckpt = "" if checkpoints else (
            "    checkpoint-interval: 0s\n    min-checkpoint-page-count: 100000000\n"
            "    max-checkpoint-page-count: 0\n")
    cfg = os.path.join(work, "config.yml")
    with open(cfg, "w") as f:
        f.write(f"dbs:\n  - path: {db}\n    monitor-interval: {interval}\n{ckpt}")
        if LTX:
            f.write(f"    replica:\n      url: file://{replica}\n      sync-interval: {interval}\n")
        else:
            f.write(f"    replicas:\n      - url: file://{replica}\n        sync-interval: {interval}\n")
    return cfg

def ltx_header(path):
    """(salts, WAL offset, WAL size) of an LTX file, or None while it is incomplete."""
    try:
        with open(path, "rb") as f:
            h = f.read(72)
    except OSError:
        return None
    if len(h) < 72 or h[:4] != b"LTX1":
        return None
    off, size = int.from_bytes(h[48:56], "big"), int.from_bytes(h[56:64], "big")
    return (h[64:72], off, size)

def wal_salts(db):
    with open(db + "-wal", "rb") as f:
        return f.read(24)[16:24]

def start(tool, cfg, work):
    bin_ = WALSTREAM if tool == "walstream" else LITESTREAM
    log = open(os.path.join(work, f"{tool}.log"), "w")
    return subprocess.Popen([bin_, "replicate", "-config", cfg], stdout=log, stderr=log)

def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=DEADLINE)

def wait_for(what, cond, check=lambda: None):
    t0 = time.monotonic()
    while not cond():
        check()
        if time.monotonic() - t0 > DEADLINE:
            raise BenchError(f"timed out after {DEADLINE:g} s waiting for {what}")
        time.sleep(0.005)

def generation_dir(replica):
    gens = os.path.join(replica, "generations")
    names = os.listdir(gens) if os.path.isdir(gens) else []
    return os.path.join(gens, names[0]) if names else None

def lag_run(tool, rate, interval):
    work = os.path.join(BENCH_DIR, f"{tool}-{rate}-{interval}")
    os.makedirs(work)
    db, replica = os.path.join(work, "app.db"), os.path.join(work, "replica")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    p = start(tool, write_config(work, db, replica, interval), work)
    l0_dir = os.path.join(replica, "ltx", "0")
    if LTX:
        wait_for("first L0 file", lambda: os.path.isdir(l0_dir) and os.listdir(l0_dir),
                 lambda: alive(p, tool, work))
        wal_dir = l0_dir
    else:
        wait_for("first snapshot", lambda: generation_dir(replica) and
                 os.path.isdir(os.path.join(generation_dir(replica), "snapshots")) and
                 os.listdir(os.path.join(generation_dir(replica), "snapshots")),
                 lambda: alive(p, tool, work))
        wal_dir = os.path.join(generation_dir(replica), "wal")
    seen, stop_flag = {}, threading.Event()
    def watch():
        while not stop_flag.is_set():
            now = time.monotonic()
            for n in os.listdir(wal_dir) if os.path.isdir(wal_dir) else []:
                if n in seen:
                    continue
                if LTX:
                    if L0.match(n):
                        h = ltx_header(os.path.join(wal_dir, n))
                        if h is not None:  # else incomplete: read again next time
                            # (cycle salts, covered WAL end, seen); an L0 with no WAL range
                            # (a full image) covers nothing measurable.
                            seen[n] = (h[0], h[1] + h[2] if h[1] else 0, now)
                    continue
                m = SEG.match(n)
                if m:
                    seen[n] = (int(m.group(1), 16), int(m.group(2), 16), now)
            time.sleep(0.001)
    w = threading.Thread(target=watch); w.start()
    cpu0, _ = proc_stats(p.pid)
    commits, period, t_start = [], 1.0 / rate, time.monotonic()
    i = 0
    while time.monotonic() - t_start < SECS:
        target = t_start + i * period
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        conn.execute("INSERT INTO t(v) VALUES (randomblob(200))")
        commits.append((os.path.getsize(db + "-wal"), time.monotonic()))
        i += 1
    if CPU_ONLY:
        # CPU over exactly the writing window; no lag, so no wait for the last upload.
        cpu1, hwm = proc_stats(p.pid)
        stop(p); stop_flag.set(); w.join()
        return dict(tool=tool, rate=rate, interval=interval, commits=len(commits), segments=0,
                    matched=0, p50=None, p99=None, cpu=cpu1 - cpu0, rss=hwm)
    if not commits:
        stop(p); stop_flag.set(); w.join()
        return dict(tool=tool, rate=rate, interval=interval, commits=0, segments=0,
                    p50=None, p99=None, cpu=0.0, rss=0.0)
    final_end = commits[-1][0]
    cycle = wal_salts(db) if LTX else None
    # LTX: the last commit is uploaded once an L0 of this WAL cycle covers its end. v0.3: once a
    # segment starts at or after its end. Uncounted marker commits keep rounds coming until then.
    def caught_up():
        if LTX:
            return any(c == cycle and e >= final_end for c, e, _ in list(seen.values()))
        return any(o >= final_end for _, o, _ in list(seen.values()))
    t_wait = time.monotonic()
    while not caught_up():
        if time.monotonic() - t_wait > DEADLINE:
            raise BenchError(f"timed out after {DEADLINE:g} s waiting for {tool} to catch up")
        alive(p, tool, work)
        conn.execute("INSERT INTO t(v) VALUES (randomblob(10))")
        time.sleep(0.05)
    cpu1, hwm = proc_stats(p.pid)
    stop(p); stop_flag.set(); w.join()
    if LTX:
        files = sorted((t, e) for c, e, t in seen.values() if c == cycle and e > 0)
        lags = []
        for end, t_commit in commits:
            # The first L0 (in the order they appeared) whose range reaches this commit's end.
            owner = next((t for t, e in files if e >= end), None)
            if owner is not None:
                lags.append(max(0.0, owner - t_commit))
        lags.sort()
        pct = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] * 1000 if lags else None
        return dict(tool=tool, rate=rate, interval=interval, commits=len(commits),
                    segments=len(files), matched=len(lags), p50=pct(0.50), p99=pct(0.99),
                    cpu=cpu1 - cpu0, rss=hwm)
    segs = sorted(seen.values())
    # Offsets are those of the WAL cycle the commits went to: the newest index (walstream's first
    # snapshot restarts the WAL, so its measured cycle is index 1; Litestream's stays at 0).
    last_index = max((s[0] for s in segs), default=0)
    idx0 = [s for s in segs if s[0] == last_index]
    lags = []
    for end, t_commit in commits:
        # The segment holding this commit is the last one starting before its end.
        owner = None
        for _, off, t_seen in idx0:
            if off < end:
                owner = t_seen
            else:
                break
        if owner is not None:
            lags.append(max(0.0, owner - t_commit))
    lags.sort()
    # None when no commit could be matched to a segment (a run too short to measure).
    pct = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] * 1000 if lags else None
    return dict(tool=tool, rate=rate, interval=interval, commits=len(commits), segments=len(idx0),
                matched=len(lags), p50=pct(0.50), p99=pct(0.99), cpu=cpu1 - cpu0, rss=hwm)

def snapshot_run(tool):
    work = os.path.join(BENCH_DIR, f"{tool}-snapshot")
    os.makedirs(work)
    db, replica = os.path.join(work, "app.db"), os.path.join(work, "replica")
    src = os.path.join(BENCH_DIR, "snapshot-source.db")
    if not os.path.exists(src):
        c = sqlite3.connect(src, isolation_level=None)
        c.execute("PRAGMA journal_mode=wal")
        c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        for _ in range(SNAP_MIB // 64):
            c.execute("BEGIN")
            c.executemany("INSERT INTO t(v) VALUES (randomblob(65536))", [()] * 1024)
            c.execute("COMMIT")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
    subprocess.run(["cp", src, db], check=True)
    p = start(tool, write_config(work, db, replica, "1s", checkpoints=True), work)
    t0 = time.monotonic()
    def done():
        if LTX:
            d = os.path.join(replica, "ltx", "9")
            return os.path.isdir(d) and any(n.endswith(".ltx") for n in os.listdir(d))
        g = generation_dir(replica)
        d = g and os.path.join(g, "snapshots")
        return d and os.path.isdir(d) and any(n.endswith(".snapshot.lz4") for n in os.listdir(d))
    wait_for("snapshot", done, lambda: alive(p, tool, work))
    elapsed = time.monotonic() - t0
    cpu, hwm = proc_stats(p.pid)
    stop(p)
    return dict(tool=tool, secs=elapsed, cpu=cpu, rss=hwm, size=os.path.getsize(db) / 2**20)

def main():
    rows = []
    for rate in [int(r) for r in os.environ["BENCH_RATES"].split()]:
        for interval in os.environ["BENCH_INTERVALS"].split():
            for tool in ("walstream", "litestream"):
                r = lag_run(tool, rate, interval)
                print(f"  {r}", file=sys.stderr)
                rows.append(r)
    layout = "LTX, walstream vs Litestream v0.5.17" if LTX else "v0.3, walstream vs Litestream v0.3.13"
    print(f"\n### Commit-to-replica lag ({SECS:g} s per run, file:// replica, {layout})\n")
    unit = "L0 files" if LTX else "segments"
    print(f"| tool | commits/s | sync-interval | commits | {unit} | lag p50 (ms) | lag p99 (ms) | CPU s | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if CPU_ONLY:
            print(f"| {r['tool']} | {r['rate']} | {r['interval']} | {r['commits']} | - | - | - | "
                  f"{r['cpu']:.2f} | {r['rss']:.1f} |")
            continue
        if r["p50"] is None:
            print(f"| {r['tool']} | {r['rate']} | {r['interval']} | {r['commits']} | {r['segments']} | "
                  f"run too short: no commit matched to an uploaded segment, raise SECONDS_PER_RUN | | | |")
            continue
        p99 = f"{r['p99']:.1f}"
        if r["matched"] < MIN_SAMPLES:
            p99 += f" (only {r['matched']} samples, raise SECONDS_PER_RUN)"
        print(f"| {r['tool']} | {r['rate']} | {r['interval']} | {r['commits']} | {r['segments']} | "
              f"{r['p50']:.1f} | {p99} | {r['cpu']:.2f} | {r['rss']:.1f} |")
    if SNAP_MIB <= 0:
        return
    snaps = [snapshot_run(t) for t in ("walstream", "litestream")]
    print(f"\n### Initial snapshot of a {snaps[0]['size']:.0f} MiB database\n")
    print("| tool | time to snapshot (s) | CPU s | peak RSS (MiB) |")
    print("|---|---|---|---|")
    for s in snaps:
        print(f"| {s['tool']} | {s['secs']:.1f} | {s['cpu']:.2f} | {s['rss']:.1f} |")

try:
    main()
except (BenchError, OSError, sqlite3.Error, subprocess.SubprocessError, ValueError) as e:
    sys.exit(f"bench: {e}")
PY
