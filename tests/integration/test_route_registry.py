"""The route registry against the real etcd, through both of its APIs (v3 gateway and v2 keys).

Same key, same JSON value in both; compare-and-swap writes (two concurrent writers of one key:
one wins, the other gets a conflict); a domain of another app is refused; the CLI reads both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from pysteps.clients.routes import EtcdConfig, EtcdV2RouteRegistry, EtcdV3RouteRegistry
from pysteps.errors import PreconditionError, ServiceError
from pysteps.routes import Route, RouteConflict
from pysteps.routing import register_route
from tests.conftest import require
from tests.integration import etcd_v3
from tests.integration.edge import SESSION, unique

pytestmark = pytest.mark.integration

NAMESPACE = "rt-registry"


@pytest.fixture(params=["v3", "v2"])
def api(request) -> str:
    return str(request.param)


@pytest.fixture
def registry(testbed, api) -> Iterator[EtcdV3RouteRegistry | EtcdV2RouteRegistry]:
    (etcd,) = require(testbed, "PYSTEPS_ETCD_URL")
    config = EtcdConfig((etcd,), api)
    reg = EtcdV3RouteRegistry(config) if api == "v3" else EtcdV2RouteRegistry(config)
    yield reg
    for stored in reg.list(NAMESPACE):
        reg.delete(NAMESPACE, stored.route.name)


def raw_value(etcd: str, api: str, key: str) -> str | None:
    """The stored value read past pysteps, through the API itself."""
    if api == "v3":
        return etcd_v3.get(etcd, key)
    resp = SESSION.get(f"{etcd}/v2/keys{key}", timeout=5)
    return None if resp.status_code == 404 else str(resp.json()["node"]["value"])


def test_the_same_key_and_json_value_in_both_apis(testbed, api, registry):
    (etcd,) = require(testbed, "PYSTEPS_ETCD_URL")
    name = unique("fmt")
    route = Route(
        NAMESPACE,
        name,
        (f"{name}.ctest.example.com",),
        ("127.0.0.11:30080", "127.0.0.12:30080"),
        {"http": 30080, "ssh": 30022},
        5,
    )
    register_route(registry, route)
    stored = json.loads(raw_value(etcd, api, f"/devnginx/{NAMESPACE}/{name}") or "null")
    assert stored == {
        "name": name,
        "namespace": NAMESPACE,
        "domains": [f"{name}.ctest.example.com"],
        "upstreams": ["127.0.0.11:30080", "127.0.0.12:30080"],
        "http_port": 30080,
        "ssh_port": 30022,
        "revision": 5,
    }
    assert registry.get(NAMESPACE, name).route == route
    assert [s.route for s in registry.list(NAMESPACE)] == [route]


def test_two_concurrent_writers_of_one_key_one_wins_one_conflicts(api, registry):
    name = unique("race")
    base = Route(NAMESPACE, name, (f"{name}.ctest.example.com",), ("127.0.0.11:30080",))
    register_route(registry, base)
    both_read = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def writer(upstream: str) -> None:
        seen = registry.get(NAMESPACE, name)
        both_read.wait(timeout=10)  # both have read the same version before either writes
        try:
            registry.put(Route(NAMESPACE, name, base.domains, (upstream,)), seen.version)
            outcomes[upstream] = "won"
        except RouteConflict as exc:
            outcomes[upstream] = f"conflict: {exc}"

    threads = [threading.Thread(target=writer, args=(u,)) for u in ("127.0.0.21:1", "127.0.0.22:1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(o.split(":")[0] for o in outcomes.values()) == ["conflict", "won"]
    winner = next(u for u, o in outcomes.items() if o == "won")
    assert registry.get(NAMESPACE, name).route.upstreams == (winner,)
    loser = next(o for o in outcomes.values() if o != "won")
    assert "changed by another writer" in loser and "rerun" in loser


def test_a_domain_of_another_app_is_refused_unless_taken(api, registry):
    owner, taker = unique("owner"), unique("taker")
    shared = f"{owner}.ctest.example.com"
    register_route(registry, Route(NAMESPACE, owner, (shared, f"{owner}-2.ctest.example.com"), ()))
    with pytest.raises(PreconditionError, match=f"belongs to /devnginx/{NAMESPACE}/{owner}"):
        register_route(registry, Route(NAMESPACE, taker, (shared,), ()))
    assert registry.get(NAMESPACE, taker) is None
    register_route(registry, Route(NAMESPACE, taker, (shared,), ()), take_domains=True)
    assert registry.get(NAMESPACE, owner).route.domains == (f"{owner}-2.ctest.example.com",)
    assert registry.get(NAMESPACE, taker).route.domains == (shared,)


def test_delete_is_compare_and_swap_too(api, registry):
    name = unique("del")
    register_route(registry, Route(NAMESPACE, name, (f"{name}.example.com",), ()))
    stale = registry.get(NAMESPACE, name)
    register_route(registry, Route(NAMESPACE, name, (f"{name}.example.com",), ("127.0.0.1:9",)))
    with pytest.raises(RouteConflict):
        registry.delete(NAMESPACE, name, stale.version)
    assert registry.delete(NAMESPACE, name, registry.get(NAMESPACE, name).version)
    assert registry.get(NAMESPACE, name) is None
    assert registry.delete(NAMESPACE, name) is False


def test_an_unreachable_etcd_is_one_clear_line(api):
    config = EtcdConfig(("http://127.0.0.1:1",), api, timeout=2)
    reg = EtcdV3RouteRegistry(config) if api == "v3" else EtcdV2RouteRegistry(config)
    with pytest.raises(ServiceError, match="etcd") as err:
        reg.list()
    assert "\n" not in str(err.value)


def test_cli_lists_and_shows_routes_of_either_api(testbed, api, registry):
    (etcd,) = require(testbed, "PYSTEPS_ETCD_URL")
    name = unique("cli")
    register_route(registry, Route(NAMESPACE, name, (f"{name}.example.com",), ("127.0.0.1:9",)))
    env = {**os.environ, "PYSTEPS_ETCD_URL": etcd, "PYSTEPS_ETCD_API": api}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pysteps", "routes", *args],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )

    listed = cli("list", "-n", NAMESPACE, "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert [r["name"] for r in json.loads(listed.stdout)] == [name]
    shown = cli("show", name, "-n", NAMESPACE)
    assert shown.returncode == 0 and "upstreams: 127.0.0.1:9" in shown.stdout
    missing = cli("show", "no-such-app", "-n", NAMESPACE)
    assert missing.returncode == 3 and "no route registered" in missing.stderr
    bad = cli("show", "Bad;Name", "-n", NAMESPACE)
    assert bad.returncode == 2 and "DNS-1123" in bad.stderr


def test_the_next_endpoint_answers_when_the_first_cannot(testbed, api):
    (etcd,) = require(testbed, "PYSTEPS_ETCD_URL")
    config = EtcdConfig(("http://127.0.0.1:1", etcd), api, timeout=2)
    reg = EtcdV3RouteRegistry(config) if api == "v3" else EtcdV2RouteRegistry(config)
    name = unique("failover")
    try:
        register_route(reg, Route(NAMESPACE, name, (f"{name}.example.com",), ()))
        assert reg.get(NAMESPACE, name) is not None
    finally:
        reg.delete(NAMESPACE, name)
