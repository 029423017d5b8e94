#!/usr/bin/env bash
# scripts/demo.sh — the README's first command: run `walstream replicate` on the built-in example
# config (config/local.yml: ./data/app.db → a local directory replica in ./data/replica) while a
# small demo writer commits a row every 200 ms, so a replica appears and grows.
#
# Must stay true: needs only cargo and python3 (for the demo writer's sqlite3 module); writes only
# under ./data; Ctrl-C (or SIGTERM) stops the writer, then walstream does its final sync and exits.
#
# Usage: scripts/demo.sh [SECONDS]   (default: run until interrupted)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

duration=${1:-0}
# WALSTREAM_BIN lets tests run this script against an already-built binary.
bin=${WALSTREAM_BIN:-}
if [[ -z $bin ]]; then
    cargo build --release --locked --quiet
    bin=./target/release/walstream
fi
mkdir -p data

python3 - data/app.db <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=wal")
db.execute("PRAGMA busy_timeout=5000")
db.execute("CREATE TABLE IF NOT EXISTS demo (id INTEGER PRIMARY KEY, at TEXT, note TEXT)")
while True:
    db.execute("INSERT INTO demo (at, note) VALUES (datetime('now'), 'hello from the demo writer')")
    time.sleep(0.2)
PY
writer=$!

"$bin" replicate -config config/local.yml &
ws=$!

stop() {
    kill "$writer" 2>/dev/null || true
    kill -TERM "$ws" 2>/dev/null || true
    wait "$ws" 2>/dev/null || true
    wait "$writer" 2>/dev/null || true
    echo "replica files under data/replica:"
    find data/replica -type f 2>/dev/null | sort | tail -n 5
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $duration -gt 0 ]]; then
    sleep "$duration"
else
    wait "$ws"
fi
