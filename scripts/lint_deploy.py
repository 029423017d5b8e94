#!/usr/bin/env python3
"""scripts/lint_deploy.py — checks of the Dockerfile, .dockerignore and deploy/ (run by
scripts/lint-deploy.sh with the tools it installs into .testenv/).

Owns, for every kustomization under deploy/: rendering with kubectl's kustomize; validation of
every built-in resource against the Kubernetes JSON schemas (kubernetes-validate, strict, for the
oldest and newest supported Kubernetes versions) and of Prometheus Operator resources against
their CRD schemas (npm, via scripts/lint_deploy_promql.mjs); the cross-resource rules below;
PromQL parsing of every alert and dashboard query with the metric names, labels and counter use
checked against docs/metrics.md; the Dockerfile's build command, user and entrypoint; the list
of files .dockerignore lets into the build context (printed with --context-files).

Must stay true: every rule reports a located error instead of stopping at the first; the
self-test (always run) feeds each rule a broken input and fails the run if a rule stops
reporting, so the linter cannot silently pass everything.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes_validate
import yaml

import lint_deploy_selftest  # beside this file

K8S_VERSIONS = ("1.29.0", "1.37.0")  # native sidecars (restartPolicy: Always) need >= 1.29
WALSTREAM_IMAGE = "walstream"
APP_USER = 65532
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}
BUILTIN_METRICS = {"up": set()}
EXPECTED_JOB = "walstream"
OVERLAY_RULES = {
    "s3": (("s3://",), ("eks.amazonaws.com/role-arn",), {}),
    "gcs": (("gcs://", "gs://"), ("iam.gke.io/gcp-service-account",), {}),
    "azure": (("abs://",), ("azure.workload.identity/client-id",), {"azure.workload.identity/use": "true"}),
}


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)

    def add(self, where: str, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")


@dataclass
class Tools:
    kubectl: str
    node: str
    node_modules: str
    root: Path


# ---------------------------------------------------------------------------------------------
# Rendering and schema validation


def render(tools: Tools, kdir: Path) -> list[dict]:
    out = subprocess.run([tools.kubectl, "kustomize", str(kdir)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"kustomize failed: {out.stderr.strip()}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def is_custom(doc: dict) -> bool:
    return doc.get("apiVersion", "").startswith("monitoring.coreos.com/")


def validate_builtin(doc: dict, where: str, rep: Report) -> None:
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            rep.add(where, f"{kn(doc)}: Kubernetes {version} schema: {path}: {e.message}")
        except kubernetes_validate.utils.SchemaNotFoundError as e:
            rep.add(where, f"{kn(doc)}: no schema for Kubernetes {version}: {e}")


def kn(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def node_helper(tools: Tools, exprs: list[str], resources: list[dict]) -> dict:
    script = tools.root / "scripts" / "lint_deploy_promql.mjs"
    payload = json.dumps({"exprs": exprs, "resources": resources})
    out = subprocess.run([tools.node, str(script), tools.node_modules], input=payload,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{script.name} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


# ---------------------------------------------------------------------------------------------
# Metrics documentation and PromQL


def documented_metrics(root: Path) -> dict[str, tuple[str, set[str]]]:
    """name -> (type, labels) from the tables of docs/metrics.md."""
    row = re.compile(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(gauge|counter)\s*\|([^|]*)\|")
    metrics = {}
    for line in (root / "docs" / "metrics.md").read_text().splitlines():
        m = row.match(line)
        if m:
            metrics[m.group(1)] = (m.group(2), set(re.findall(r"`([a-z_]+)`", m.group(3))))
    return metrics


def grafana_substitute(expr: str) -> str:
    expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", expr)
    return re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}?", "placeholder", expr)


def check_expr(where: str, expr: str, result: dict, metrics: dict, rep: Report) -> set[str]:
    """Checks one analysed expression; returns the label names its series can carry."""
    if result["error"]:
        rep.add(where, f"PromQL {result['error']}")
        return set()
    available = set(TARGET_LABELS)
    for sel in result["selectors"]:
        name = sel["metric"]
        if name is None:
            rep.add(where, f"selector without a metric name in {expr!r}")
            continue
        if name in BUILTIN_METRICS:
            kind, labels = "gauge", BUILTIN_METRICS[name]
        elif name in metrics:
            kind, labels = metrics[name]
        else:
            rep.add(where, f"metric {name!r} is not documented in docs/metrics.md")
            continue
        available |= labels
        for label in sel["matchers"]:
            if label not in labels | TARGET_LABELS | {"__name__"}:
                rep.add(where, f"{name} has no label {label!r} (docs/metrics.md)")
        if kind == "counter" and not sel["range_fn"]:
            rep.add(where, f"counter {name} used without rate()/increase()")
    for label in result["labels"]:
        if label not in available | {"le"}:
            rep.add(where, f"label {label!r} is carried by none of the expression's metrics")
    return available


def label_refs(text: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, text))


def check_rules(rules: list[tuple[str, dict]], tools: Tools, metrics: dict, rep: Report) -> None:
    """rules: (where, PrometheusRule) pairs."""
    items = []
    for where, doc in rules:
        for g in doc.get("spec", {}).get("groups", []):
            for r in g.get("rules", []):
                items.append((f"{where}: {kn(doc)} rule {r.get('alert') or r.get('record')}", r))
    results = node_helper(tools, [str(r.get("expr", "")) for _, r in items], [])["exprs"]
    for (where, rule), res in zip(items, results):
        available = check_expr(where, str(rule.get("expr", "")), res, metrics, rep)
        text = json.dumps(rule.get("annotations", {}))
        for label in label_refs(text, r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)") - available:
            rep.add(where, f"annotation uses $labels.{label}, which the expression does not carry")
        if not re.search(rf'job="{EXPECTED_JOB}"', str(rule.get("expr", ""))):
            rep.add(where, f'expression does not select job="{EXPECTED_JOB}" (ServiceMonitor jobLabel)')


def dashboard_queries(dash: dict) -> list[tuple[str, str, str]]:
    """(where, promql, legendFormat) for every panel target and label_values() variable."""
    out = []
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var.get("query")
        q = q.get("query", "") if isinstance(q, dict) else str(q or "")
        m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)\s*", q)
        if not m:
            out.append((f"variable {var.get('name')}", q, ""))
        else:
            out.append((f"variable {var.get('name')}", m.group(1), "{{" + m.group(2) + "}}"))
    for panel in dash.get("panels", []):
        for t in panel.get("targets", []):
            out.append((f"panel {panel.get('title')!r} target {t.get('refId')}", t.get("expr", ""),
                        t.get("legendFormat", "")))
    return out


def check_dashboard(path: Path, tools: Tools, metrics: dict, rep: Report) -> None:
    where = str(path.relative_to(tools.root))
    try:
        dash = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        rep.add(where, f"invalid JSON: {e}")
        return
    check_dashboard_doc(where, dash, tools, metrics, rep)


def check_dashboard_doc(where: str, dash: dict, tools: Tools, metrics: dict, rep: Report) -> None:
    queries = dashboard_queries(dash)
    if not queries:
        rep.add(where, "no queries found")
    results = node_helper(tools, [grafana_substitute(q) for _, q, _ in queries], [])["exprs"]
    for (qwhere, expr, legend), res in zip(queries, results):
        available = check_expr(f"{where}: {qwhere}", expr, res, metrics, rep)
        for label in label_refs(legend, r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}") - available:
            rep.add(f"{where}: {qwhere}", f"legend uses {{{{{label}}}}}, which the query does not carry")
    ids = [p.get("id") for p in dash.get("panels", [])]
    if len(ids) != len(set(ids)):
        rep.add(where, "panel ids are not unique")


# ---------------------------------------------------------------------------------------------
# Workloads


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def named(docs: list[dict], kind: str, name: str) -> dict | None:
    return next((d for d in by_kind(docs, kind) if d["metadata"]["name"] == name), None)


def pod_specs(docs: list[dict]) -> list[tuple[dict, dict]]:
    """(workload, pod template) pairs."""
    return [(d, d["spec"]["template"]) for d in docs
            if d.get("kind") in ("StatefulSet", "Deployment", "DaemonSet")]


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec.get("containers", [])


def is_walstream(c: dict) -> bool:
    """The image's last path component without tag or digest is "walstream"."""
    last = c.get("image", "").split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[0] == WALSTREAM_IMAGE


def check_security(where: str, spec: dict, rep: Report) -> None:
    pod = spec.get("securityContext", {})
    if pod.get("runAsUser") != APP_USER or not pod.get("runAsNonRoot"):
        rep.add(where, f"pod securityContext must set runAsNonRoot and runAsUser {APP_USER} (the image's user)")
    for c in containers(spec):
        sc, cw = c.get("securityContext", {}), f"{where} container {c['name']}"
        if not (sc.get("runAsNonRoot") or pod.get("runAsNonRoot")):
            rep.add(cw, "runAsNonRoot is not set")
        if sc.get("readOnlyRootFilesystem") is not True:
            rep.add(cw, "readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            rep.add(cw, "allowPrivilegeEscalation must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            rep.add(cw, "capabilities.drop must contain ALL")
        res = c.get("resources", {})
        if not {"cpu", "memory"} <= set(res.get("requests", {})) or "memory" not in res.get("limits", {}):
            rep.add(cw, "needs cpu+memory requests and a memory limit")


def check_references(where: str, docs: list[dict], external: set[str], rep: Report) -> None:
    """ConfigMaps, Secrets and ServiceAccounts a pod uses exist (or are documented examples)."""
    for wl, tpl in pod_specs(docs):
        spec, w = tpl["spec"], f"{where}: {kn(wl)}"
        refs = [("ConfigMap", v["configMap"]["name"], v["configMap"].get("optional"))
                for v in spec.get("volumes", []) if "configMap" in v]
        refs += [("Secret", v["secret"]["secretName"], v["secret"].get("optional"))
                 for v in spec.get("volumes", []) if "secret" in v]
        for c in containers(spec):
            for e in c.get("envFrom", []):
                for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if key in e:
                        refs.append((kind, e[key]["name"], e[key].get("optional")))
            for e in c.get("env", []):
                vf = e.get("valueFrom", {})
                for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    if key in vf:
                        refs.append((kind, vf[key]["name"], vf[key].get("optional")))
        for kind, name, optional in refs:
            if optional or named(docs, kind, name):
                continue
            if kind == "Secret" and name in external:
                continue
            rep.add(w, f"{kind} {name!r} is neither rendered, optional, nor documented by a *.example.yaml")
        sa = spec.get("serviceAccountName")
        if sa and not named(docs, "ServiceAccount", sa):
            rep.add(w, f"ServiceAccount {sa!r} is not rendered")


def port_names(spec: dict) -> set[str]:
    return {p["name"] for c in containers(spec) for p in c.get("ports", []) if "name" in p}


def check_services(where: str, docs: list[dict], rep: Report) -> None:
    for svc in by_kind(docs, "Service"):
        sel = svc["spec"].get("selector", {})
        pods = [t for _, t in pod_specs(docs) if sel.items() <= t["metadata"].get("labels", {}).items()]
        if not pods:
            rep.add(where, f"{kn(svc)} selects no pod template")
        for p in svc["spec"].get("ports", []):
            tp = p.get("targetPort")
            if isinstance(tp, str) and not any(tp in port_names(t["spec"]) for t in pods):
                rep.add(where, f"{kn(svc)} targetPort {tp!r} is not a named container port")
    for sts in by_kind(docs, "StatefulSet"):
        if not named(docs, "Service", sts["spec"].get("serviceName", "")):
            rep.add(where, f"{kn(sts)} serviceName {sts['spec'].get('serviceName')!r} is not rendered")
        if sts["spec"].get("replicas") != 1:
            rep.add(where, f"{kn(sts)} must have exactly 1 replica (one SQLite writer)")


def selected_templates(docs: list[dict], selector: dict) -> list[dict]:
    """The pod templates whose labels include `selector` (matchLabels only; {} selects all)."""
    return [t for _, t in pod_specs(docs) if selector.items() <= t["metadata"].get("labels", {}).items()]


def port_covers(p: dict, name: str, number: int) -> bool:
    """A NetworkPolicy port entry admits the TCP container port `name` / `number`."""
    if p.get("protocol", "TCP") != "TCP":
        return False
    port = p.get("port")
    if port is None:
        return True
    if isinstance(port, str):
        return port == name
    return port <= number <= p.get("endPort", port)


def admits_everyone(rule: dict) -> bool:
    """An ingress rule without peers, or with a peer matching every pod or address."""
    peers = rule.get("from") or []
    if not peers:
        return True
    for peer in peers:
        if "ipBlock" in peer:
            return True
        if peer.get("namespaceSelector") == {} and not peer.get("podSelector"):
            return True
    return False


def check_network_policies(where: str, docs: list[dict], rep: Report) -> None:
    """Every NetworkPolicy selects a pod template and names only its container ports; each pod
    template running walstream is selected by a NetworkPolicy, and no ingress rule admits
    walstream's HTTP port from everywhere (the API returns database content)."""
    policies = by_kind(docs, "NetworkPolicy")
    for pol in policies:
        pods = selected_templates(docs, pol["spec"].get("podSelector", {}).get("matchLabels", {}))
        if not pods:
            rep.add(where, f"{kn(pol)} selects no pod template")
        for rule in pol["spec"].get("ingress", []):
            for p in rule.get("ports", []):
                name = p.get("port")
                if isinstance(name, str) and not any(name in port_names(t["spec"]) for t in pods):
                    rep.add(where, f"{kn(pol)} port {name!r} is not a named container port")
    for wl, tpl in pod_specs(docs):
        http = [(p.get("name", ""), p["containerPort"]) for c in containers(tpl["spec"])
                if is_walstream(c) for p in c.get("ports", [])]
        if not http:
            continue
        labels = tpl["metadata"].get("labels", {})
        guarding = [pol for pol in policies
                    if "Ingress" in pol["spec"].get("policyTypes", ["Ingress"])
                    and pol["spec"].get("podSelector", {}).get("matchLabels", {}).items() <= labels.items()]
        if not guarding:
            rep.add(where, f"{kn(wl)}: no NetworkPolicy restricts walstream's HTTP port")
        for pol in guarding:
            for i, rule in enumerate(pol["spec"].get("ingress", [])):
                ports = rule.get("ports") or [{}]
                if any(port_covers(p, n, num) for p in ports for n, num in http) and admits_everyone(rule):
                    rep.add(where, f"{kn(pol)} ingress rule {i} admits walstream's HTTP port from everywhere")


# ---------------------------------------------------------------------------------------------
# walstream containers


@dataclass
class Ctx:
    where: str
    docs: list[dict]
    spec: dict
    overlay: str | None
    claims: list[dict] = field(default_factory=list)


def container_env(ctx: Ctx, c: dict) -> dict[str, str | None]:
    """Variables the container surely has: value, or None when it comes from a Secret."""
    env: dict[str, str | None] = {}
    for e in c.get("envFrom", []):
        if "configMapRef" in e:
            cm = named(ctx.docs, "ConfigMap", e["configMapRef"]["name"]) or {}
            env.update(cm.get("data", {}))
    for e in c.get("env", []):
        env[e["name"]] = e.get("value") if "value" in e else None
    return env


def mounted_file(ctx: Ctx, c: dict, path: str) -> str | None:
    """Content of `path` when it lies in a ConfigMap volume mounted into `c`."""
    for m in c.get("volumeMounts", []):
        if posixpath.dirname(path) != m["mountPath"].rstrip("/"):
            continue
        vol = next((v for v in ctx.spec.get("volumes", []) if v["name"] == m["name"]), {})
        cm = named(ctx.docs, "ConfigMap", vol.get("configMap", {}).get("name", "")) or {}
        return cm.get("data", {}).get(posixpath.basename(path))
    return None


def load_config(ctx: Ctx, c: dict, cw: str, rep: Report) -> dict | None:
    args = c.get("args", [])
    if "-config" not in args[:-1]:
        rep.add(cw, "walstream runs without -config")
        return None
    path = args[args.index("-config") + 1]
    text = mounted_file(ctx, c, path)
    if text is None:
        rep.add(cw, f"-config {path} is not a key of a mounted ConfigMap")
        return None
    env = container_env(ctx, c)
    for var in sorted(set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))):
        if var not in env:
            rep.add(cw, f"config uses ${{{var}}}, which the container's environment does not set")
        elif ctx.overlay and env[var] == "":
            rep.add(cw, f"config uses ${{{var}}}, which is empty in this overlay")
    expanded = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1)) or "", text)
    return yaml.safe_load(expanded)


def http_get(probe: dict | None) -> tuple[str, object]:
    g = (probe or {}).get("httpGet", {})
    return g.get("path", ""), g.get("port")


def check_sidecar(ctx: Ctx, c: dict, cfg: dict, cw: str, rep: Report) -> None:
    port = str(cfg.get("addr", "")).rsplit(":", 1)[-1]
    ports = {p.get("name"): str(p["containerPort"]) for p in c.get("ports", [])}
    if c.get("restartPolicy") != "Always" or c not in ctx.spec.get("initContainers", []):
        rep.add(cw, "must be a native sidecar (init container with restartPolicy: Always)")
    if c.get("args", [None])[0] != "replicate":
        rep.add(cw, "sidecar must run `walstream replicate`")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        got, pport = http_get(c.get(probe))
        if got != path or ports.get(pport, str(pport)) != port:
            rep.add(cw, f"{probe} must GET {path} on the config's addr port {port} (has {got} on {pport})")
    cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    addr = f"http://127.0.0.1:{port}"
    if cmd[:3] != ["walstream", "sync", "-wait"] or addr not in cmd:
        rep.add(cw, f"preStop must run `walstream sync -wait -addr {addr} DB`")
    ids = [posixpath.basename(db["path"]) for db in cfg.get("dbs", [])]
    for db_id in ids:
        if db_id not in cmd:
            rep.add(cw, f"preStop must sync {db_id}")
    if "WALSTREAM_HTTP_TOKEN" not in container_env(ctx, c) and "http-token" not in cfg:
        rep.add(cw, "no HTTP token: set WALSTREAM_HTTP_TOKEN from a Secret")


def check_restore(ctx: Ctx, c: dict, cfg: dict, cw: str, rep: Report) -> None:
    args = c.get("args", [])
    need = {"-if-db-not-exists", "-if-replica-exists"}
    if not args or args[0] != "restore" or not need <= set(args):
        rep.add(cw, f"restore init container must run `restore {' '.join(sorted(need))}`")
    dbs = [db["path"] for db in cfg.get("dbs", [])]
    if not args or args[-1] not in dbs:
        rep.add(cw, f"restores {args[-1:]} but the config's databases are {dbs}")
    spec_idx = ctx.spec.get("initContainers", []).index(c) if c in ctx.spec.get("initContainers", []) else -1
    sidecars = [i for i, x in enumerate(ctx.spec.get("initContainers", [])) if x.get("restartPolicy") == "Always"]
    if spec_idx < 0 or any(i < spec_idx for i in sidecars):
        rep.add(cw, "restore must be an init container that runs before the sidecar")


def check_data_mounts(ctx: Ctx, cfg: dict, rep: Report) -> None:
    """Every container sees each database directory on the same volume."""
    for db in cfg.get("dbs", []):
        d = posixpath.dirname(db["path"])
        for c in containers(ctx.spec):
            vols = {m["name"] for m in c.get("volumeMounts", []) if m["mountPath"].rstrip("/") == d}
            if not vols or not all(v in {t["metadata"]["name"] for t in ctx.claims} for v in vols):
                rep.add(f"{ctx.where} container {c['name']}", f"{d} is not mounted from the data volume claim")


def check_walstream(ctx: Ctx, rep: Report) -> None:
    ws = [c for c in containers(ctx.spec) if is_walstream(c)]
    roles = {c.get("args", [""])[0]: c for c in ws}
    if set(roles) != {"restore", "replicate"}:
        rep.add(ctx.where, f"expected a restore and a replicate walstream container, found {sorted(roles)}")
        return
    for role, c in roles.items():
        cw = f"{ctx.where} container {c['name']}"
        cfg = load_config(ctx, c, cw, rep)
        if cfg is None:
            continue
        (check_restore if role == "restore" else check_sidecar)(ctx, c, cfg, cw, rep)
        if role == "replicate":
            check_data_mounts(ctx, cfg, rep)


def check_workloads(where: str, docs: list[dict], overlay: str | None, rep: Report) -> None:
    for wl, tpl in pod_specs(docs):
        claims = wl["spec"].get("volumeClaimTemplates", [])
        ctx = Ctx(f"{where}: {kn(wl)}", docs, tpl["spec"], overlay, claims)
        check_security(ctx.where, ctx.spec, rep)
        check_walstream(ctx, rep)
        if overlay:
            check_overlay(ctx, tpl, overlay, rep)


def check_overlay(ctx: Ctx, tpl: dict, overlay: str, rep: Report) -> None:
    schemes, annotations, pod_labels = OVERLAY_RULES[overlay]
    sidecar = next(c for c in containers(ctx.spec) if c.get("restartPolicy") == "Always")
    url = container_env(ctx, sidecar).get("WALSTREAM_REPLICA_URL") or ""
    if not url.startswith(schemes):
        rep.add(ctx.where, f"overlay {overlay}: WALSTREAM_REPLICA_URL {url!r} does not start with {schemes}")
    sa = named(ctx.docs, "ServiceAccount", ctx.spec.get("serviceAccountName", "")) or {}
    for a in annotations:
        if a not in sa.get("metadata", {}).get("annotations", {}):
            rep.add(ctx.where, f"overlay {overlay}: ServiceAccount lacks annotation {a}")
    for k, v in pod_labels.items():
        if tpl["metadata"].get("labels", {}).get(k) != v:
            rep.add(ctx.where, f"overlay {overlay}: pod template needs label {k}: {v!r}")


# ---------------------------------------------------------------------------------------------
# Monitoring


def check_service_monitors(where: str, mon: list[dict], base: list[dict], rep: Report) -> None:
    for sm in by_kind(mon, "ServiceMonitor"):
        sel = sm["spec"].get("selector", {}).get("matchLabels", {})
        svcs = [s for s in by_kind(base, "Service")
                if sel and sel.items() <= s["metadata"].get("labels", {}).items()]
        if not svcs:
            rep.add(where, f"{kn(sm)} selects no Service of deploy/base")
            continue
        for ep in sm["spec"].get("endpoints", []):
            if not all(ep.get("port") in {p.get("name") for p in s["spec"]["ports"]} for s in svcs):
                rep.add(where, f"{kn(sm)} endpoint port {ep.get('port')!r} is not a port name of the Service")
        job_label = sm["spec"].get("jobLabel")
        if any(s["metadata"]["labels"].get(job_label) != EXPECTED_JOB for s in svcs):
            rep.add(where, f"{kn(sm)} jobLabel {job_label!r} must give job={EXPECTED_JOB!r}")


def check_custom_resources(items: list[tuple[str, dict]], tools: Tools, rep: Report) -> None:
    results = node_helper(tools, [], [d for _, d in items])["resources"]
    for (where, doc), err in zip(items, results):
        if err:
            rep.add(where, f"{kn(doc)}: CRD schema: {err}")


def check_dashboard_configmaps(where: str, docs: list[dict], root: Path, rep: Report) -> None:
    for cm in by_kind(docs, "ConfigMap"):
        for key, value in cm.get("data", {}).items():
            if key.endswith(".json"):
                src = root / "deploy" / "monitoring" / key
                if not src.is_file() or json.loads(src.read_text()) != json.loads(value):
                    rep.add(where, f"{kn(cm)} key {key} differs from deploy/monitoring/{key}")


# ---------------------------------------------------------------------------------------------
# Dockerfile and build context


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """Instructions (keyword, rest) per stage, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    stages: list[list[tuple[str, str]]] = [[]]
    for line in joined.splitlines():
        if not line.strip():
            continue
        kw, _, rest = line.strip().partition(" ")
        if kw.upper() == "FROM":
            stages.append([])
        stages[-1].append((kw.upper(), rest.strip()))
    return stages[1:]


def check_dockerfile(where: str, text: str, rep: Report) -> None:
    stages = dockerfile_stages(text)
    runs = [rest for st in stages for kw, rest in st if kw == "RUN"]
    if not any("cargo build --release --locked" in r for r in runs):
        rep.add(where, "no RUN with `cargo build --release --locked`")
    final = dict(stages[-1]) if stages else {}
    if final.get("USER", "").split(":")[0] != str(APP_USER):
        rep.add(where, f"final stage must set USER {APP_USER} (numeric, the pods' runAsUser)")
    if final.get("ENTRYPOINT") != '["walstream"]' or final.get("CMD") != '["replicate"]':
        rep.add(where, 'final stage must have ENTRYPOINT ["walstream"] and CMD ["replicate"]')
    # A minimal runtime: distroless (CA certificates, no shell), nothing installed into it.
    base = final.get("FROM", "").split()[0] if final.get("FROM") else ""
    if not base.startswith("gcr.io/distroless/"):
        rep.add(where, f"final stage must be FROM gcr.io/distroless/… (no shell, no curl), not {base!r}")
    if any(kw == "RUN" for kw, _ in (stages[-1] if stages else [])):
        rep.add(where, "final stage must not RUN anything (a distroless image has no shell)")


def glob_regex(pat: str) -> re.Pattern:
    """Docker's .dockerignore glob: `*` and `?` within one path component, `**` across any."""
    i, rx = 0, ""
    while i < len(pat):
        if pat.startswith("**/", i):
            rx, i = rx + "(?:.*/)?", i + 3
        elif pat.startswith("**", i):
            rx, i = rx + ".*", i + 2
        elif pat[i] in "*?":
            rx, i = rx + ("[^/]*" if pat[i] == "*" else "[^/]"), i + 1
        else:
            rx, i = rx + re.escape(pat[i]), i + 1
    return re.compile(rx)


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern]]:
    """(exclude?, regex) per rule, in order; the last matching rule decides (Docker semantics)."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pat = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((not keep, glob_regex(pat)))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for exclude, rx in rules:
        if any(rx.fullmatch(p) for p in prefixes):
            result = exclude
    return result


def context_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=root, capture_output=True, check=True)
    rules = dockerignore_rules((root / ".dockerignore").read_text())
    files = [f for f in out.stdout.decode().split("\0") if f and (root / f).is_file()]
    return sorted(f for f in files if not excluded(f, rules))


def check_context(root: Path, rep: Report) -> None:
    files = context_files(root)
    for must in ("Cargo.toml", "Cargo.lock", ".cargo/config.toml", "src/main.rs", "src/lib.rs"):
        if must not in files:
            rep.add(".dockerignore", f"{must} is not in the build context")
    for bad in ("target/", ".testenv/", ".git/", "node_modules/", "deploy/"):
        if any(f.startswith(bad) for f in files):
            rep.add(".dockerignore", f"{bad} is in the build context")


# ---------------------------------------------------------------------------------------------
# Driver


def example_resources(root: Path) -> list[tuple[str, dict]]:
    out = []
    for path in sorted(root.glob("deploy/**/*.example.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((str(path.relative_to(root)), doc))
    return out


def overlay_of(root: Path, kdir: Path) -> str | None:
    return kdir.name if kdir.parent == root / "deploy" / "overlays" else None


def render_all(tools: Tools, rep: Report) -> dict[str, list[dict]]:
    renders = {}
    for kfile in sorted(tools.root.glob("deploy/**/kustomization.yaml")):
        where = str(kfile.parent.relative_to(tools.root))
        try:
            renders[where] = render(tools, kfile.parent)
        except RuntimeError as e:
            rep.add(where, str(e))
    for must in ["deploy/base", "deploy/monitoring"] + [f"deploy/overlays/{o}" for o in OVERLAY_RULES]:
        if must not in renders:
            rep.add(must, "kustomization missing or not renderable")
    return renders


def lint(tools: Tools, renders: dict[str, list[dict]], rep: Report) -> None:
    root = tools.root
    metrics = documented_metrics(root)
    check_dockerfile("Dockerfile", (root / "Dockerfile").read_text(), rep)
    check_context(root, rep)
    examples = example_resources(root)
    external = {d["metadata"]["name"] for _, d in examples if d.get("kind") == "Secret"}
    for where, doc in examples:
        validate_builtin(doc, where, rep)
    base = renders.get("deploy/base", [])
    crs, rules = [], []
    for where, docs in renders.items():
        for d in docs:
            if is_custom(d):
                crs.append((where, d))
            else:
                validate_builtin(d, where, rep)
        rules += [(where, d) for d in by_kind(docs, "PrometheusRule")]
        check_references(where, docs, external, rep)
        check_services(where, docs, rep)
        check_network_policies(where, docs, rep)
        check_workloads(where, docs, overlay_of(root, root / where), rep)
        check_dashboard_configmaps(where, docs, root, rep)
        check_service_monitors(where, docs, base, rep)
    check_custom_resources(crs, tools, rep)
    check_rules(rules, tools, metrics, rep)
    for dash in sorted(root.glob("deploy/**/*.json")):
        check_dashboard(dash, tools, metrics, rep)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--kubectl", default="kubectl")
    ap.add_argument("--node", default="node")
    ap.add_argument("--node-modules", default="node_modules")
    ap.add_argument("--context-files", action="store_true",
                    help="print the files .dockerignore lets into the build context and exit")
    a = ap.parse_args()
    root = a.root.resolve()
    if a.context_files:
        sys.stdout.write("".join(f + "\n" for f in context_files(root)))
        return 0
    tools = Tools(a.kubectl, a.node, os.path.abspath(a.node_modules), root)
    rep = Report()
    renders = render_all(tools, rep)
    lint(tools, renders, rep)
    for e in rep.errors:
        print(f"error: {e}", file=sys.stderr)
    failures, cases = lint_deploy_selftest.run(sys.modules[__name__], tools, renders)
    for f in failures:
        print(f"self-test: {f}", file=sys.stderr)
    n_res = sum(len(d) for d in renders.values())
    print(f"deploy lint: {len(renders)} kustomizations, {n_res} resources, {len(rep.errors)} errors; "
          f"self-test: {cases - len(failures)} of {cases} broken variants detected", file=sys.stderr)
    return 1 if rep.errors or failures else 0


if __name__ == "__main__":
    sys.exit(main())
