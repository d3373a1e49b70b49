"""What pysteps manages on a cluster, read with one list request per kind."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pysteps.clients.kube import KubeApi
from pysteps.manifests import ANN_COMMIT, ANN_DOMAINS, ANN_MODE, LABEL_MANAGED_BY, MANAGED_BY
from pysteps.workloads import (
    service_from_object,
    workload_from_controllers,
    workload_from_deployment,
)


@dataclass(frozen=True)
class AppSummary:
    namespace: str
    name: str
    mode: str
    kind: str
    version: str  # image (mode image) or commit (mode code)
    ready: int
    desired: int
    node_ports: dict[str, int]
    domains: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> tuple[str, ...]:
        ports = ",".join(f"{k}:{v}" for k, v in sorted(self.node_ports.items())) or "-"
        return (
            self.namespace,
            self.name,
            self.mode,
            self.kind,
            self.version,
            f"{self.ready}/{self.desired}",
            ports,
            ",".join(self.domains) or "-",
        )


def list_apps(kube: KubeApi, namespace: str | None = None) -> list[AppSummary]:
    """Every managed app: three list requests in all, whatever the number of apps."""
    selector = {LABEL_MANAGED_BY: MANAGED_BY}
    deployments = kube.list("Deployment", namespace, selector)
    controllers = kube.list("ReplicationController", namespace, selector)
    services = {
        (s["metadata"]["namespace"], s["metadata"]["name"]): s
        for s in kube.list("Service", namespace, selector)
    }
    apps: list[AppSummary] = []
    for dep in deployments:
        apps.append(_summary(dep, workload_from_deployment(dep), services))
    by_app: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rc in controllers:
        app = rc["metadata"].get("labels", {}).get("app.kubernetes.io/name", "")
        by_app.setdefault((rc["metadata"]["namespace"], app), []).append(rc)
    for (ns, app), rcs in by_app.items():
        wl = workload_from_controllers(rcs)
        newest = next(rc for rc in rcs if rc["metadata"]["name"] == wl.name)
        apps.append(_summary(newest, wl, services, name=app, namespace=ns))
    return sorted(apps, key=lambda a: (a.namespace, a.name))


def _summary(
    obj: dict[str, Any],
    wl: Any,
    services: dict[tuple[str, str], dict[str, Any]],
    name: str | None = None,
    namespace: str | None = None,
) -> AppSummary:
    meta = obj["metadata"]
    ns = namespace or meta["namespace"]
    app = name or meta["name"]
    ann = meta.get("annotations") or {}
    mode = ann.get(ANN_MODE, "?")
    if mode == "code":
        version = (wl.code_commit or ann.get(ANN_COMMIT) or "?")[:12]
    else:
        image = wl.image or "?"
        version = image.rsplit("/", 1)[-1]
        if "@sha256:" in version:
            version = version.split("@sha256:")[0] + "@" + version.split("@sha256:")[1][:12]
    svc = services.get((ns, app))
    node_ports = service_from_object(svc).node_ports() if svc else {}
    domains = tuple(d for d in ann.get(ANN_DOMAINS, "").split(",") if d)
    return AppSummary(
        ns, app, mode, wl.kind, version, wl.ready_replicas, wl.replicas, node_ports, domains
    )


def app_status(kube: KubeApi, routes: Any, namespace: str, name: str) -> dict[str, Any] | None:
    """Everything about one app, as data plus readable lines; None when it does not exist."""
    from pysteps.lock import LEASE_PREFIX
    from pysteps.rollout import pod_problems, pod_ready
    from pysteps.workloads import Workloads, app_selector

    workloads = Workloads(kube, log=lambda _line: None)
    wl = workloads.observe(namespace, name)
    if wl is None:
        return None
    svc = workloads.observe_service(namespace, name)
    pods = kube.list("Pod", namespace, app_selector(name))
    problems = {p.pod: p for p in pod_problems(pods)}
    lines = [
        f"app:       {namespace}/{name}",
        f"workload:  {wl.kind} {wl.name} revision {wl.revision}, "
        f"{wl.ready_replicas}/{wl.replicas} ready",
        f"commit:    {wl.commit or '?'}",
        f"image:     {wl.image or '?'}",
    ]
    if wl.code_commit:
        lines.append(f"code:      {wl.code_commit}")
    if wl.controllers:
        lines.append("controllers: " + ", ".join(f"{n} ({r} replicas)" for n, r in wl.controllers))
    pod_rows = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        st = pod.get("status", {})
        restarts = sum(int(c.get("restartCount", 0)) for c in st.get("containerStatuses") or [])
        problem = problems.get(pod["metadata"]["name"])
        pod_rows.append(
            {
                "name": pod["metadata"]["name"],
                "phase": st.get("phase", "?"),
                "ready": pod_ready(pod),
                "restarts": restarts,
                "host_ip": st.get("hostIP"),
                "problem": problem.reason if problem else None,
            }
        )
    lines.append(f"pods:      {len(pod_rows)}")
    for row in pod_rows:
        flag = "ready" if row["ready"] else "NOT READY"
        extra = f" {row['problem']}" if row["problem"] else ""
        lines.append(
            f"  {row['name']}  {row['phase']}  {flag}  restarts {row['restarts']}  "
            f"node {row['host_ip'] or '-'}{extra}"
        )
    node_ports = svc.node_ports() if svc else {}
    lines.append(
        "service:   "
        + (", ".join(f"{k} -> nodePort {v}" for k, v in sorted(node_ports.items())) or "none")
    )
    stored = routes.get(namespace, name) if routes.observable else None
    route = stored.route if stored is not None else None
    if route is not None:
        lines.append(
            f"route:     {', '.join(route.domains)} -> {', '.join(route.upstreams) or '-'}"
        )
        if route.canary is not None:
            c = route.canary
            lines.append(f"canary:    {c.name} at {c.weight} % -> {', '.join(c.servers) or '-'}")
    lease = kube.get("Lease", namespace, LEASE_PREFIX + name)
    holder = (lease or {}).get("spec", {}).get("holderIdentity")
    if holder:
        lines.append(f"deploying: {holder}")
    return {
        "namespace": namespace,
        "name": name,
        "kind": wl.kind,
        "workload": wl.name,
        "revision": wl.revision,
        "ready": wl.ready_replicas,
        "desired": wl.replicas,
        "commit": wl.commit,
        "image": wl.image,
        "code_commit": wl.code_commit,
        "pods": pod_rows,
        "node_ports": node_ports,
        "route": None
        if route is None
        else {
            "domains": route.domains,
            "upstreams": route.upstreams,
            "canary": route.canary.to_dict() if route.canary else None,
        },
        "deploying": holder,
        "lines": lines,
    }
