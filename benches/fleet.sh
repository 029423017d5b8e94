#!/usr/bin/env bash
# benches/fleet.sh — many databases in ONE replicator process: walstream vs Litestream v0.3.13 and
# v0.5.17, side by side in one run (run by hand, not in CI).
#
# Usage: benches/fleet.sh [--n N]... [--tools LIST] [--idle-seconds S] [--idle-minutes M]
#                         [--attach-timeout S] [--settle-seconds S] [--no-baseline] [--layout L]
#                         [--lag] [--lag-dbs N] [--lag-rate R] [--lag-seconds S]
#                         [--json FILE] [--dir DIR] [--keep]
#   --n N             fleet size; repeat for several (default: 200, or none with --lag)
#   --tools LIST      comma list of walstream,litestream3,litestream5 (default: all three, but
#                     walstream,litestream5 for N >= 5000)
#   --idle-seconds S  idle window for CPU, requests and replica-file changes (default 40)
#   --idle-minutes M  lengthen the window to M minutes for the request/file counts (CPU is still
#                     reported over the first --idle-seconds)
#   --attach-timeout S  give up waiting for the initial snapshots after S s (default 240); the
#                     row then says how many databases attached and is measured anyway
#   --settle-seconds S  pause between "all snapshots in the replica" and the idle window (default
#                     15: walstream lists each replica's restore points once, up to 10 s after a
#                     new snapshot, to show storage's own times in /api/v1/status and
#                     walstream_replica_oldest_restore_point_timestamp_seconds; that listing
#                     belongs to the initial snapshot, not to the idle database)
#   --no-baseline     skip the N=1 run per tool (used for the per-database RSS and fd figures)
#   --layout L        flat (default): all databases in one directory, as a multi-tenant app keeps
#                     them; nested: each in its own directory (a tool that watches each
#                     database's directory then gets no events for the other databases)
#   --lag             also run the lag mode: --lag-rate commits/s (default 100), each to a random
#                     one of --lag-dbs databases (default 1000), for --lag-seconds (default 30)
#   --json FILE       raw numbers (default: fleet-<time>.json in the work dir)
#   --dir DIR         work directory (default: a new one under ${TMPDIR:-/tmp}); --keep keeps it
#   Binaries: WALSTREAM, LITESTREAM3, LITESTREAM5 (see benches/lib.sh).
#
# What each figure measures:
#   * databases: N small WAL-mode databases (one table, 5 rows) (see --layout), each with
#     its own file:// replica folder, default intervals, one config file, one process.
#   * time to attach all: process start until every database's initial snapshot is in its replica,
#     found by polling the replica folders every 0.5 s (walstream and v0.3:
#     generations/*/snapshots/*.snapshot.lz4; v0.5: any .ltx in ltx/0 or ltx/9).
#   * CPU while idle: utime+stime (/proc/<pid>/stat) over the idle window, which starts
#     --settle-seconds after the last initial snapshot; scaled to 40 s.
#   * peak RSS: VmHWM at the end of the idle window (covers attach too). RSS/db over N=1:
#     (VmHWM(N) − VmHWM(1)) / N. threads: Threads; open fds: entries of /proc/<pid>/fd, both at the
#     end of the idle window; fds/db over N=1 likewise.
#   * storage requests while idle (/metrics, scraped before and after the window):
#     walstream_storage_ops = walstream_replica_storage_operations_total (every successful storage
#     call, file replicas included); litestream_ops = litestream_replica_operation_total, which
#     Litestream (and walstream, to match it) only counts for object-store replica types, so it is
#     0 or absent for file replicas. "n/a" = the tool does not export the family.
#   * replica files while idle: files under the replica folders created (+), removed (−) and
#     changed in size or mtime (~) between the start and end of the window — a tool-independent
#     count of writes; reads and listings leave no trace there.
#   * lag: a commit is replicated when the object holding its WAL bytes appears in its replica
#     (walstream/v0.3: the <index>_<offset>.wal.lz4 segment starting before the commit's WAL end,
#     as in benches/replicate.sh; v0.5: the level-0 .ltx whose header WALOffset..+WALSize holds
#     it). Appearances are timestamped from inotify on every database's upload folder. Checkpoints
#     are turned off in the lag configs so WAL offsets stay valid; sync-interval 1s.
# Also printed: the fd limit the script set, inotify limits, load average during each window.
# Everything is time-bounded; every process started is stopped by pid on exit.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/benches/lib.sh"

args=()
tools="walstream,litestream3,litestream5"
work=""
json=""
keep=0
lag=0
while (($#)); do
    case "$1" in
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        --tools) tools=$2; args+=("$1" "$2"); shift ;;
        --n | --idle-seconds | --idle-minutes | --attach-timeout | --settle-seconds | --lag-dbs | \
            --lag-rate | --lag-seconds | --layout) args+=("$1" "$2"); shift ;;
        --no-baseline) args+=("$1") ;;
        --lag) lag=1; args+=("$1") ;;
        --json) json=$2; shift ;;
        --dir) work=$2; shift ;;
        --keep) keep=1; args+=("$1") ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

bins=()
IFS=, read -ra wanted <<<"$tools"
for t in "${wanted[@]}"; do
    case "$t" in
        walstream) bins+=(--bin "walstream=$(bench_walstream)") ;;
        litestream3) bins+=(--bin "litestream3=$(bench_litestream3)") ;;
        litestream5) bins+=(--bin "litestream5=$(bench_litestream5)") ;;
        *) echo "unknown tool: $t" >&2; exit 2 ;;
    esac
done

if [[ -z $work ]]; then work=$(mktemp -d "${TMPDIR:-/tmp}/walstream-fleet.XXXXXX"); fi
mkdir -p "$work"
json=${json:-$work/fleet-$(date +%Y%m%d-%H%M%S).json}
pidfile=$work/pids
: >"$pidfile"

# Every replicator the engine starts is listed in $pidfile; kill whatever is still alive by pid
# (only if it still runs one of our binaries, so a recycled pid is never hit).
cleanup() {
    local pid
    while read -r pid; do
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || continue
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF " replicate -config $work/"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done <"$pidfile"
    if ((keep)); then echo "kept $work" >&2; elif [[ $json == "$work"/* ]]; then
        find "$work" -mindepth 1 -maxdepth 1 ! -name "$(basename "$json")" -exec rm -rf {} +
    else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# As high as allowed: fs.nr_open when we may raise the hard limit (root), else the hard limit.
if ! ulimit -n "$(cat /proc/sys/fs/nr_open)" 2>/dev/null; then
    echo "fd limit: may not raise the hard limit to fs.nr_open=$(cat /proc/sys/fs/nr_open); using the hard limit"
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || echo "could not raise the fd limit" >&2
fi
echo "fd limit (ulimit -n) raised to $(ulimit -n) for this script and the replicators it starts;" \
    "a replicator reaching it shows open fds = the limit and fails to attach the rest"
for f in max_user_watches max_user_instances max_queued_events; do
    echo "inotify $f = $(cat /proc/sys/fs/inotify/$f) (not changed)"
done
echo "inotify instances open on this machine before the run (all visible processes; max_user_instances is per user): $(find /proc/[0-9]*/fd -lname 'anon_inode:inotify' 2>/dev/null | wc -l)"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
((lag)) && echo "lag mode: watches one folder per database with inotify (needs --lag-dbs watches)"

python3 "$root/benches/fleet_bench.py" "${args[@]}" "${bins[@]}" \
    --json "$json" --dir "$work" --pidfile "$pidfile"
