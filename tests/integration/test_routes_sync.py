"""`pysteps routes sync` against the real API server: routes follow the nodes, and nginx follows.

Two Node objects of this test (kwok keeps them Ready) with loopback InternalIPs where backends
answer on the app's real NodePort, labelled for this test only (PYSTEPS_EDGE_NODE_SELECTOR
narrows the edge to them) and tainted so that no one else's pods land on them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pysteps.clients.routes import EtcdConfig, EtcdV3RouteRegistry
from pysteps.routes import Route
from pysteps.routing import register_route
from tests.conftest import require
from tests.integration.edge import backends, fetch, wait_until

pytestmark = pytest.mark.integration

ADDRESSES = ("127.0.0.51", "127.0.0.52")


@dataclass
class Cluster:
    testbed: dict[str, str]
    tag: str
    namespace: str
    nodes: tuple[str, str]

    @property
    def selector(self) -> str:
        return f"pysteps-test/rt-edge={self.tag}"

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            [self.testbed["TESTBED_KUBECTL"], "--kubeconfig", self.testbed["KUBECONFIG"], *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
        return out.stdout

    def sync(self) -> str:
        """`pysteps routes sync -n NS` for the test's nodes; what it printed (out and err)."""
        env = {
            **os.environ,
            "KUBECONFIG": self.testbed["KUBECONFIG"],
            "PYSTEPS_ETCD_URL": self.testbed["PYSTEPS_ETCD_URL"],
            "PYSTEPS_ETCD_API": "v3",
            "PYSTEPS_EDGE_NODE_SELECTOR": self.selector,
        }
        out = subprocess.run(
            [sys.executable, "-m", "pysteps", "routes", "sync", "-n", self.namespace],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout + out.stderr


def node_manifest(name: str, tag: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"pysteps-test/rt-edge": tag, "type": "rt-test"},
            },
            "spec": {"taints": [{"key": "pysteps-test/rt", "value": tag, "effect": "NoSchedule"}]},
        }
    )


@pytest.fixture
def cluster(testbed) -> Iterator[Cluster]:
    require(testbed, "KUBECONFIG", "TESTBED_KUBECTL", "PYSTEPS_ETCD_URL")
    tag = uuid.uuid4().hex[:8]
    c = Cluster(dict(testbed), tag, f"rt-sync-{tag}", (f"rt-node-{tag}-a", f"rt-node-{tag}-b"))
    c.kubectl("create", "namespace", c.namespace)
    try:
        for name, ip in zip(c.nodes, ADDRESSES):
            c.kubectl("apply", "-f", "-", stdin=node_manifest(name, tag))
            status = {
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": ip},
                        {"type": "Hostname", "address": name},
                    ]
                }
            }
            c.kubectl("patch", "node", name, "--subresource", "status", "--type", "merge", "-p",
                      json.dumps(status))  # fmt: skip
        jsonpath = '{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'
        wait_until(
            lambda: c.kubectl("get", "nodes", "-l", c.selector, "-o", f"jsonpath={jsonpath}"),
            lambda out: out.split() == ["True", "True"],
            "kwok to make the test's nodes Ready",
            timeout=60,
        )
        yield c
    finally:
        for name in c.nodes:
            subprocess.run(
                [testbed["TESTBED_KUBECTL"], "--kubeconfig", testbed["KUBECONFIG"], "delete",
                 "node", name, "--ignore-not-found", "--wait=false"],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
        c.kubectl("delete", "namespace", c.namespace, "--wait=false")
        registry = EtcdV3RouteRegistry(EtcdConfig((testbed["PYSTEPS_ETCD_URL"],)))
        for stored in registry.list(c.namespace):
            registry.delete(c.namespace, stored.route.name)


def identities(nginx: str, domain: str, count: int = 8) -> set[tuple[int, str]]:
    return {fetch(nginx, domain) for _ in range(count)}


def test_routes_follow_nodes_and_apps_and_nginx_follows_the_routes(testbed, cluster):
    (nginx,) = require(testbed, "PYSTEPS_NGINX_URL")
    registry = EtcdV3RouteRegistry(EtcdConfig((testbed["PYSTEPS_ETCD_URL"],)))
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "web",
                    "namespace": cluster.namespace,
                    "labels": {
                        "app.kubernetes.io/managed-by": "pysteps",
                        # kube-proxy (when the test bed runs one) leaves this Service alone:
                        # else it rejects its NodePort on every local address, ours included.
                        "service.kubernetes.io/service-proxy-name": "pysteps-test",
                    },
                },
                "spec": {
                    "type": "NodePort",
                    "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 8080}],
                },
            }
        ),
    )
    node_port = int(
        cluster.kubectl(
            "-n", cluster.namespace, "get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}"
        )
    )
    domain = f"web-{cluster.tag}.ctest.example.com"
    # Registered before any node is known (as a deploy on a cluster without edge nodes would).
    register_route(registry, Route(cluster.namespace, "web", (domain,), ()))
    a, b = (f"{ip}:{node_port}" for ip in ADDRESSES)
    with backends(*ADDRESSES, port=node_port) as (on_a, on_b):
        out = cluster.sync()
        assert f"update /devnginx/{cluster.namespace}/web: +{a} +{b}" in out
        wait_until(
            lambda: identities(nginx, domain),
            lambda seen: seen == {(200, on_a.identity), (200, on_b.identity)},
            "nginx to spread requests over both nodes",
        )
        version = registry.get(cluster.namespace, "web").version
        again = cluster.sync()
        assert "1 routes checked: nothing to change" in again
        assert registry.get(cluster.namespace, "web").version == version  # nothing written

        cluster.kubectl("cordon", cluster.nodes[0])  # drained: no longer an upstream
        out = cluster.sync()
        assert f"-{a}" in out
        assert registry.get(cluster.namespace, "web").route.upstreams == (b,)
        wait_until(
            lambda: identities(nginx, domain),
            lambda seen: seen == {(200, on_b.identity)},
            "traffic to leave the drained node",
        )

        cluster.kubectl("uncordon", cluster.nodes[0])
        cluster.kubectl("delete", "node", cluster.nodes[1])  # removed
        out = cluster.sync()
        assert f"+{a}" in out and f"-{b}" in out
        wait_until(
            lambda: identities(nginx, domain),
            lambda seen: seen == {(200, on_a.identity)},
            "traffic to follow the nodes",
        )

    cluster.kubectl("-n", cluster.namespace, "delete", "service", "web")  # the app is gone
    deadline = time.monotonic() + 30
    while cluster.kubectl("-n", cluster.namespace, "get", "svc", "-o", "name").strip():
        assert time.monotonic() < deadline, "the Service did not go"
        time.sleep(0.2)
    out = cluster.sync()
    assert f"remove /devnginx/{cluster.namespace}/web: the app's Service is gone" in out
    assert registry.get(cluster.namespace, "web") is None
    wait_until(lambda: fetch(nginx, domain)[0], lambda s: s == 404, "404 once the app is gone")
