#!/usr/bin/env bash
# scripts/demo.sh — the README's first command: run `walstream replicate` on the built-in example
# config (config/local.yml: ./data/app.db → a local directory replica in ./data/replica) while a
# small demo writer commits a row every 200 ms, so a replica appears and grows; the HTTP server
# runs on loopback and the script prints the admin page's address (with a token for its backup
# and restore buttons) and, at the end, the command that restores what the demo wrote.
#
# Must stay true: needs only cargo and python3 (for the demo writer's sqlite3 module); writes only
# under ./data (the demo's config with its address and token is ./data/demo.yml); the HTTP server
# listens on 127.0.0.1 only; Ctrl-C (or SIGTERM) stops the writer, then walstream does its final
# sync and exits.
#
# Usage: scripts/demo.sh [SECONDS]   (default: run until interrupted)
#   DEMO_PORT=N   the admin page's port (default 9090, or a free port when 9090 is taken)
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

# The example config plus the HTTP server on loopback and a token for the page's buttons.
port=${DEMO_PORT:-$(python3 - <<'PY'
import socket
s = socket.socket()
try:
    s.bind(("127.0.0.1", 9090))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
)}
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
{
    printf 'addr: "127.0.0.1:%s"\nhttp-token: "%s"\n' "$port" "$token"
    cat config/local.yml
} >data/demo.yml

"$bin" replicate -config data/demo.yml &
ws=$!

page="http://127.0.0.1:$port/"
for _ in $(seq 100); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "healthz", timeout=1)' "$page" 2>/dev/null; then
        echo "admin page: $page  (token for its backup and restore buttons: $token)"
        break
    fi
    kill -0 "$ws" 2>/dev/null || break
    sleep 0.1
done

stop() {
    kill "$writer" 2>/dev/null || true
    kill -TERM "$ws" 2>/dev/null || true
    wait "$ws" 2>/dev/null || true
    wait "$writer" 2>/dev/null || true
    echo "replica files under data/replica:"
    find data/replica -type f 2>/dev/null | sort | tail -n 5
    echo "restore what the demo wrote: $bin restore -config config/local.yml -o /tmp/demo-restored.db ./data/app.db"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $duration -gt 0 ]]; then
    sleep "$duration"
else
    wait "$ws"
fi
