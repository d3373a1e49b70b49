"""The edge with 1,000 routes: render + check + reload time of one change (target <= 3 s),
nginx's resident memory, and `pysteps routes sync` over 1,000 routes with nothing to change
(target <= 2 s), on the test bed's etcd, confd, nginx and Kubernetes API server.

References, in the same process: the same change with only the test bed's own routes (render +
check + reload of a small config), nginx's memory before the 1,000 routes, and the three list
requests `routes sync` makes, sent directly (its floor).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
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


def group_rss_kib(pgid: int) -> int:
    """Resident memory of the nginx processes of one process group (master and workers)."""
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


def fresh_nginx_rss_kib(routes: str) -> int:
    """RSS of a fresh nginx (master + 1 worker) that loads ROUTES, a rendered routes file, on
    free loopback ports: the test bed's own nginx keeps the heap of every earlier config."""
    scratch = Path(tempfile.mkdtemp(prefix="rt-bench-nginx-"))
    try:
        ports = []
        for _ in range(2):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                ports.append(s.getsockname()[1])
        text = re.sub(r"listen 127\.0\.0\.1:\d+ ssl", f"listen 127.0.0.1:{ports[1]} ssl", routes)
        text = re.sub(
            r"listen 127\.0\.0\.1:\d+(;| default_server)", rf"listen 127.0.0.1:{ports[0]}\1", text
        )
        (scratch / "routes.conf").write_text(text)
        (scratch / "tmp").mkdir()
        (scratch / "nginx.conf").write_text(
            f"""daemon off; user root root; worker_processes 1; pid {scratch}/nginx.pid;
error_log stderr notice; events {{ worker_connections 512; }}
http {{ access_log off; client_body_temp_path {scratch}/tmp; proxy_temp_path {scratch}/tmp;
server_names_hash_bucket_size 512; server_names_hash_max_size 65536;
map_hash_bucket_size 512; map_hash_max_size 65536; include {scratch}/routes.conf; }}
"""
        )
        proc = subprocess.Popen(
            ["nginx", "-e", "stderr", "-p", f"{scratch}/", "-c", f"{scratch}/nginx.conf"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            rss = 0
            while time.monotonic() < deadline:
                time.sleep(1)
                rss = group_rss_kib(proc.pid)
                workers = subprocess.run(
                    ["pgrep", "-g", str(proc.pid), "-c"], capture_output=True, text=True
                ).stdout.strip()
                if workers == "2":
                    break
            return rss
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def change_time(registry: EtcdV3RouteRegistry, nginx: str, namespace: str, runs: int) -> float:
    """Median seconds from writing a route change to nginx serving it."""
    name = "probe"
    domain = f"probe-{namespace}.ctest.example.com"
    times = []
    try:
        for i in range(runs + 1):
            # A new backend (new port, new identity) per change: an nginx worker of an older
            # config, still answering for a moment after a reload, can never pass for the new.
            with backends("127.0.0.45") as (target,):
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
    finally:
        registry.delete(namespace, name)
    return statistics.median(times)


def main() -> None:
    env = testbed_env()
    nginx = env["PYSTEPS_NGINX_URL"]
    registry = EtcdV3RouteRegistry(EtcdConfig((env["PYSTEPS_ETCD_URL"],)))
    tag = uuid.uuid4().hex[:6]
    namespace, probe_ns = f"rt-bench-{tag}", f"rt-bench-probe-{tag}"

    small = change_time(registry, nginx, probe_ns, 5)
    rss_before = fresh_nginx_rss_kib(Path(env["TESTBED_NGINX_ROUTES_FILE"]).read_text())
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
        rendered = Path(env["TESTBED_NGINX_ROUTES_FILE"]).read_text()
        rss_after = fresh_nginx_rss_kib(rendered)
        assert rendered.count("server_name ") >= ROUTES, "nginx does not have the 1,000 routes"
        print(
            f"one change with {ROUTES} routes (render + check + reload + first answer): "
            f"{big:.3f}s (target <= 3 s); with the test bed's own routes {small:.3f}s, "
            f"ratio {big / small:.1f}; load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} CPUs"
        )
        print(
            f"nginx resident memory (fresh master + worker): {rss_after / 1024:.1f} MiB with "
            f"{ROUTES} routes, {rss_before / 1024:.1f} MiB with the test bed's own, "
            f"ratio {rss_after / max(rss_before, 1):.1f}; "
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
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = best_of(lambda: subprocess.run(cli, capture_output=True, env=cli_env, check=True), 3)
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / 3

        def floor() -> None:
            registry.list(namespace)
            managed_service_ports(kube, namespace)
            kube.list("Node", None, EDGE)

        reference = best_of(floor, 3)
        print(
            f"routes sync over {ROUTES} routes, nothing to change: {ours:.3f}s (target <= 2 s); "
            f"its three list requests alone {reference:.3f}s, ratio {ours / reference:.1f} "
            "(the rest: interpreter start and comparing); "
            f"CPU time {cpu:.3f}s per run; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs"
        )
    finally:
        for stored in registry.list(namespace):
            registry.delete(namespace, stored.route.name)
        kube.delete("Namespace", None, namespace)


if __name__ == "__main__":
    main()
