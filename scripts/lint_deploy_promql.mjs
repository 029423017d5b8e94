// scripts/lint_deploy_promql.mjs — helper of scripts/lint_deploy.py (run by scripts/lint-deploy.sh).
//
// Owns: the two checks that need npm packages: PromQL parsing with Prometheus' own grammar
// (@prometheus-io/lezer-promql) and validation of Prometheus Operator custom resources against
// their CRD schemas (@kubernetes-models/prometheus-operator).
//
// Protocol: `node lint_deploy_promql.mjs NODE_MODULES_DIR` reads one JSON object from stdin,
//   {"exprs": ["<promql>", ...], "resources": [<ServiceMonitor or PrometheusRule>, ...]}
// and prints one JSON object,
//   {"exprs": [{"error": null|"<msg>", "selectors": [{"metric", "matchers": [label...],
//     "range_fn": null|"<function>"}], "labels": [every label name in the expression]}],
//    "resources": [null|"<validation errors>"]}
// in the order of the input. It judges nothing else: the metric and label rules live in Python.
//
// Must stay true: a syntax error anywhere in an expression is reported (lezer recovers from
// errors, so error nodes are searched for explicitly); an unknown kind is an error, never a pass.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
if (!modules) {
  console.error("usage: node lint_deploy_promql.mjs NODE_MODULES_DIR < input.json");
  process.exit(2);
}
const load = (rel) => import(pathToFileURL(join(modules, rel)).href);

const RANGE_FUNCTIONS = new Set(["rate", "irate", "increase", "resets", "changes", "delta", "idelta", "deriv"]);

function text(expr, node) {
  return expr.slice(node.from, node.to);
}

// The function whose argument is the range selector around `selector`, if any.
function rangeFunction(expr, selector) {
  const matrix = selector.parent;
  if (!matrix || matrix.name !== "MatrixSelector") return null;
  const body = matrix.parent;
  const call = body && body.name === "FunctionCallBody" ? body.parent : null;
  const ident = call && call.name === "FunctionCall" ? call.getChild("FunctionIdentifier") : null;
  const name = ident ? text(expr, ident) : null;
  return name && RANGE_FUNCTIONS.has(name) ? name : null;
}

function selectorInfo(expr, node) {
  const ident = node.getChild("Identifier");
  const matchers = [];
  const list = node.getChild("LabelMatchers");
  if (list) {
    for (let m = list.firstChild; m; m = m.nextSibling) {
      const label = m.getChild("LabelName");
      if (label) matchers.push(text(expr, label));
    }
  }
  return { metric: ident ? text(expr, ident) : null, matchers, range_fn: rangeFunction(expr, node) };
}

function analyse(parser, expr) {
  const tree = parser.parse(expr);
  const selectors = [];
  const labels = new Set();
  let error = null;
  tree.iterate({
    enter(ref) {
      if (ref.type.isError && error === null) {
        error = `syntax error at offset ${ref.from}: ...${expr.slice(Math.max(0, ref.from - 20), ref.from + 20)}...`;
      }
      if (ref.name === "VectorSelector") selectors.push(selectorInfo(expr, ref.node));
      if (ref.name === "LabelName") labels.add(text(expr, ref.node));
    },
  });
  if (error === null && expr.trim() === "") error = "empty expression";
  return { error, selectors, labels: [...labels].sort() };
}

async function validateResource(models, doc) {
  const Model = models[doc.kind];
  if (!Model || doc.apiVersion !== "monitoring.coreos.com/v1") {
    return `no schema for ${doc.apiVersion}/${doc.kind}`;
  }
  try {
    new Model(doc).validate();
    return null;
  } catch (e) {
    return String(e.message || e);
  }
}

async function main() {
  const input = JSON.parse(readFileSync(0, "utf8"));
  const { parser } = await load("@prometheus-io/lezer-promql/dist/index.es.js");
  const models = await load("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js");
  const exprs = (input.exprs || []).map((e) => analyse(parser, e));
  const resources = [];
  for (const doc of input.resources || []) resources.push(await validateResource(models, doc));
  process.stdout.write(JSON.stringify({ exprs, resources }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
