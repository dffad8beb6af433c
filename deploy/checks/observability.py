#!/usr/bin/env python3
"""The dashboard and the alert rules name only documented series (run by deploy/validate.sh).

  observability.py check DOCS.md DASHBOARD.json RULES.yaml [--promtool-dir DIR]
  observability.py selftest

`check`: every metric name in the dashboard's queries and the PrometheusRule's expressions is
a series of the table in docs/OBSERVABILITY.md (a histogram also as `_bucket`, `_sum`,
`_count`), or `up`; the PrometheusRule has the structure the Prometheus Operator expects (a
schema check of our own: the CRD's schema is not in kubernetes-validate's set). With
--promtool-dir, writes `rules.yaml` (the rule groups) and `dashboard.yaml` (every dashboard
query as a recording rule, Grafana's `$__rate_interval` as 5m) for `promtool check rules`,
which parses every expression with Prometheus's own parser.

Metric names are taken from PromQL by removing strings, label matchers `{...}`, ranges
`[...]`, the label lists of `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`,
function calls and keywords: what is left are series names.
Prints one line per problem; exit status 1 if there is any.
"""
import json
import re
import sys

import yaml

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "atan2", "inf", "nan", "start", "end",
}
BUILTIN_SERIES = {"up"}  # made by Prometheus itself for every target
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def documented(path):
    """{series: type} of the docs table (rows starting with | `streamline_...`)."""
    table = {}
    for line in open(path):
        if line.startswith("| `streamline_"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            table[cells[0].strip("`")] = cells[1]
    return table


def metric_names(expr):
    """The series names an expression reads."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        after = e[m.end():].lstrip()
        if after.startswith("("):
            continue  # a function or an aggregation
        if word.lower() in KEYWORDS or DURATION.match(word):
            continue
        # Digits glued to a letter (1e-9, 0x1f) are numbers, not names.
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue
        names.add(word)
    return names


def check_names(where, expr, table):
    for name in sorted(metric_names(expr)):
        if name in table or name in BUILTIN_SERIES:
            continue
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if base and table.get(base) == "histogram":
            continue
        problem(where, f"`{name}` is not a documented series (docs/OBSERVABILITY.md): {expr}")


def dashboard_exprs(path):
    dash = json.load(open(path))
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets") or []:
                if t.get("expr"):
                    out.append((f"dashboard panel {p.get('title')!r} {t.get('refId')}", t["expr"]))
            walk(p.get("panels") or [])

    walk(dash.get("panels") or [])
    if not out:
        problem(path, "no queries found")
    return out


def check_rule_object(path):
    """Schema of a monitoring.coreos.com/v1 PrometheusRule; returns its groups."""
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    rules = [d for d in docs if d.get("kind") == "PrometheusRule"]
    if len(rules) != 1:
        problem(path, f"expected one PrometheusRule, found {len(rules)}")
        return []
    obj = rules[0]
    if obj.get("apiVersion") != "monitoring.coreos.com/v1":
        problem(path, f"apiVersion {obj.get('apiVersion')!r}")
    if not (obj.get("metadata") or {}).get("name"):
        problem(path, "metadata.name missing")
    spec = obj.get("spec") or {}
    if set(spec) - {"groups"}:
        problem(path, f"unknown spec fields {sorted(set(spec) - {'groups'})}")
    groups = spec.get("groups")
    if not isinstance(groups, list) or not groups:
        problem(path, "spec.groups must be a non-empty list")
        return []
    seen_groups, seen_alerts = set(), set()
    allowed_group = {"name", "interval", "rules", "limit", "partial_response_strategy", "query_offset", "labels"}
    allowed_rule = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
    for g in groups:
        name = g.get("name")
        where = f"{path} group {name!r}"
        if not name or name in seen_groups:
            problem(where, "group names must be present and unique")
        seen_groups.add(name)
        if set(g) - allowed_group:
            problem(where, f"unknown fields {sorted(set(g) - allowed_group)}")
        if "interval" in g and not DURATION.match(str(g["interval"])):
            problem(where, f"interval {g['interval']!r} is not a duration")
        for r in g.get("rules") or []:
            rwhere = f"{where} rule {r.get('alert') or r.get('record')!r}"
            if set(r) - allowed_rule:
                problem(rwhere, f"unknown fields {sorted(set(r) - allowed_rule)}")
            if ("alert" in r) == ("record" in r):
                problem(rwhere, "exactly one of alert and record")
            if not isinstance(r.get("expr"), str) or not r["expr"].strip():
                problem(rwhere, "expr must be a non-empty string")
            for key in ("for", "keep_firing_for"):
                if key in r and not DURATION.match(str(r[key])):
                    problem(rwhere, f"{key} {r[key]!r} is not a duration")
            for key in ("labels", "annotations"):
                m = r.get(key) or {}
                if not isinstance(m, dict) or not all(isinstance(v, str) for v in m.values()):
                    problem(rwhere, f"{key} must map names to strings")
            if "alert" in r:
                if r["alert"] in seen_alerts:
                    problem(rwhere, "alert names must be unique")
                seen_alerts.add(r["alert"])
                if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                    problem(rwhere, "labels.severity must be critical, warning or info")
                for a in ("summary", "description"):
                    if not (r.get("annotations") or {}).get(a):
                        problem(rwhere, f"annotations.{a} missing")
    return groups


def check(docs, dashboard, rules, promtool_dir=None):
    table = documented(docs)
    if len(table) < 10:
        problem(docs, f"only {len(table)} documented series found")
    queries = dashboard_exprs(dashboard)
    for where, expr in queries:
        check_names(where, expr, table)
    groups = check_rule_object(rules)
    for g in groups:
        for r in g.get("rules") or []:
            check_names(f"rule {r.get('alert') or r.get('record')!r}", r.get("expr") or "", table)
    if promtool_dir:
        with open(f"{promtool_dir}/rules.yaml", "w") as f:
            yaml.safe_dump({"groups": groups}, f, sort_keys=False)
        recording = [
            {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
            for i, (_, expr) in enumerate(queries)
        ]
        with open(f"{promtool_dir}/dashboard.yaml", "w") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recording}]}, f, sort_keys=False)
    n_rules = sum(len(g.get("rules") or []) for g in groups)
    return f"{len(queries)} dashboard queries and {n_rules} rules name only the {len(table)} documented series"


def selftest():
    cases = {
        'sum by (le) (rate(streamline_x_bucket{a="b"}[5m]))': {"streamline_x_bucket"},
        "histogram_quantile(0.99, sum by (le, op) (rate(a_b[$__rate_interval])))": {"a_b"},
        "x / clamp_min(y, 1e-9) > 0.05": {"x", "y"},
        '(m == 0) or on(pod) (n{job=~"a|b"} offset 1h) and ignoring (x) z': {"m", "n", "z"},
        "increase(c_total[15m]) > 3 unless up == 0": {"c_total", "up"},
        'label_replace(q, "dst", "$1", "src", "(.*)")': {"q"},
    }
    for expr, want in cases.items():
        got = metric_names(expr)
        assert got == want, f"{expr}: {got} != {want}"
    print(f"selftest: {len(cases)} expressions ok")
    return 0


def main():
    args = sys.argv[1:]
    if args[:1] == ["selftest"]:
        return selftest()
    if args[:1] != ["check"] or len(args) not in (4, 6):
        sys.exit(__doc__)
    promtool_dir = args[5] if len(args) == 6 and args[4] == "--promtool-dir" else None
    summary = check(args[1], args[2], args[3], promtool_dir)
    for p in problems:
        print("FAIL " + p)
    if not problems:
        print(summary)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
