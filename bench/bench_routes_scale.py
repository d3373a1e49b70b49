"""The edge with 1,000 routes: render + check + reload time of one change (target <= 3 s),
nginx's resident memory, and `pysteps routes sync` over 1,000 routes with nothing to change
(target <= 2 s), on the test bed's etcd, confd, nginx and Kubernetes API server.

References, in the same process: the same change with only the test bed's own routes (render +
check + reload of a small config), nginx's memory before the 1,000 routes, and the three list
requests `routes sync` makes, sent directly (its floor).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import best_of, testbed_env

from pysteps.clients.kube import KubeClient
from pysteps.clients.routes import EtcdConfig, EtcdV3RouteRegistry
from pysteps.manifests import LABEL_MANAGED_BY, MANAGED_BY
from pysteps.routes import Route
from pysteps.routing import desired_route, edge_addresses, managed_service_ports
from tests.integration.edge import backends, fetch

ROUTES = 1000
EDGE = {"type": "kwok"}


def nginx_rss_kib(env: dict[str, str]) -> int:
    """Resident memory of the test bed's nginx: master and workers (one process group)."""
    pgid = int((Path(env["TESTBED_DIR"]) / "run" / "nginx.pid").read_text())
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            status = (Path("/proc") / pid / "status").read_text()
        except (OSError, ProcessLookupError):
            continue
        if "Name:\tnginx" in status:
            total += int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
    return total


def change_time(registry: EtcdV3RouteRegistry, nginx: str, namespace: str, runs: int) -> float:
    """Median seconds from writing a route change to nginx serving it."""
    name = "probe"
    domain = f"probe-{namespace}.ctest.example.com"
    times = []
    with backends("127.0.0.45", "127.0.0.46") as pair:
        for i in range(runs + 1):
            target = pair[i % 2]
            current = registry.get(namespace, name)
            t0 = time.perf_counter()
            registry.put(
                Route(namespace, name, (domain,), (target.upstream,)),
                current.version if current else None,
            )
            while fetch(nginx, domain) != (200, target.identity):
                if time.perf_counter() - t0 > 60:
                    raise SystemExit("a route change was not served within 60 s")
                time.sleep(0.02)
            if i:
                times.append(time.perf_counter() - t0)
    registry.delete(namespace, name)
    return statistics.median(times)


def main() -> None:
    env = testbed_env()
    nginx = env["PYSTEPS_NGINX_URL"]
    registry = EtcdV3RouteRegistry(EtcdConfig((env["PYSTEPS_ETCD_URL"],)))
    tag = uuid.uuid4().hex[:6]
    namespace, probe_ns = f"rt-bench-{tag}", f"rt-bench-probe-{tag}"

    small = change_time(registry, nginx, probe_ns, 5)
    rss_before = nginx_rss_kib(env)
    try:
        # Part 1, the edge: 1,000 routes (NodePorts made up; nothing answers them).
        t0 = time.perf_counter()

        def write_made_up(i: int) -> None:
            name = f"app-{i:04d}"
            registry.put(
                desired_route(
                    namespace,
                    name,
                    [f"{name}-{namespace}.ctest.example.com"],
                    {"http": 30000 + i},
                    ("127.0.0.11", "127.0.0.12"),
                ),
                None,
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write_made_up, range(ROUTES)))
        print(f"setup: {ROUTES} routes written in {time.perf_counter() - t0:.1f}s")
        big = change_time(registry, nginx, probe_ns, 5)
        rss_after = nginx_rss_kib(env)
        rendered = Path(env["TESTBED_NGINX_ROUTES_FILE"]).read_text()
        assert rendered.count("server_name ") >= ROUTES, "nginx does not have the 1,000 routes"
        print(
            f"one change with {ROUTES} routes (render + check + reload + first answer): "
            f"{big:.3f}s (target <= 3 s); with the test bed's own routes {small:.3f}s, "
            f"ratio {big / small:.1f}"
        )
        print(
            f"nginx resident memory: {rss_after / 1024:.1f} MiB with {ROUTES} routes, "
            f"{rss_before / 1024:.1f} MiB before, ratio {rss_after / max(rss_before, 1):.1f}; "
            f"rendered config {len(rendered) / 1024:.0f} KiB"
        )
        for stored in registry.list(namespace):
            registry.delete(namespace, stored.route.name)
    finally:
        for stored in registry.list(namespace):
            registry.delete(namespace, stored.route.name)

    # Part 2, routes sync: 1,000 apps with real Services (NodePorts) and their routes.
    kube = KubeClient(env["KUBECONFIG"])
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:

        def make_service(i: int) -> None:
            kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": f"app-{i:04d}",
                        "namespace": namespace,
                        # kube-proxy, if one runs, leaves these alone (no 1,000 rule sets).
                        "labels": {
                            LABEL_MANAGED_BY: MANAGED_BY,
                            "service.kubernetes.io/service-proxy-name": "pysteps-bench",
                        },
                    },
                    "spec": {
                        "type": "NodePort",
                        "selector": {"app": f"app-{i:04d}"},
                        "ports": [{"name": "http", "port": 8080}],
                    },
                }
            )

        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(make_service, range(ROUTES)))
        ports = managed_service_ports(kube, namespace)
        # The test bed's own nodes only: other nodes may come and go during the bench.
        addresses = edge_addresses(kube.list("Node", None, EDGE))

        def write_route(key: tuple[str, str]) -> None:
            ns, name = key
            domains = (f"{name}-{ns}.ctest.example.com",)
            registry.put(desired_route(ns, name, domains, ports[key], addresses), None)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write_route, sorted(ports)))
        print(f"setup: {ROUTES} Services and routes in {time.perf_counter() - t0:.1f}s")

        cli = [sys.executable, "-m", "pysteps", "routes", "sync", "-n", namespace]
        cli_env = {**os.environ, "PYSTEPS_ETCD_URL": env["PYSTEPS_ETCD_URL"]}
        cli_env["KUBECONFIG"] = env["KUBECONFIG"]
        cli_env["PYSTEPS_EDGE_NODE_SELECTOR"] = ",".join(f"{k}={v}" for k, v in EDGE.items())
        out = subprocess.run(cli, capture_output=True, text=True, env=cli_env, check=False)
        assert out.returncode == 0, out.stderr
        assert "nothing to change" in out.stderr, out.stdout + out.stderr
        ours = best_of(lambda: subprocess.run(cli, capture_output=True, env=cli_env, check=True), 3)

        def floor() -> None:
            registry.list(namespace)
            managed_service_ports(kube, namespace)
            kube.list("Node", None, EDGE)

        reference = best_of(floor, 3)
        print(
            f"routes sync over {ROUTES} routes, nothing to change: {ours:.3f}s (target <= 2 s); "
            f"its three list requests alone {reference:.3f}s, ratio {ours / reference:.1f} "
            "(the rest: interpreter start and comparing)"
        )
    finally:
        for stored in registry.list(namespace):
            registry.delete(namespace, stored.route.name)
        kube.delete("Namespace", None, namespace)


if __name__ == "__main__":
    main()
