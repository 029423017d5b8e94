#!/usr/bin/env python3
"""benches/fleet_bench.py — the engine of benches/fleet.sh: many databases in one replicator process.

Owns: creating N small WAL-mode databases with one file:// replica folder each, running one
replicator (walstream, Litestream v0.3.13 or v0.5.17) over all of them, and measuring it from
/proc, its /metrics endpoint and the replica trees; plus the lag mode (commits spread at random
over many databases, commit-to-replica lag from inotify events on the replica folders).

What must stay true:
- every process it starts is recorded in the pid file given by fleet.sh (its trap kills leftovers)
  and is stopped by pid before the run returns, on success, error or signal;
- everything is bounded in time (attach timeout, idle window, catch-up deadline);
- each number says what it measures (see fleet.sh --help); nothing is invented when a tool does
  not expose a figure: it is reported as null / "n/a".
Run through benches/fleet.sh, which finds the binaries and raises the fd limit.
"""
import argparse
import ctypes
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")
SEG = re.compile(r"^([0-9a-f]{8})_([0-9a-f]{8})\.wal\.lz4$")
LTX = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$")
OP_FAMILIES = ("litestream_replica_operation_total", "walstream_replica_storage_operations_total")
STOP_TIMEOUT = 60.0


def log(msg):
    print(f"[fleet {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- /proc ----------------------------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of a live process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def status_fields(pid):
    """VmHWM and VmRSS (KiB) and Threads from /proc/<pid>/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "Threads"):
                out[key] = int(rest.split()[0])
    return out


def fd_counts(pid):
    """(open fds, inotify instances among them)."""
    fds = inotify = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        fds += 1
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}") == "anon_inode:inotify":
                inotify += 1
        except OSError:
            pass
    return fds, inotify


# --- processes ------------------------------------------------------------------------------------

class Replicator:
    """One replicator process, recorded in the pid file and stopped by pid."""

    def __init__(self, binary, config, logfile, pidfile):
        self.log = open(logfile, "w")
        self.proc = subprocess.Popen([binary, "replicate", "-config", config],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        with open(pidfile, "a") as f:
            f.write(f"{self.proc.pid}\n")
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log(f"pid {self.pid} ignored SIGTERM for {STOP_TIMEOUT:.0f} s, killing it")
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- databases and configs ------------------------------------------------------------------------

def make_template(path):
    """A small WAL-mode database: one table, a few rows, WAL checkpointed away."""
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=wal")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    c.executemany("INSERT INTO t(v) VALUES (?)", [(f"row {i}",) for i in range(5)])
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def make_fleet(work, n, layout="flat"):
    """N copies of the template under work/dbs: all in that one directory (flat) or each in its
    own subdirectory (nested); returns (db paths, replica dirs)."""
    dbs_dir, reps_dir = os.path.join(work, "dbs"), os.path.join(work, "replicas")
    os.makedirs(dbs_dir)
    os.makedirs(reps_dir)
    template = os.path.join(work, "template.db")
    make_template(template)
    dbs, reps = [], []
    for i in range(n):
        name = f"db-{i:05d}"
        db = os.path.join(dbs_dir, name + ".db")
        if layout == "nested":
            db = os.path.join(dbs_dir, name, name + ".db")
            os.mkdir(os.path.dirname(db))
        shutil.copyfile(template, db)
        dbs.append(db)
        reps.append(os.path.join(reps_dir, name))
    return dbs, reps


def write_config(path, tool, port, dbs, reps, lag):
    """Default intervals unless `lag`: then sync-interval 1s and no checkpoints (offsets stay valid)."""
    lines = [f"addr: 127.0.0.1:{port}", "dbs:"]
    for db, rep in zip(dbs, reps):
        lines.append(f"  - path: {db}")
        if lag:
            lines += ["    checkpoint-interval: 0s", "    min-checkpoint-page-count: 100000000"]
            lines.append("    truncate-page-n: 100000000" if tool == "litestream5"
                         else "    max-checkpoint-page-count: 0")
        if tool == "litestream5":
            lines += ["    replica:", f"      url: file://{rep}"]
            if lag:
                lines.append("      sync-interval: 1s")
        else:
            lines += ["    replicas:", f"      - url: file://{rep}"]
            if lag:
                lines.append("        sync-interval: 1s")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# --- replica trees --------------------------------------------------------------------------------

def has_initial_snapshot(tool, rep):
    """walstream / v0.3: a generations/*/snapshots/*.snapshot.lz4; v0.5: any .ltx at level 0 or 9."""
    try:
        if tool == "litestream5":
            for level in ("0", "9"):
                d = os.path.join(rep, "ltx", level)
                if os.path.isdir(d) and any(n.endswith(".ltx") for n in os.listdir(d)):
                    return True
            return False
        gens = os.path.join(rep, "generations")
        for g in os.listdir(gens):
            d = os.path.join(gens, g, "snapshots")
            if os.path.isdir(d) and any(n.endswith(".snapshot.lz4") for n in os.listdir(d)):
                return True
    except FileNotFoundError:
        pass
    return False


def tree_state(reps):
    """{path: (size, mtime_ns)} of every file under the replica folders."""
    state = {}
    for rep in reps:
        for root, _, files in os.walk(rep):
            for n in files:
                p = os.path.join(root, n)
                try:
                    st = os.stat(p)
                except FileNotFoundError:
                    continue
                state[p] = (st.st_size, st.st_mtime_ns)
    return state


def tree_delta(before, after):
    created = sum(1 for p in after if p not in before)
    removed = sum(1 for p in before if p not in after)
    modified = sum(1 for p, v in after.items() if p in before and before[p] != v)
    return dict(created=created, removed=removed, modified=modified,
                files_before=len(before), files_after=len(after))


# --- /metrics -------------------------------------------------------------------------------------

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape_ops(port):
    """{family: {"type/operation": total}} summed over databases; None if /metrics is unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
            text = r.read().decode()
    except OSError as e:
        log(f"metrics scrape failed: {e}")
        return None
    out = {f: {} for f in OP_FAMILIES}
    for line in text.splitlines():
        m = LINE.match(line)
        if not m or m.group(1) not in OP_FAMILIES:
            continue
        labels = dict(LABEL.findall(m.group(2) or ""))
        key = f"{labels.get('replica_type', labels.get('name', '?'))}/{labels.get('operation', '?')}"
        fam = out[m.group(1)]
        fam[key] = fam.get(key, 0.0) + float(m.group(3))
    return out


def ops_delta(a, b):
    if a is None or b is None:
        return None
    out = {}
    for fam in OP_FAMILIES:
        if not b[fam] and not a[fam]:
            out[fam] = None  # family not exported by this tool
            continue
        d = {k: b[fam].get(k, 0.0) - a[fam].get(k, 0.0) for k in set(a[fam]) | set(b[fam])}
        out[fam] = {k: int(v) for k, v in sorted(d.items()) if v}
    return out


# --- fleet run ------------------------------------------------------------------------------------

def wait_attached(tool, proc, reps, t_start, timeout, sample):
    """Polls the replica folders until every initial snapshot is there; returns (times, timed_out)."""
    pending = list(range(len(reps)))
    done_at = {}
    last_log = last_sample = time.monotonic()
    while pending:
        now = time.monotonic()
        if now - t_start > timeout or not proc.alive():
            return done_at, True
        still = []
        for i in pending:
            if has_initial_snapshot(tool, reps[i]):
                done_at[i] = time.monotonic() - t_start
            else:
                still.append(i)
        pending = still
        if now - last_sample > 2:
            sample()
            last_sample = now
        if now - last_log > 15:
            log(f"  {len(done_at)}/{len(reps)} initial snapshots after {now - t_start:.0f} s")
            last_log = now
        time.sleep(0.5)
    return done_at, False


def idle_window(proc, seconds, extra):
    """Sleeps through the idle window (checking the process); returns CPU at `seconds` and at end."""
    c0 = cpu_seconds(proc.pid)
    t0 = time.monotonic()
    cpu_at = {}
    for mark in (seconds, seconds + extra):
        while time.monotonic() - t0 < mark:
            if not proc.alive():
                raise RuntimeError("replicator exited during the idle window")
            time.sleep(min(1.0, max(0.0, mark - (time.monotonic() - t0))))
        cpu_at[mark] = cpu_seconds(proc.pid) - c0
    return cpu_at[seconds], cpu_at[seconds + extra], time.monotonic() - t0


def prepare(a, tool, name, n, lag):
    """The work dir `name` with N databases, their replica dirs and the tool's config on a free
    port: (work, dbs, replica dirs, port, config path)."""
    work = os.path.join(a.dir, name)
    dbs, reps = make_fleet(work, n, a.layout)
    port = free_port()
    cfg = os.path.join(work, "config.yml")
    write_config(cfg, tool, port, dbs, reps, lag=lag)
    return work, dbs, reps, port, cfg


def fleet_run(a, tool, n, idle, idle_extra):
    log(f"{tool} N={n}: creating {n} databases")
    work, dbs, reps, port, cfg = prepare(a, tool, f"{tool}-n{n}", n, lag=False)
    res = dict(tool=tool, n=n, layout=a.layout, port=port, work=work)
    peak = dict(threads=0, fds=0)
    t_start = time.monotonic()
    proc = Replicator(a.bins[tool], cfg, os.path.join(work, "replicator.log"), a.pidfile)

    def sample():
        if proc.alive():
            peak["threads"] = max(peak["threads"], status_fields(proc.pid).get("Threads", 0))
            peak["fds"] = max(peak["fds"], fd_counts(proc.pid)[0])

    try:
        done_at, timed_out = wait_attached(tool, proc, reps, t_start, a.attach_timeout, sample)
        res.update(attached=len(done_at), attach_timed_out=timed_out,
                   attach_seconds=max(done_at.values()) if done_at and not timed_out else None,
                   attach_median_seconds=sorted(done_at.values())[len(done_at) // 2] if done_at else None)
        if not proc.alive():
            res.update(error=f"replicator exited (rc {proc.proc.returncode}) before attaching all")
            log(f"{tool} N={n}: {res['error']}")
            return res
        log(f"{tool} N={n}: {len(done_at)}/{n} initial snapshots"
            + (f" (timed out at {a.attach_timeout:.0f} s)" if timed_out else
               f" after {res['attach_seconds']:.1f} s") + f"; settling {a.settle_seconds:.0f} s")
        time.sleep(a.settle_seconds)  # lets post-snapshot work finish; not a readiness wait
        ops0, tree0 = scrape_ops(port), tree_state(reps)
        load0 = os.getloadavg()[0]
        log(f"{tool} N={n}: idle window {idle:.0f} s" + (f" + {idle_extra:.0f} s" if idle_extra else ""))
        cpu, cpu_all, elapsed = idle_window(proc, idle, idle_extra)
        st = status_fields(proc.pid)
        fds, inotify = fd_counts(proc.pid)
        sample()
        load1 = os.getloadavg()[0]
        ops1, tree1 = scrape_ops(port), tree_state(reps)
        res.update(idle_seconds=idle, idle_total_seconds=elapsed,
                   cpu_idle_seconds=cpu, cpu_idle_per_40s=cpu * 40.0 / idle if idle else None,
                   cpu_idle_total_seconds=cpu_all,
                   vmhwm_kib=st.get("VmHWM"), vmrss_kib=st.get("VmRSS"), threads=st.get("Threads"),
                   fds=fds, inotify_instances=inotify, peak_threads=peak["threads"],
                   peak_fds=peak["fds"], loadavg_1m=[load0, load1],
                   storage_ops_idle=ops_delta(ops0, ops1), replica_tree_idle=tree_delta(tree0, tree1))
        return res
    finally:
        proc.stop()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


# --- lag mode -------------------------------------------------------------------------------------

class Inotify:
    """Minimal inotify via libc: file names created or moved into watched folders, timestamped."""
    IN_MOVED_TO, IN_CREATE, IN_CLOEXEC, IN_NONBLOCK = 0x80, 0x100, 0o2000000, 0o4000

    def __init__(self):
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(self.IN_CLOEXEC | self.IN_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.wd = {}

    def watch(self, path, key):
        wd = self.libc.inotify_add_watch(self.fd, path.encode(), self.IN_MOVED_TO | self.IN_CREATE)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self.wd[wd] = key

    def events(self, timeout):
        """[(key, name, monotonic time)] of events ready within timeout."""
        if not select.select([self.fd], [], [], timeout)[0]:
            return []
        now = time.monotonic()
        out = []
        try:
            buf = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return []
        i = 0
        while i < len(buf):
            wd, _, _, ln = struct.unpack_from("iIII", buf, i)
            name = buf[i + 16:i + 16 + ln].rstrip(b"\0").decode()
            out.append((self.wd.get(wd), name, now))
            i += 16 + ln
        return out

    def close(self):
        os.close(self.fd)


class WalEnd:
    """End offset of the last frame of the current WAL generation of one database.

    The -wal file's size is not that offset: after a checkpoint the next writer restarts the WAL
    at offset 32 without truncating the file. Frames of the current generation carry the salts of
    the WAL header, so the end is found by walking frames from the last known end while the salts
    match (from the start again when the header's salts changed).
    """

    def __init__(self, path):
        self.path, self.salts, self.end = path + "-wal", None, 32

    def __call__(self):
        with open(self.path, "rb") as f:
            hdr = f.read(32)
            page_size = struct.unpack_from(">I", hdr, 8)[0]
            salts = hdr[16:24]
            if salts != self.salts:
                self.salts, self.end = salts, 32
            while True:
                f.seek(self.end)
                fh = f.read(24)
                if len(fh) < 24 or fh[8:16] != salts:
                    return self.end
                self.end += 24 + page_size


def ltx_range(path):
    """(WALOffset, WALOffset + WALSize) from an LTX header (superfly/ltx v0.5 layout)."""
    with open(path, "rb") as f:
        h = f.read(72)
    off, size = struct.unpack_from(">qq", h, 48)
    return off, off + size


def upload_dir(tool, rep):
    """The folder where new WAL data lands: v0.3/walstream generations/<gen>/wal, v0.5 ltx/0."""
    if tool == "litestream5":
        return os.path.join(rep, "ltx", "0")
    gens = os.listdir(os.path.join(rep, "generations"))
    if len(gens) != 1:
        raise RuntimeError(f"{rep}: expected one generation, found {gens}")
    return os.path.join(rep, "generations", gens[0], "wal")


class Uploads:
    """Per database: WAL ranges of uploaded objects with the time each appeared."""

    def __init__(self, tool, dirs):
        self.tool, self.dirs = tool, dirs
        self.seen = [dict() for _ in dirs]  # name -> (start, end or None, time)
        self.lock = threading.Lock()

    def add(self, i, name, t):
        if self.tool == "litestream5":
            if not LTX.match(name):
                return
            try:
                start, end = ltx_range(os.path.join(self.dirs[i], name))
            except (OSError, struct.error):
                return  # gone (compacted) or not fully written: a later event or listing brings it
        else:
            m = SEG.match(name)
            if not m:
                return
            start, end = (int(m.group(1), 16), int(m.group(2), 16)), None
        with self.lock:
            self.seen[i].setdefault(name, (start, end, t))

    def covered(self, i, wal_end):
        """True once an object holding WAL bytes up to wal_end is known to be complete."""
        with self.lock:
            objs = list(self.seen[i].values())
        if self.tool == "litestream5":
            return any(s < wal_end <= e for s, e, _ in objs)
        idx = max((s[0] for s, _, _ in objs), default=None)
        return any(s[0] == idx and s[1] >= wal_end for s, _, _ in objs)

    def owner_time(self, i, wal_end, index):
        """When the object holding the commit ending at wal_end appeared (None if unknown)."""
        with self.lock:
            objs = sorted(self.seen[i].values(), key=lambda o: o[0])
        if self.tool == "litestream5":
            ts = [t for s, e, t in objs if s < wal_end <= e]
            return min(ts) if ts else None
        owner = None
        for (ix, off), _, t in objs:
            if ix == index and off < wal_end:
                owner = t
        return owner


def lag_run(a, tool):
    n, rate, secs = a.lag_dbs, a.lag_rate, a.lag_seconds
    log(f"{tool} lag: {n} databases, {rate:g} commits/s for {secs:g} s")
    work, dbs, reps, port, cfg = prepare(a, tool, f"{tool}-lag", n, lag=True)
    # Our inotify instance comes first: a replicator may take every instance the per-user limit
    # (fs.inotify.max_user_instances) leaves.
    ino, stop = Inotify(), threading.Event()
    conns = []
    t_start = time.monotonic()
    proc = Replicator(a.bins[tool], cfg, os.path.join(work, "replicator.log"), a.pidfile)
    try:
        done_at, timed_out = wait_attached(tool, proc, reps, t_start, a.attach_timeout, lambda: None)
        if timed_out:
            return dict(tool=tool, dbs=n, error=f"only {len(done_at)}/{n} attached")
        time.sleep(a.settle_seconds)  # lets post-snapshot uploads finish; not a readiness wait
        dirs = [upload_dir(tool, r) for r in reps]
        for d in dirs:
            os.makedirs(d, exist_ok=True)  # v0.5 creates ltx/0 with the first file; harmless otherwise
        up = Uploads(tool, dirs)
        for i, d in enumerate(dirs):
            ino.watch(d, i)
        for i, d in enumerate(dirs):  # objects already there (before the watch) count as old
            for name in os.listdir(d):
                up.add(i, name, 0.0)
        index = [max((s[0] for s, _, _ in up.seen[i].values()), default=0)
                 if tool != "litestream5" else None for i in range(n)]

        def watcher():
            while not stop.is_set():
                for i, name, t in ino.events(0.2):
                    if i is not None:
                        up.add(i, name, t)
        w = threading.Thread(target=watcher, daemon=True)
        w.start()
        for db in dbs:
            c = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
            c.execute("PRAGMA wal_autocheckpoint=0")
            conns.append(c)
        ends = [WalEnd(db) for db in dbs]
        rng = random.Random(1)
        commits = []  # (db, wal end, time)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        k = 0
        while time.monotonic() - t0 < secs:
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # paces the commit schedule
            i = rng.randrange(n)
            conns[i].execute("INSERT INTO t(v) VALUES (randomblob(100))")
            t = time.monotonic()
            commits.append((i, ends[i](), t))
            k += 1
        achieved = len(commits) / (time.monotonic() - t0)
        # Catch-up: uncounted marker commits keep upload rounds coming until every database's last
        # measured commit is known complete in its replica.
        last = {}
        for i, e, _ in commits:
            last[i] = e
        deadline = time.monotonic() + a.catchup_timeout
        while True:
            behind = [i for i, e in last.items() if not up.covered(i, e)]
            if not behind or time.monotonic() > deadline:
                break
            for i in behind:
                conns[i].execute("INSERT INTO t(v) VALUES ('marker')")
            time.sleep(1.0)  # one marker per database per second, like the commit load itself
        cpu = cpu_seconds(proc.pid) - cpu0
        st = status_fields(proc.pid)
        stop.set()
        w.join()
        lags, unmatched = [], 0
        for i, e, t in commits:
            ts = up.owner_time(i, e, index[i])
            if ts is None or ts < t:
                unmatched += 1
            else:
                lags.append(ts - t)
        lags.sort()
        pct = (lambda q: round(lags[min(len(lags) - 1, int(q * len(lags)))] * 1000, 1)) if lags else (lambda q: None)
        return dict(tool=tool, dbs=n, rate=rate, achieved_rate=round(achieved, 1), seconds=secs,
                    commits=len(commits), matched=len(lags), unmatched=unmatched,
                    not_caught_up=len(behind), layout=a.layout, p50_ms=pct(0.5), p99_ms=pct(0.99),
                    max_ms=pct(1.0), cpu_seconds=cpu, vmhwm_kib=st.get("VmHWM"))
    finally:
        stop.set()
        for c in conns:
            c.close()
        ino.close()
        proc.stop()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


# --- output ---------------------------------------------------------------------------------------

def fmt(v, spec="{:.2f}"):
    return "n/a" if v is None else spec.format(v)


def ops_cell(r):
    ops = r.get("storage_ops_idle")
    if ops is None:
        return "n/a (no /metrics)"
    parts = []
    for fam, short in ((OP_FAMILIES[1], "walstream_storage_ops"), (OP_FAMILIES[0], "litestream_ops")):
        if ops.get(fam) is not None:
            d = ops[fam]
            detail = ", ".join(f"{k.split('/')[-1]} {v}" for k, v in d.items())
            parts.append(f"{short} {sum(d.values())}" + (f" ({detail})" if detail else ""))
        else:
            parts.append(f"{short} n/a")
    return "; ".join(parts)


def print_fleet(runs, base, idle, layout):
    print(f"\n### Fleet: one process, N databases ({layout} directory layout), file:// replicas "
          f"(idle window {idle:g} s)\n")
    print("| databases | tool | attached | time to attach all (s) | CPU s while idle (per 40 s) "
          "| peak RSS (MiB) | RSS/db over N=1 (KiB) | threads | open fds | fds/db over N=1 "
          "| storage requests while idle (/metrics) | replica files while idle (+new −gone ~changed) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        if "error" in r and "cpu_idle_seconds" not in r:
            print(f"| {r['n']} | {r['tool']} | {r.get('attached', 0)}/{r['n']} | {r['error']} "
                  "| | | | | | | | |")
            continue
        b = base.get(r["tool"])
        per_db_rss = per_db_fd = None
        if b and r["n"] > 1 and b.get("vmhwm_kib") is not None:
            per_db_rss = (r["vmhwm_kib"] - b["vmhwm_kib"]) / r["n"]
            per_db_fd = (r["fds"] - b["fds"]) / r["n"]
        att = ("timed out" if r["attach_timed_out"] else fmt(r["attach_seconds"], "{:.1f}"))
        tr = r["replica_tree_idle"]
        print(f"| {r['n']} | {r['tool']} | {r['attached']}/{r['n']} | {att} "
              f"| {fmt(r['cpu_idle_per_40s'])}{' (attach incomplete: not idle)' if r['attach_timed_out'] else ''} "
              f"| {r['vmhwm_kib'] / 1024:.1f} "
              f"| {fmt(per_db_rss, '{:.1f}')} | {r['threads']} | {r['fds']} "
              f"| {fmt(per_db_fd, '{:.2f}')} | {ops_cell(r)} "
              f"| +{tr['created']} −{tr['removed']} ~{tr['modified']} |")


MIN_SAMPLES = 100  # fewer matched commits make p99 a guess: the table says so


def few(matched):
    return f" (only {matched} samples, raise --lag-seconds)" if matched < MIN_SAMPLES else ""


def print_lag(rows):
    print("\n### Commit-to-replica lag (random database per commit, sync-interval 1s, "
          f"default monitor-interval, checkpoints off, {rows[0].get('layout', '?')} layout)\n")
    print("| tool | databases | commits/s (achieved) | commits | matched | lag p50 (ms) "
          "| lag p99 (ms) | lag max (ms) | CPU s during run | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['tool']} | {r['dbs']} | {r['error']} | | | | | | | |")
            continue
        print(f"| {r['tool']} | {r['dbs']} | {r['rate']:g} ({r['achieved_rate']}) | {r['commits']} "
              f"| {r['matched']} | {fmt(r['p50_ms'], '{}')} | {fmt(r['p99_ms'], '{}')}{few(r['matched'])} "
              f"| {fmt(r['max_ms'], '{}')} | {r['cpu_seconds']:.2f} | {r['vmhwm_kib'] / 1024:.1f} |")


# --- main -----------------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description="see benches/fleet.sh --help")
    p.add_argument("--n", action="append", type=int, default=[])
    p.add_argument("--tools", default=None)
    p.add_argument("--idle-seconds", type=float, default=40.0)
    p.add_argument("--idle-minutes", type=float, default=0.0)
    p.add_argument("--settle-seconds", type=float, default=15.0)
    p.add_argument("--attach-timeout", type=float, default=240.0)
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--layout", choices=("flat", "nested"), default="flat")
    p.add_argument("--lag", action="store_true")
    p.add_argument("--lag-dbs", type=int, default=1000)
    p.add_argument("--lag-rate", type=float, default=100.0)
    p.add_argument("--lag-seconds", type=float, default=30.0)
    p.add_argument("--catchup-timeout", type=float, default=60.0)
    p.add_argument("--json", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--pidfile", required=True)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--bin", action="append", default=[], help="tool=path")
    a = p.parse_args()
    a.bins = dict(b.split("=", 1) for b in a.bin)
    check_settings(a)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = a.n or ([] if a.lag else [200])
    idle_extra = max(0.0, a.idle_minutes * 60 - a.idle_seconds)
    out = dict(started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), binaries=a.bins, layout=a.layout,
               idle_seconds=a.idle_seconds, idle_extra_seconds=idle_extra, baseline={}, fleet=[], lag=[])

    def tools_for(n):
        if a.tools:
            return a.tools.split(",")
        return ["walstream", "litestream5"] if n >= 5000 else ["walstream", "litestream3", "litestream5"]

    def save():
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)

    try:
        for n in sizes:
            for tool in tools_for(n):
                if n > 1 and not a.no_baseline and tool not in out["baseline"]:
                    out["baseline"][tool] = fleet_run(a, tool, 1, min(a.idle_seconds, 10.0), 0.0)
                    save()
                out["fleet"].append(fleet_run(a, tool, n, a.idle_seconds, idle_extra))
                save()
        if a.lag:
            for tool in (a.tools.split(",") if a.tools else ["walstream", "litestream3", "litestream5"]):
                out["lag"].append(lag_run(a, tool))
                save()
    finally:
        save()
        if out["fleet"]:
            print_fleet(out["fleet"], out["baseline"], a.idle_seconds, a.layout)
        if out["lag"]:
            print_lag(out["lag"])
        print(f"\nraw numbers: {a.json}")


class BadSetting(Exception):
    """An argument the bench cannot run with."""


def check_settings(a):
    """One line per impossible setting instead of a failure deep inside a run."""
    if any(n < 1 for n in a.n):
        raise BadSetting(f"--n must be at least 1, got {a.n}")
    for name in ("idle_seconds", "attach_timeout", "lag_rate", "lag_seconds", "catchup_timeout"):
        if getattr(a, name) <= 0:
            raise BadSetting(f"--{name.replace('_', '-')} must be positive, got {getattr(a, name)}")
    if a.lag and a.lag_dbs < 1:
        raise BadSetting(f"--lag-dbs must be at least 1, got {a.lag_dbs}")
    unknown = [t for t in (a.tools or "").split(",") if t and t not in a.bins]
    if unknown:
        raise BadSetting(f"no binary given for {unknown} (run through benches/fleet.sh)")


if __name__ == "__main__":
    try:
        main()
    except (BadSetting, OSError, RuntimeError, sqlite3.Error, subprocess.SubprocessError) as e:
        sys.exit(f"fleet bench: {e}")
