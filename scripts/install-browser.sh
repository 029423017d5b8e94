#!/usr/bin/env bash
# scripts/install-browser.sh — installs what the admin-page browser test (tests/admin_page.rs,
# tests/browser/admin.mjs) needs: Debian's Chromium at /usr/bin/chromium and playwright-core in
# tests/browser/node_modules (from the committed package-lock.json).
#
# Must stay true: idempotent (nothing is installed when /usr/bin/chromium exists and node_modules
# matches the lock file); never downloads a browser build of its own (playwright-core drives the
# Debian Chromium; `playwright install` is not used); fails loudly when an install fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[install-browser] %s\n' "$*" >&2; }

if [[ ! -x /usr/bin/chromium ]]; then
    log "installing chromium (apt-get)"
    if [[ $(id -u) -eq 0 ]]; then
        apt_get=(apt-get)
    else
        apt_get=(sudo apt-get)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${apt_get[@]}" update -qq
    "${apt_get[@]}" install -y -qq --no-install-recommends chromium >&2
fi
log "$(/usr/bin/chromium --version 2>/dev/null)"

dir="$root/tests/browser"
stamp="$dir/node_modules/.walstream-stamp"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi
log "npm ci in tests/browser"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
printf '%s' "$want" >"$stamp"
