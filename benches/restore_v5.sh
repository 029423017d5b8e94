#!/usr/bin/env bash
# benches/restore_v5.sh — restore speed and memory of walstream vs Litestream v0.5.17 on an LTX
# replica written by v0.5.17 (default) or by walstream (`--writer walstream`).
#
# Run by hand (not in CI). Builds a WAL-mode database of --db-mb MiB, lets the real Litestream
# v0.5.17 (or `walstream replicate` with `layout: ltx`, same config file) replicate it to one
# replica (--backend file or s3; v0.5 allows one replica per database) with short compaction
# levels (L1 10 s, L2 30 s) and a snapshot at start, then writes about --wal-mb MiB of updates
# paced by --pace-ms so the replica gets many L0 files and compacted L1/L2 files on top of the
# L9 snapshot (a day of traffic compressed into minutes). It stops the writer and restores the latest
# point with both tools, in alternation, --runs times each: wall-clock seconds, MB/s, peak RSS
# (`/usr/bin/time -v`) and user+system CPU seconds. Every run starts after a `sync`. walstream
# runs with its default `-integrity-check full`; Litestream with its default (none). Restored
# files are compared byte for byte. The summary gives best and median per variant.
#
# Usage:
#   benches/restore_v5.sh [--db-mb N] [--wal-mb N] [--pace-ms N] [--runs N] [--backend file|s3]
#                         [--keep] [--dir DIR]
#     --db-mb N    database size before replication starts (default 1024)
#     --wal-mb N   approximate volume of updates written while replicating (default 256)
#     --pace-ms N  pause between the ~1 MiB update transactions (default 100)
#     --runs N     restores per tool (default 3)
#     --backend s3 replicate to moto instead of a directory (run as
#                  `scripts/test.sh -- benches/restore_v5.sh --backend s3`)
#     --writer W   litestream (default) or walstream: which tool writes the replica
#   Environment: WALSTREAM and LITESTREAM5 (see benches/lib.sh).
#
# Must stay true: both tools restore the same replica to the same point in the same run; nothing
# this script starts outlives it (Litestream is stopped by PID on exit).
set -euo pipefail

runs=3  # default restores per tool
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/benches/lib.sh"
writer=litestream
rest=()
while (($#)); do
    case "$1" in
        --writer)
            case "${2:-}" in
                litestream | walstream) writer=$2 ;;
                *) echo "--writer must be litestream or walstream" >&2; exit 2 ;;
            esac
            shift ;;
        *) rest+=("$1") ;;
    esac
    shift
done
bench_restore_setup "$0" litestream5 walstream-bench5 "${rest[@]}"
unset AWS_CA_BUNDLE  # v0.5.17 refuses to build its S3 client with it set

# --- 1. the database ---------------------------------------------------------------------------
log "writing a ${db_mb} MiB database"
rows=$(bench_source_db "$db" "$db_mb")

# --- 2. the replica, written by Litestream v0.5.17 or walstream ---------------------------------
if [[ $backend == s3 ]]; then
    : "${WALSTREAM_TEST_S3_ENDPOINT:?--backend s3 needs WALSTREAM_TEST_S3_ENDPOINT (run under scripts/test.sh --)}"
    bucket=${WALSTREAM_TEST_BUCKET:-walstream-test}
    prefix="bench5-$(date +%s%N)"
    replica="      - type: s3
        bucket: $bucket
        path: $prefix
        endpoint: $WALSTREAM_TEST_S3_ENDPOINT
        region: us-east-1
        force-path-style: true"
    snapshot_ready() { "$litestream" ltx -config "$work/litestream.yml" -level 9 "$db" 2>/dev/null | grep -q '^9 '; }
else
    replica="      - type: file
        path: $work/replica"
    snapshot_ready() { compgen -G "$work/replica/ltx/9/*.ltx" >/dev/null; }
fi
cat >"$work/litestream.yml" <<EOF2
levels:
  - interval: 10s
  - interval: 30s
l0-retention: 1h
dbs:
  - path: $db
    replicas:
$replica
EOF2

if [[ $writer == walstream ]]; then
    # The same file; `layout: ltx` makes walstream write LTX for a `replicas:` item (v0.5.17
    # ignores the key).
    sed -i 's/^      - type: \(.*\)$/      - type: \1\n        layout: ltx/' "$work/litestream.yml"
    writer_bin=$walstream
else
    writer_bin=$litestream
fi
log "replicating with $writer (snapshot, then ~${wal_mb} MiB of updates)"
bench_replicate "$writer_bin" "$work/litestream.yml" 900 "snapshot" snapshot_ready
bench_updates "$db" "$wal_mb" "$rows" "$pace_ms"
bench_stop_replicator

if [[ $backend == s3 ]]; then
    src=(-config "$work/litestream.yml" "$db")
else
    src=("file://$work/replica")
fi
"$walstream" ltx -level all "${src[@]}" >"$work/ltx.txt"
db_bytes=$(stat -c %s "$db")
per_level=$(awk 'NR > 1 { n[$1]++; s[$1] += $4 } END { for (l in n) printf "L%s: %d files %d MiB; ", l, n[l], s[l] / 1048576 }' "$work/ltx.txt")
plan_files=$("$walstream" restore -dry-run -json -o "$work/plan.db" "${src[@]}" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["files"]))')
log "replica: $per_level restore plan: $plan_files files; database $((db_bytes >> 20)) MiB"

# --- 3. restores ---------------------------------------------------------------------------------

results=$work/results.txt
: >"$results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "restoring (each tool $runs times, alternating; load average $load_before)"
for ((i = 1; i <= runs; i++)); do
    bench_measure "litestream $backend" "$work/lt.db" "$litestream" restore -o "$work/lt.db" "${src[@]}" | tee -a "$results"
    bench_measure "walstream $backend (full check)" "$work/ws.db" "$walstream" restore -o "$work/ws.db" "${src[@]}" | tee -a "$results"
    cmp "$work/lt.db" "$work/ws.db" || bench_die "restored files differ"
done

echo
echo "replica written by $writer; database $((db_bytes >> 20)) MiB; replica $per_level restore plan $plan_files files; restored files identical"
for how in best median; do
    echo "$how of $runs:"
    bench_pick "$how" "$results"
    bench_pick "$how" "$results" | awk -v how="$how" '{ key = substr($0, 1, 32); split(substr($0, 33), f, " "); t[key] = f[1]; m[key] = f[5] }
         END { for (k in t) if (k ~ "^litestream") { lt = t[k]; lm = m[k] } else { wt = t[k]; wm = m[k] }
               if (lt && wt) printf "litestream/walstream (%s): time %.2fx, peak RSS %.2fx\n", how, lt / wt, lm / wm }'
done
echo "load average before the restores: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
