#!/usr/bin/env bash
# scripts/test.sh — THE project test command (README; .ci/run runs it with no arguments).
#
# Owns: the whole test run on a fresh clone: install the test tools into .testenv/ (idempotent)
# and the browser test's Chromium and playwright-core (scripts/install-browser.sh),
# start the storage servers (scripts/services.sh), then `cargo fmt --check`, `cargo clippy
# --all-targets -- -D warnings`, `cargo test --all-targets --no-fail-fast` and `cargo test --doc`,
# and stop every server on exit. Lint failures stop the run; test failures of both test steps are
# reported before it exits non-zero.
#
# Must stay true: with no arguments it runs everything CI needs and never skips a test; servers
# that do not come up fail the run (their log is printed); nothing it started outlives it.
#
# Usage:
#   scripts/test.sh                    full run (what CI does)
#   scripts/test.sh --no-lint          skip fmt, clippy and scripts/lint-deploy.sh
#   scripts/test.sh -- CMD [ARGS...]   start the servers, run CMD with the WALSTREAM_TEST_* exports
#                                      (e.g. scripts/test.sh -- cargo test --test storage)
#   scripts/test.sh --services-shell   start the servers, print the exports, open a shell; the
#                                      servers stop when the shell exits
#   scripts/test.sh --install-only     install the test tools and exit
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

lint=1
mode=full
cmd=()
while (($#)); do
    case "$1" in
        --no-lint) lint=0 ;;
        --services-shell) mode=shell ;;
        --install-only) mode=install ;;
        --) shift; mode=command; cmd=("$@"); break ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'unknown argument: %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [[ $mode == command && ${#cmd[@]} -eq 0 ]]; then
    echo "-- needs a command" >&2
    exit 2
fi

# shellcheck source=scripts/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"
cd "$WS_ROOT"

ws_install
bash scripts/install-browser.sh  # Chromium + playwright-core for tests/admin_page.rs
# tests/deploy_systemd.rs checks deploy/systemd with systemd-analyze (Debian's systemd package;
# present on the usual machine image, installed here when it is not).
# tests/backup_data.rs compares CSV exports with SQLite's own shell (Debian's sqlite3 package).
missing_pkgs=()
command -v systemd-analyze >/dev/null || missing_pkgs+=(systemd)
command -v sqlite3 >/dev/null || missing_pkgs+=(sqlite3)
if [[ ${#missing_pkgs[@]} -gt 0 ]]; then
    echo "[test-env] installing ${missing_pkgs[*]} (apt-get)" >&2
    sudo_=(); [[ $(id -u) -eq 0 ]] || sudo_=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >&2
fi
[[ $mode == install ]] && exit 0

trap ws_stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ws_start_all

case "$mode" in
    shell)
        ws_print_exports
        ws_log "servers are up; exit this shell to stop them"
        status=0
        "${SHELL:-bash}" -i || status=$?
        exit "$status"
        ;;
    command)
        status=0
        "${cmd[@]}" || status=$?
        exit "$status"
        ;;
esac

if ((lint)); then
    ws_log "cargo fmt --check"
    cargo fmt --check
    ws_log "cargo clippy --all-targets -- -D warnings"
    cargo clippy --all-targets -- -D warnings
    ws_log "scripts/lint-deploy.sh (Dockerfile, deploy/ manifests, release check of the image build)"
    bash scripts/lint-deploy.sh
fi
# --no-fail-fast: one failing test binary must not hide the results of the others.
status=0
ws_log "cargo test --all-targets --no-fail-fast"
cargo test --all-targets --no-fail-fast || status=$?
ws_log "cargo test --doc --no-fail-fast"
cargo test --doc --no-fail-fast || status=$?
exit "$status"
