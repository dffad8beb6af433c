#!/usr/bin/env python3
"""Deployment rules that schemas cannot express (run by deploy/validate.sh).

  policy.py compose RESOLVED.json SOURCE.yaml   # `docker compose config --format json` + source
  policy.py k8s [--kustomization K.yaml] RENDERED.yaml...
                                                 # one complete set of manifests per file; with
                                                 # --kustomization, the ConfigMaps its
                                                 # configMapGenerator makes count as present

Each rule exists because breaking it fails only in production: a drain longer than the grace
period, a secret in plain `environment:`, a Service whose selector matches no pod, ...
Prints one line per problem; exit status 1 if there is any.
"""
import json
import re
import sys

import yaml

APPS = {  # our two binaries: address variable and port
    "gateway": ("GATEWAY_ADDR", 8080),
    "ai-service": ("AI_ADDR", 8081),
}
# Their admin ports (ADMIN_ADDR: /metrics, the probes, the ai-service's admin API): internal,
# reached by Prometheus and the kubelet only, never through an Ingress or a published port.
ADMIN_PORTS = {"gateway": 9090, "ai-service": 9091}
SECRET_KEYS = {"AUTH_SECRET", "AI_SERVICE_TOKEN", "ADMIN_TOKEN", "OPENAI_API_KEY"}
# The custom metric each HPA scales on (per pod, through a metrics adapter), besides CPU.
HPA_METRICS = {
    "gateway": "streamline_gateway_connections",
    "ai-service": "streamline_ai_generations_running",
}
# Who may open connections to whom (NetworkPolicy ingress peers, by app name).
ALLOWED_PEERS = {"ai-service": {"gateway"}, "redis": {"gateway", "ai-service"}}
problems = []
generated_configmaps = {}


def problem(where, what):
    problems.append(f"{where}: {what}")


def seconds(value):
    """'500ms', '30s', '10m', '1h', '1m30s' or a number of seconds -> float."""
    if isinstance(value, (int, float)):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(value))
    if not parts or "".join(n + u for n, u in parts) != str(value).replace(" ", ""):
        raise ValueError(f"unparsable duration {value!r}")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


# ------------------------------------------------------------------------------ compose --
def check_compose(resolved_path, source_path):
    services = json.load(open(resolved_path))["services"]
    source = yaml.safe_load(open(source_path))["services"]
    for name in ("redis", "lb", *APPS):
        if name not in services:
            problem("compose", f"service {name!r} missing")
    for name, svc in services.items():
        where = f"compose {name}"
        hc = svc.get("healthcheck") or {}
        if hc.get("disable") or not hc.get("test"):
            problem(where, "no healthcheck")
        env_src = (source.get(name) or {}).get("environment") or {}
        if isinstance(env_src, list):
            env_src = dict(item.partition("=")[::2] for item in env_src)
        leaked = SECRET_KEYS & set(env_src)
        if leaked:
            problem(where, f"secrets in environment: (use the env_file): {sorted(leaked)}")
    for name, (addr_var, port) in APPS.items():
        svc = services.get(name)
        if not svc:
            continue
        where = f"compose {name}"
        env = svc.get("environment") or {}
        if env.get(addr_var) != f"0.0.0.0:{port}":
            problem(where, f"{addr_var} must be 0.0.0.0:{port}, is {env.get(addr_var)!r}")
        admin = ADMIN_PORTS[name]
        if env.get("ADMIN_ADDR") != f"0.0.0.0:{admin}":
            problem(where, f"ADMIN_ADDR must be 0.0.0.0:{admin}, is {env.get('ADMIN_ADDR')!r}")
        if any(int(p.get("target", 0)) == admin for p in svc.get("ports") or []):
            problem(where, f"the admin port {admin} must not be published")
        if (svc.get("deploy") or {}).get("replicas", 1) < 2:
            problem(where, "fewer than 2 replicas")
        if not (source.get(name) or {}).get("env_file"):  # resolved output inlines it
            problem(where, "no env_file for secrets")
        test = (svc.get("healthcheck") or {}).get("test") or []
        # The images have no curl: the binary checks itself (it reads its own address).
        if test[:3] != ["CMD", f"/usr/local/bin/{name}", "--healthcheck=ready"]:
            problem(where, f"healthcheck must be [CMD, /usr/local/bin/{name}, --healthcheck=ready]: {test}")
        grace = seconds(svc.get("stop_grace_period", "10s"))
        drain = seconds(env.get("SHUTDOWN_TIMEOUT") or "30s")
        if grace <= drain:
            problem(where, f"stop_grace_period {grace:g}s must exceed SHUTDOWN_TIMEOUT {drain:g}s")
    redis_cmd = " ".join(services.get("redis", {}).get("command") or [])
    if "--appendonly no" not in redis_cmd or "--save" not in redis_cmd:
        problem("compose redis", f"persistence not disabled: {redis_cmd!r}")


# ---------------------------------------------------------------------------------- k8s --
def check_k8s(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    deployments = by_kind.get("Deployment", {})
    services = by_kind.get("Service", {})
    configmaps = dict(by_kind.get("ConfigMap", {}))
    configmaps.update(generated_configmaps)
    secrets = by_kind.get("Secret", {})
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind.get("HorizontalPodAutoscaler", {}).values()}
    pdbs = list(by_kind.get("PodDisruptionBudget", {}).values())
    secret_names = set()

    def matches(selector, labels):
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    for app in APPS:
        if app not in deployments:
            problem(path, f"Deployment {app!r} missing")
    for name, dep in deployments.items():
        where = f"{path} Deployment/{name}"
        spec = dep["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"].get("labels", {})
        if not matches(spec["selector"].get("matchLabels"), labels):
            problem(where, "selector does not match the pod labels")
        psc = pod.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            problem(where, "pod securityContext.runAsNonRoot is not true")
        if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problem(where, "pod seccompProfile is not RuntimeDefault")
        for c in pod["containers"]:
            cwhere = f"{where} container {c['name']}"
            csc = c.get("securityContext") or {}
            if csc.get("allowPrivilegeEscalation") is not False:
                problem(cwhere, "allowPrivilegeEscalation is not false")
            if csc.get("readOnlyRootFilesystem") is not True:
                problem(cwhere, "readOnlyRootFilesystem is not true")
            if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
                problem(cwhere, "capabilities.drop lacks ALL")
            res = c.get("resources") or {}
            for need in ("requests.cpu", "requests.memory", "limits.memory"):
                section, key = need.split(".")
                if key not in (res.get(section) or {}):
                    problem(cwhere, f"resources.{need} not set")
            if not c.get("readinessProbe") or not c.get("livenessProbe"):
                problem(cwhere, "readiness and liveness probes required")
            if not c.get("startupProbe"):
                problem(cwhere, "startupProbe required (liveness must not kill a slow start)")
            for ref in c.get("envFrom") or []:
                cm = (ref.get("configMapRef") or {}).get("name")
                if cm and cm not in configmaps:
                    problem(cwhere, f"envFrom ConfigMap {cm!r} not in the manifests")
            env = {e["name"]: e for e in c.get("env") or []}
            for e in env.values():
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if not ref:
                    continue
                secret_names.add(ref["name"])
                if ref["name"] in secrets and not ref.get("optional"):
                    s = secrets[ref["name"]]
                    keys = set(s.get("data") or {}) | set(s.get("stringData") or {})
                    if ref["key"] not in keys:
                        problem(cwhere, f"required key {ref['key']!r} missing from Secret {ref['name']!r}")
                if e["name"] in ("REDIS_URL", "AUTH_SECRET") and ref.get("optional"):
                    problem(cwhere, f"{e['name']} must not be optional")
            leaked = {n for n in SECRET_KEYS if n in env and "value" in env[n]}
            if leaked:
                problem(cwhere, f"secrets as plain values: {sorted(leaked)}")
        if name not in APPS:
            continue
        addr_var, port = APPS[name]
        c = next(c for c in pod["containers"] if c["name"] == name)
        env = {e["name"]: e.get("value") for e in c.get("env") or []}
        if env.get(addr_var) != f"0.0.0.0:{port}":
            problem(where, f"{addr_var} must be 0.0.0.0:{port}")
        admin = ADMIN_PORTS[name]
        if env.get("ADMIN_ADDR") != f"0.0.0.0:{admin}":
            problem(where, f"ADMIN_ADDR must be 0.0.0.0:{admin}")
        if [(p.get("name"), p["containerPort"]) for p in c.get("ports", [])] != [("http", port), ("admin", admin)]:
            problem(where, f"container ports must be http {port} and admin {admin}")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")):
            get = (c.get(probe) or {}).get("httpGet") or {}
            if (get.get("path"), get.get("port")) != (path, "admin"):
                problem(where, f"{probe} must be GET {path} on the admin port")
        pre_stop = (c.get("lifecycle") or {}).get("preStop") or {}
        sleep = (pre_stop.get("sleep") or {}).get("seconds")
        if not isinstance(sleep, int) or set(pre_stop) != {"sleep"}:
            problem(where, "preStop must be the native `sleep: {seconds: N}` action")
            continue
        drain = seconds(env.get("SHUTDOWN_TIMEOUT") or "30s")
        budget = sleep + drain
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace < budget + 10:
            problem(where, f"terminationGracePeriodSeconds {grace} < preStop + SHUTDOWN_TIMEOUT + 10s ({budget + 10:g})")
        if name == "gateway" and seconds(env.get("DRAIN_SPREAD") or "10s") > drain / 2:
            problem(where, "DRAIN_SPREAD must be at most half of SHUTDOWN_TIMEOUT (the rest is cut)")
        if name not in hpas:
            problem(where, "no HorizontalPodAutoscaler")
        elif "replicas" in spec:
            problem(where, "sets replicas although an HPA owns it (every apply would reset the count)")
        elif hpas[name]["spec"].get("minReplicas", 1) < 2:
            problem(where, "HPA minReplicas < 2")
        if name in hpas:
            metrics = hpas[name]["spec"].get("metrics") or []
            pods = [m["pods"]["metric"]["name"] for m in metrics if m.get("type") == "Pods"]
            cpu = [m for m in metrics if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"]
            if HPA_METRICS[name] not in pods:
                problem(where, f"HPA does not scale on {HPA_METRICS[name]} (Pods metric)")
            if not cpu:
                problem(where, "HPA lost its CPU fallback")
        if not any(matches(p["spec"]["selector"].get("matchLabels"), labels) for p in pdbs):
            problem(where, "no PodDisruptionBudget selects its pods")
    if len(secret_names) > 1:
        problem(path, f"several Secret names referenced: {sorted(secret_names)}")
    for name, svc in services.items():
        where = f"{path} Service/{name}"
        targets = [d for d in deployments.values()
                   if matches(svc["spec"].get("selector"), d["spec"]["template"]["metadata"].get("labels", {}))]
        if not targets:
            problem(where, "selector matches no Deployment")
            continue
        named = {p.get("name") for c in targets[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            if isinstance(p.get("targetPort"), str) and p["targetPort"] not in named:
                problem(where, f"targetPort {p['targetPort']!r} is not a container port name")
    check_network_policies(path, deployments, by_kind.get("NetworkPolicy", {}))
    for name, sm in by_kind.get("ServiceMonitor", {}).items():
        where = f"{path} ServiceMonitor/{name}"
        sel = sm["spec"].get("selector") or {}
        chosen = [n for n, svc in services.items() if selects(sel, svc["metadata"].get("labels", {}))]
        for app in APPS:
            if app in services and app not in chosen:
                problem(where, f"does not select Service {app!r}")
        for ep in sm["spec"].get("endpoints") or []:
            if ep.get("path", "/metrics") != "/metrics":
                problem(where, f"endpoint path {ep.get('path')!r} is not /metrics")
            if ep.get("port") != "admin":
                problem(where, f"endpoint port {ep.get('port')!r} is not `admin` (/metrics is on the admin port only)")
            for n in chosen:
                if ep.get("port") not in {p.get("name") for p in services[n]["spec"]["ports"]}:
                    problem(where, f"port {ep.get('port')!r} is not a named port of Service {n!r}")
    for name, route in by_kind.get("HTTPRoute", {}).items():
        where = f"{path} HTTPRoute/{name}"
        for rule in route["spec"].get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                svc = services.get(ref.get("name"))
                if not svc:
                    problem(where, f"backend Service {ref.get('name')!r} not in the manifests")
                elif ref.get("port") not in {p["port"] for p in svc["spec"]["ports"]}:
                    problem(where, f"backend port {ref.get('port')} not on Service {ref['name']!r}")
                elif ref.get("port") in ADMIN_PORTS.values():
                    problem(where, f"backend port {ref.get('port')} is an admin port")
            if str((rule.get("timeouts") or {}).get("request")) != "0s":
                problem(where, "timeouts.request must be 0s: a fixed request timeout cuts WebSockets")
    for name, ing in by_kind.get("Ingress", {}).items():
        where = f"{path} Ingress/{name}"
        ann = ing["metadata"].get("annotations") or {}
        for key in ("proxy-read-timeout", "proxy-send-timeout"):
            value = ann.get(f"nginx.ingress.kubernetes.io/{key}")
            if value is None or int(value) < 3600:
                problem(where, f"{key} must be >= 3600 for WebSockets")
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                backend = p["backend"]["service"]
                svc = services.get(backend["name"])
                if not svc:
                    problem(where, f"backend Service {backend['name']!r} not in the manifests")
                elif backend["port"].get("name") not in {sp.get("name") for sp in svc["spec"]["ports"]} \
                        and backend["port"].get("number") not in {sp["port"] for sp in svc["spec"]["ports"]}:
                    problem(where, f"backend port {backend['port']} not on Service {backend['name']!r}")
                elif backend["port"].get("name") == "admin" or backend["port"].get("number") in ADMIN_PORTS.values():
                    problem(where, f"backend port {backend['port']} is an admin port (/metrics, /admin)")


def selects(selector, labels):
    """A label selector (matchLabels + matchExpressions) against labels."""
    if not selector:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        value, op = labels.get(e["key"]), e["operator"]
        if op == "In" and value not in e.get("values", []):
            return False
        if op == "NotIn" and value in e.get("values", []):
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def admin_port_rules(path, app, policies, labels):
    """Rules that open the admin port of `app` (a rule without `ports` opens every port) must
    admit Prometheus only; a rule that admits Prometheus must open the admin port only."""
    for pol in policies.values():
        if not selects(pol["spec"].get("podSelector"), labels):
            continue
        pwhere = f"{path} NetworkPolicy/{pol['metadata']['name']}"
        for rule in pol["spec"].get("ingress") or []:
            ports = {p.get("port") for p in rule.get("ports") or []}
            peers = rule.get("from") or [{}]
            prometheus = [((p.get("podSelector") or {}).get("matchLabels") or {}).get("app.kubernetes.io/name") == "prometheus"
                          for p in peers]
            if (not ports or "admin" in ports) and not all(prometheus):
                problem(pwhere, f"the admin port of {app} is open to more than Prometheus")
            if any(prometheus) and ports != {"admin"}:
                problem(pwhere, f"Prometheus may reach {app} on {sorted(map(str, ports)) or 'every port'}, not only `admin`")


def check_network_policies(path, deployments, policies):
    """The ai-service (and an in-cluster Redis) accept connections only from the apps named
    in ALLOWED_PEERS, plus Prometheus from another namespace for the ai-service; the admin
    ports admit Prometheus only."""
    for app in APPS:
        dep = deployments.get(app)
        if dep:
            admin_port_rules(path, app, policies, dep["spec"]["template"]["metadata"].get("labels", {}))
    for app, allowed in ALLOWED_PEERS.items():
        dep = deployments.get(app)
        if not dep:
            continue
        where = f"{path} Deployment/{app}"
        labels = dep["spec"]["template"]["metadata"].get("labels", {})
        mine = [p for p in policies.values() if selects(p["spec"].get("podSelector"), labels)
                and "Ingress" in (p["spec"].get("policyTypes") or ["Ingress"])]
        if not mine:
            problem(where, "no NetworkPolicy restricts who may connect to it")
            continue
        for pol in mine:
            pwhere = f"{path} NetworkPolicy/{pol['metadata']['name']}"
            for rule in pol["spec"].get("ingress") or []:
                peers = rule.get("from")
                if not peers:
                    problem(pwhere, f"an ingress rule without `from` lets every pod reach {app}")
                    continue
                for peer in peers:
                    if "ipBlock" in peer:
                        problem(pwhere, f"ipBlock peers are not allowed to reach {app}")
                        continue
                    ns = peer.get("namespaceSelector")
                    pod_sel = (peer.get("podSelector") or {}).get("matchLabels") or {}
                    if ns is not None:
                        # Another namespace: only Prometheus, only to the ai-service.
                        if app != "ai-service" or pod_sel.get("app.kubernetes.io/name") != "prometheus":
                            problem(pwhere, f"a namespaceSelector peer other than Prometheus reaches {app}")
                        continue
                    peer_app = pod_sel.get("app.kubernetes.io/name")
                    if peer_app not in allowed:
                        problem(pwhere, f"{peer_app or 'any pod'} may reach {app} (only {sorted(allowed)})")


def load_generated_configmaps(kustomization):
    """The ConfigMaps a kustomization's configMapGenerator makes (their env files parsed)."""
    import os
    k = yaml.safe_load(open(kustomization))
    base = os.path.dirname(kustomization)
    for gen in k.get("configMapGenerator") or []:
        data = {}
        for env in gen.get("envs") or []:
            for n, line in enumerate(open(os.path.join(base, env)), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                key, sep, value = line.partition("=")
                if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", key):
                    problem(f"{env}:{n}", f"not KEY=VALUE: {line!r}")
                data[key] = value
        generated_configmaps[gen["name"]] = {"kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data}


def main():
    mode, *args = sys.argv[1:]
    if mode == "compose":
        check_compose(*args)
    elif mode == "k8s":
        while args[:1] == ["--kustomization"]:
            load_generated_configmaps(args[1])
            args = args[2:]
        for path in args:
            check_k8s(path)
    else:
        sys.exit(f"unknown mode {mode!r}")
    for p in problems:
        print("FAIL " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
