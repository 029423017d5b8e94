"""scripts/lint_deploy_selftest.py — self-test of scripts/lint_deploy.py, run on every lint.

Owns: one broken variant per rule (a misspelt field, a wrong probe path, a wrong preStop
database, a PromQL typo, an undocumented metric, ...), made by mutating the real rendered
manifests; each must make its rule report an error containing the expected text.

Must stay true: a case that is no longer detected fails the lint run (returned as a failure), so
a rule that silently stops working cannot go unnoticed.
"""

from __future__ import annotations

import copy
from types import ModuleType


def _sts(docs: list[dict]) -> dict:
    return next(d for d in docs if d["kind"] == "StatefulSet")


def _pod(docs: list[dict]) -> dict:
    return _sts(docs)["spec"]["template"]["spec"]


def _sidecar(docs: list[dict]) -> dict:
    return next(c for c in _pod(docs)["initContainers"] if c.get("restartPolicy") == "Always")


def _restore(docs: list[dict]) -> dict:
    return next(c for c in _pod(docs)["initContainers"] if c["name"] == "restore")


def _mutate(docs: list[dict], fn) -> list[dict]:
    out = copy.deepcopy(docs)
    fn(out)
    return out


def _rule(expr: str, description: str = "") -> dict:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "t"},
            "spec": {"groups": [{"name": "g", "rules": [
                {"alert": "T", "expr": expr, "annotations": {"description": description}}]}]}}


def _cases(m: ModuleType, tools, renders: dict) -> list[tuple[str, str, object]]:
    """(name, expected error text, function(report))."""
    base, mon = renders["deploy/base"], renders["deploy/monitoring"]
    s3 = renders["deploy/overlays/s3"]
    external = {"walstream-http"}

    def workloads(docs, overlay=None):
        return lambda rep: m.check_workloads("t", docs, overlay, rep)

    def prestop(d):
        cmd = _sidecar(d)["lifecycle"]["preStop"]["exec"]["command"]
        cmd[-1] = "other.db"

    def sm_port(d):
        next(x for x in d if x["kind"] == "ServiceMonitor")["spec"]["endpoints"][0]["port"] = "http"

    def sm_interval(d):
        next(x for x in d if x["kind"] == "ServiceMonitor")["spec"]["endpoints"][0]["interval"] = "thirty"

    def s3_url(d):
        next(x for x in d if x["kind"] == "ConfigMap" and "WALSTREAM_REPLICA_URL" in x.get("data", {}))[
            "data"]["WALSTREAM_REPLICA_URL"] = "gs://bucket/app"

    def policy(d):
        return next(x for x in d if x["kind"] == "NetworkPolicy")

    def netpol(fn):
        return lambda rep: m.check_network_policies("t", _mutate(base, lambda d: fn(policy(d))), rep)

    def rules(expr, description=""):
        return lambda rep: m.check_rules([("t", _rule(expr, description))], tools,
                                         m.documented_metrics(tools.root), rep)

    return [
        ("strict schema: misspelt field", "readinesProbe",
         lambda rep: m.validate_builtin(_sts(_mutate(base, lambda d: _sidecar(d).update(readinesProbe={}))),
                                        "t", rep)),
        ("strict schema: wrong type", "replicas",
         lambda rep: m.validate_builtin(_sts(_mutate(base, lambda d: _sts(d)["spec"].update(replicas="one"))),
                                        "t", rep)),
        ("preStop names another database", "preStop must sync app.db", workloads(_mutate(base, prestop))),
        ("readiness on /healthz", "readinessProbe must GET /readyz",
         workloads(_mutate(base, lambda d: _sidecar(d)["readinessProbe"]["httpGet"].update(path="/healthz")))),
        ("writable root filesystem", "readOnlyRootFilesystem",
         workloads(_mutate(base, lambda d: _pod(d)["containers"][0]["securityContext"].update(
             readOnlyRootFilesystem=False)))),
        ("restore without -if-replica-exists", "restore init container must run",
         workloads(_mutate(base, lambda d: _restore(d)["args"].remove("-if-replica-exists")))),
        ("config var not in the environment", "environment does not set",
         workloads(_mutate(base, lambda d: _sidecar(d).update(envFrom=[])))),
        ("overlay URL of another cloud", "does not start with",
         workloads(_mutate(s3, s3_url), "s3")),
        ("Service targetPort misspelt", "targetPort",
         lambda rep: m.check_services("t", _mutate(base, lambda d: next(
             x for x in d if x["kind"] == "Service")["spec"]["ports"][0].update(targetPort="metric")), rep)),
        ("NetworkPolicy admits the HTTP port from everywhere", "from everywhere",
         netpol(lambda p: p["spec"]["ingress"][0].pop("from"))),
        ("NetworkPolicy open range over the HTTP port", "from everywhere",
         netpol(lambda p: p["spec"]["ingress"][1]["ports"][0].update(endPort=9090))),
        ("NetworkPolicy selects no pod", "selects no pod template",
         netpol(lambda p: p["spec"]["podSelector"]["matchLabels"].update({"app.kubernetes.io/name": "ap"}))),
        ("NetworkPolicy port name misspelt", "not a named container port",
         netpol(lambda p: p["spec"]["ingress"][0]["ports"][0].update(port="metric"))),
        ("no NetworkPolicy", "no NetworkPolicy restricts", lambda rep: m.check_network_policies(
            "t", [x for x in base if x["kind"] != "NetworkPolicy"], rep)),
        ("unknown ConfigMap", "neither rendered",
         lambda rep: m.check_references("t", _mutate(base, lambda d: _pod(d)["volumes"][0]["configMap"].update(
             name="nope")), external, rep)),
        ("ServiceMonitor port", "endpoint port", lambda rep: m.check_service_monitors(
            "t", _mutate(mon, sm_port), base, rep)),
        ("ServiceMonitor CRD schema", "CRD schema", lambda rep: m.check_custom_resources(
            [("t", next(x for x in _mutate(mon, sm_interval) if x["kind"] == "ServiceMonitor"))], tools, rep)),
        ("PromQL syntax", "PromQL syntax", rules('rate(walstream_replica_sync_errors_total{job="walstream"}[5m]')),
        ("undocumented metric", "not documented", rules('walstream_replica_lagg_seconds{job="walstream"} > 1')),
        ("counter without rate", "without rate", rules('walstream_replica_sync_errors_total{job="walstream"} > 1')),
        ("unknown label", "has no label", rules('walstream_replica_lag_seconds{job="walstream", dbs="x"} > 1')),
        ("annotation label", "$labels.mode",
         rules('walstream_replica_lag_seconds{job="walstream"} > 1', "{{ $labels.mode }}")),
        ("dockerignore semantics", "dockerignore", lambda rep: _dockerignore(m, rep)),
        ("overlay without its identity annotation", "lacks annotation",
         workloads(_mutate(s3, lambda d: next(x for x in d if x["kind"] == "ServiceAccount")[
             "metadata"].pop("annotations")), "s3")),
        ("database directory not on the volume claim", "not mounted from the data volume claim",
         workloads(_mutate(base, lambda d: _pod(d)["containers"][0].update(volumeMounts=[])))),
        ("dashboard legend label", "legend uses", lambda rep: m.check_dashboard_doc(
            "t", _dashboard('walstream_replica_lag_seconds{job="walstream"}', "{{mode}}"), tools,
            m.documented_metrics(tools.root), rep)),
        ("Dockerfile without --locked", "cargo build --release --locked", lambda rep: m.check_dockerfile(
            "t", (tools.root / "Dockerfile").read_text().replace(" --locked", ""), rep)),
        ("Dockerfile running as root", "USER", lambda rep: m.check_dockerfile(
            "t", (tools.root / "Dockerfile").read_text().replace("USER 65532:65532", "USER root"), rep)),
        ("Dockerfile with a Debian runtime", "distroless", lambda rep: m.check_dockerfile(
            "t", (tools.root / "Dockerfile").read_text().replace(
                "gcr.io/distroless/cc-debian12:nonroot", "debian:bookworm-slim"), rep)),
        ("Dockerfile installing curl into the runtime", "must not RUN", lambda rep: m.check_dockerfile(
            "t", (tools.root / "Dockerfile").read_text().replace(
                "COPY --from=build /out/walstream", "RUN apt-get install -y curl\nCOPY --from=build /out/walstream"), rep)),
    ]


def _dashboard(expr: str, legend: str) -> dict:
    return {"panels": [{"id": 1, "title": "t", "targets": [{"refId": "A", "expr": expr, "legendFormat": legend}]}]}


def _dockerignore(m: ModuleType, rep) -> None:
    """Reports "dockerignore" when the matcher is right (the case expects that error)."""
    rules = m.dockerignore_rules("*\n!src\n!Cargo.toml\n**/target\n")
    want = {"src/a.rs": False, "Cargo.toml": False, "README.md": True, "src/target/x": True,
            "target/debug/x": True, "docs/src/x": True}
    if all(m.excluded(p, rules) == ex for p, ex in want.items()):
        rep.add("t", "dockerignore matcher agrees with Docker on every sample")


def run(m: ModuleType, tools, renders: dict) -> tuple[list[str], int]:
    """Runs every case; returns a description of each case whose error was not reported, and
    the number of cases."""
    needed = ["deploy/base", "deploy/monitoring", "deploy/overlays/s3"]
    if not all(k in renders for k in needed):
        return [f"cannot run: needs the renders of {needed}"], 0
    failures = []
    cases = _cases(m, tools, renders)
    for name, expected, fn in cases:
        rep = m.Report()
        try:
            fn(rep)
        except Exception as e:  # a crash is a failure of the case, not of the run
            failures.append(f"{name}: raised {type(e).__name__}: {e}")
            continue
        if not any(expected in e for e in rep.errors):
            failures.append(f"{name}: no error containing {expected!r} (got {rep.errors})")
    return failures, len(cases)
