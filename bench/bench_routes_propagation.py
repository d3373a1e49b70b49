"""Propagation of a route change from the etcd write to nginx serving it, over 50 changes
(targets: p50 <= 1 s, p95 <= 2 s), through pysteps' registry, confd -watch and nginx reloads.

Each change points the route at a new loopback backend that answers its own identity, so
"served" means a response from the new backend, never from a worker of an older config.
Reference, in the same process: the etcd write alone (the floor any registry-driven edge pays).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import testbed_env

from pysteps.clients.routes import EtcdConfig, EtcdV3RouteRegistry
from pysteps.routes import Route
from pysteps.routing import register_route
from tests.integration.edge import backends, fetch

CHANGES = 50
NAMESPACE = "rt-bench"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    env = testbed_env()
    nginx = env["PYSTEPS_NGINX_URL"]
    registry = EtcdV3RouteRegistry(EtcdConfig((env["PYSTEPS_ETCD_URL"],)))
    name = f"prop-{uuid.uuid4().hex[:8]}"
    domain = f"{name}.ctest.example.com"
    delays: list[float] = []
    writes: list[float] = []
    try:
        for i in range(CHANGES + 1):
            # A new backend (new port, new identity) per change: an nginx worker of an older
            # config, still answering for a moment after a reload, can never pass for the new.
            with backends("127.0.0.41") as (target,):
                route = Route(NAMESPACE, name, (domain,), (target.upstream,), revision=i)
                t0 = time.perf_counter()
                register_route(registry, route)
                written = time.perf_counter()
                deadline = written + 30
                while fetch(nginx, domain) != (200, target.identity):
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"change {i}: not served after 30 s")
                    time.sleep(0.01)
                if i:  # the first one creates the route: not a change
                    delays.append(time.perf_counter() - t0)
                    writes.append(written - t0)
    finally:
        registry.delete(NAMESPACE, name)
    p50, p95 = statistics.median(delays), percentile(delays, 95)
    floor = statistics.median(writes)
    print(
        f"propagation over {CHANGES} changes: p50 {p50:.3f}s (target <= 1 s), "
        f"p95 {p95:.3f}s (target <= 2 s), max {max(delays):.3f}s"
    )
    print(
        f"reference: the registry write alone, median {floor:.4f}s; "
        f"p50 ratio {p50 / floor:.1f}x (confd render + nginx -t + reload + first answer)"
    )


if __name__ == "__main__":
    main()
