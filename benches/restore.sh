#!/usr/bin/env bash
# benches/restore.sh — restore speed of walstream vs Litestream v0.3.13 on the same replica.
#
# Run by hand (not in CI). Builds a WAL-mode database of --db-mb MiB, lets the real Litestream
# v0.3.13 replicate it (one snapshot) and then about --wal-mb MiB of WAL written by updates
# (Litestream's default checkpointing cuts that into many indexes and segments), stops Litestream,
# then restores the latest point with both tools, in alternation, --runs times each, measuring
# wall-clock seconds, MB/s (restored database bytes per second), peak RSS (`/usr/bin/time -v`) and
# user+system CPU seconds (less sensitive to a loaded machine than wall time; the load average is
# printed with the results). Every run starts after a `sync`, so no tool pays for the previous
# run's writeback; the summary gives the best and the median run of each variant, since the
# disk and page cache make single runs noisy. Restored files are compared byte for byte.
# walstream is measured with its default `-integrity-check full` and with `-integrity-check none`
# (Litestream checks nothing).
#
# Usage:
#   benches/restore.sh [--db-mb N] [--wal-mb N] [--pace-ms N] [--runs N] [--s3] [--keep] [--dir DIR]
#     --db-mb N   size of the database before replication starts (default 1024)
#     --wal-mb N  approximate WAL volume written while replicating (default 256)
#     --pace-ms N pause between the ~1 MiB update transactions (default 100), so Litestream's 1 s
#                 sync loop cuts the WAL into many segments and checkpoints into many indexes
#     --runs N    restores per tool and variant (default 2)
#     --s3        also benchmark an S3 replica on moto, written by the same Litestream run (needs
#                 WALSTREAM_TEST_S3_ENDPOINT and WALSTREAM_TEST_BUCKET: run as
#                 `scripts/test.sh -- benches/restore.sh --s3`)
#     --backend s3  the same as --s3 (--backend file, the default, benchmarks the file replica only)
#     --keep      keep the work directory
#     --dir DIR   work directory (default: a new one under ${TMPDIR:-/tmp})
#   Environment: WALSTREAM and LITESTREAM3 (see benches/lib.sh; default: this checkout's release
#   build and .testenv/litestream-0.3.13/bin/litestream, installed by scripts/test.sh --install-only).
#
# Must stay true: both tools restore the same replica to the same point in the same run; nothing
# this script starts outlives it (Litestream is stopped by PID on exit).
set -euo pipefail

runs=2  # default restores per tool
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/benches/lib.sh"
bench_restore_setup "$0" litestream3 walstream-bench "$@"

# --- 1. the database ---------------------------------------------------------------------------
log "writing a ${db_mb} MiB database"
rows=$(bench_source_db "$db" "$db_mb")

# --- 2. replicas written by Litestream ---------------------------------------------------------
replicas="      - name: file
        type: file
        path: $work/replica"
if [[ $backend == s3 ]]; then
    : "${WALSTREAM_TEST_S3_ENDPOINT:?--s3 needs WALSTREAM_TEST_S3_ENDPOINT (run under scripts/test.sh --)}"
    prefix="bench-$(date +%s%N)"
    replicas="$replicas
      - name: s3
        type: s3
        bucket: ${WALSTREAM_TEST_BUCKET:-walstream-test}
        path: $prefix
        endpoint: $WALSTREAM_TEST_S3_ENDPOINT
        region: us-east-1
        force-path-style: true"
fi
cat >"$work/litestream.yml" <<EOF
dbs:
  - path: $db
    replicas:
$replicas
EOF

log "replicating with Litestream (snapshot, then ~${wal_mb} MiB of WAL)"
snapshot_ready() { compgen -G "$work/replica/generations/*/snapshots/*.snapshot.lz4" >/dev/null; }
bench_replicate "$litestream" "$work/litestream.yml" 600 "snapshot" snapshot_ready
bench_updates "$db" "$wal_mb" "$rows" "$pace_ms"
bench_stop_replicator

db_bytes=$(stat -c %s "$db")
replica_bytes=$(du -sb "$work/replica" | cut -f1)
segments=$(find "$work/replica" -name '*.wal.lz4' | wc -l)
indexes=$(find "$work/replica" -name '*_00000000.wal.lz4' | wc -l)
log "replica: $((replica_bytes >> 20)) MiB stored, $segments segments in $indexes indexes; database $((db_bytes >> 20)) MiB"

# --- 3. restores ---------------------------------------------------------------------------------

results=$work/results.txt
: >"$results"
bench_source() {
    local label=$1
    shift
    local src=("$@")
    for ((i = 1; i <= runs; i++)); do
        bench_measure "litestream $label" "$work/lt.db" "$litestream" restore -o "$work/lt.db" "${src[@]}" | tee -a "$results"
        bench_measure "walstream $label (full check)" "$work/ws.db" "$walstream" restore -o "$work/ws.db" "${src[@]}" | tee -a "$results"
        cmp "$work/lt.db" "$work/ws.db" || bench_die "restored files differ ($label)"
        bench_measure "walstream $label (no check)" "$work/ws.db" "$walstream" restore -integrity-check none -o "$work/ws.db" "${src[@]}" | tee -a "$results"
        cmp "$work/lt.db" "$work/ws.db" || bench_die "restored files differ ($label)"
    done
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "restoring (each tool $runs times, alternating; load average $load_before)"
bench_source "file" "file://$work/replica"
if [[ $backend == s3 ]]; then
    bench_source "s3" -config "$work/litestream.yml" -replica s3 "$db"
fi

echo
echo "database $((db_bytes >> 20)) MiB, replica $((replica_bytes >> 20)) MiB stored ($segments segments, $indexes indexes); restored files identical"
# Lines are "%-32s <seconds> s <MB/s> MB/s <rss> MiB": the first 32 columns name the variant.
# bench_pick best|median: one line per variant, the fastest run or the median one (the lower middle
# for an even count). The disk and the page cache make single runs noisy; both are reported.
for how in best median; do
    echo "$how of $runs:"
    bench_pick "$how" "$results"
    for label in file s3; do
        bench_pick "$how" "$results" | awk -v l="$label" -v how="$how" '{ key = substr($0, 1, 32); split(substr($0, 33), f, " "); t[key] = f[1] }
             END { for (k in t) if (k ~ "^litestream " l " ") lt = t[k];
                   for (k in t) if (k ~ "^walstream " l " \\(full") wf = t[k]; else if (k ~ "^walstream " l " \\(no") wn = t[k];
                   if (lt && wf && wn) printf "litestream/walstream time ratio (%s, %s): %.2fx with full check, %.2fx without\n", l, how, lt / wf, lt / wn }'
    done
done
echo "load average before the restores: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
