"""Routes: the stored format, validation, edge nodes, domain ownership, sync, configuration."""

from __future__ import annotations

import json

import pytest

from pysteps.clients.routes import (
    EtcdConfig,
    EtcdV2RouteRegistry,
    EtcdV3RouteRegistry,
    LogRouteRegistry,
    route_registry_from_env,
)
from pysteps.errors import InputError, PreconditionError
from pysteps.routes import Canary, Route, RouteConflict, StoredRoute, split_route_key
from pysteps.routing import (
    desired_route,
    edge_addresses,
    parse_node_selector,
    plan_route_sync,
    register_route,
    sync_routes,
)
from tests.unit.fakes import FakeKube, MemoryRouteRegistry, node


def route(name="hello", domains=("hello.example.com",), upstreams=("127.0.0.11:30080",), **kw):
    return Route("team-a", name, tuple(domains), tuple(upstreams), **kw)


# Format --------------------------------------------------------------------------------


def test_the_stored_value_has_the_documented_members():
    r = route(node_ports={"http": 30080, "ssh": 30022}, revision=4)
    data = json.loads(r.to_json())
    assert data == {
        "name": "hello",
        "namespace": "team-a",
        "domains": ["hello.example.com"],
        "upstreams": ["127.0.0.11:30080"],
        "http_port": 30080,
        "ssh_port": 30022,
        "revision": 4,
    }
    assert "https_port" not in data and "canary" not in data
    assert Route.from_json(r.key, r.to_json()) == r


def test_a_canary_is_stored_with_its_weight_and_own_servers():
    canary = Canary("a-canary", 10, ("127.0.0.11:31500",), 31500, "c" * 40)
    r = Route("team-a", "a", ("a.example.com",), ("127.0.0.11:30080",), canary=canary)
    data = json.loads(r.to_json())
    assert data["canary"] == {
        "name": "a-canary",
        "weight": 10,
        "servers": ["127.0.0.11:31500"],
        "http_port": 31500,
        "commit": "c" * 40,
    }
    assert '"upstreams"' not in json.dumps(data["canary"])  # templates find one such member
    assert Route.from_json(r.key, r.to_json()) == r


@pytest.mark.parametrize(
    "canary, message",
    [
        (Canary("a-canary", 0), "canary weight"),
        (Canary("a-canary", 100), "canary weight"),
        (Canary("A canary", 10), "canary name"),
        (Canary("a-canary", 10, ("x:1",)), "canary server"),
        (Canary("a-canary", 10, commit="main; rm"), "canary commit"),
    ],
)
def test_a_bad_canary_is_refused(canary, message):
    with pytest.raises(InputError, match=message):
        route(canary=canary).validate()


def test_routes_of_the_old_format_are_read():
    raw = '{"namespace": "t", "name": "a", "domains": ["a.example.com"], "upstreams": [], '
    raw += '"ports": {"http": 30080}}'
    assert Route.from_json("/devnginx/t/a", raw).node_ports == {"http": 30080}


@pytest.mark.parametrize(
    "key",
    [
        "/devnginx/a",
        "/devnginx/a/b/c",
        "devnginx/a/b",
        "/other/a/b",
        "/devnginx/A/b",
        "/devnginx//b",
    ],
)
def test_only_namespace_and_name_keys_are_routes(key):
    assert split_route_key(key) is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"domains": ("bad;host.com",)}, "route domain"),
        ({"domains": ("a.example.com\n}",)}, "route domain"),
        ({"domains": ()}, "domains is empty"),
        ({"upstreams": ("node-1:30080",)}, "route upstream"),
        ({"upstreams": ("127.0.0.1:0",)}, "route upstream"),
        ({"upstreams": ("127.0.0.1:80; return 200",)}, "route upstream"),
        ({"node_ports": {"http": 70000}}, "route port"),
        ({"node_ports": {"admin": 30000}}, "route port"),
    ],
)
def test_hostile_values_are_refused_before_any_write(kwargs, message):
    registry = MemoryRouteRegistry()
    with pytest.raises(InputError, match=message):
        registry.put(route(**kwargs), None)
    assert registry.values == {}


# Edge nodes ----------------------------------------------------------------------------


def test_upstreams_are_every_ready_schedulable_node_not_where_pods_run():
    nodes = [
        node("a", "127.0.0.12"),
        node("b", "127.0.0.11"),
        node("drained", "127.0.0.13", unschedulable=True),
        node("down", "127.0.0.14", ready=False),
        node("two", "127.0.0.11"),
    ]
    assert edge_addresses(nodes) == ("127.0.0.11", "127.0.0.12")
    r = desired_route("t", "a", ["a.example.com"], {"ssh": 30022, "http": 30080}, ["127.0.0.11"])
    assert r.upstreams == ("127.0.0.11:30080",)
    no_http = desired_route("t", "a", ["a.example.com"], {"https": 30443}, ["127.0.0.11"])
    assert no_http.upstreams == ("127.0.0.11:30443",)


@pytest.mark.parametrize("text", ["edge", "=x", "a=b;c", "a=b c"])
def test_a_malformed_edge_selector_names_the_variable(text):
    with pytest.raises(InputError, match="PYSTEPS_EDGE_NODE_SELECTOR"):
        parse_node_selector(text)


def test_edge_selector_pairs():
    assert parse_node_selector(" edge=true, pysteps.io/zone=a ") == {
        "edge": "true",
        "pysteps.io/zone": "a",
    }
    assert parse_node_selector(None) == {}


# Registering ---------------------------------------------------------------------------


def test_a_domain_owned_by_another_app_is_refused_and_nothing_changes():
    registry = MemoryRouteRegistry()
    register_route(registry, route("owner", ("shared.example.com", "own.example.com")))
    before = dict(registry.values)
    with pytest.raises(PreconditionError, match=r"shared\.example\.com belongs to") as err:
        register_route(registry, route("thief", ("shared.example.com",)))
    assert err.value.exit_code == 3
    assert registry.values == before


def test_take_domains_moves_the_domain_from_its_owner():
    registry = MemoryRouteRegistry()
    register_route(registry, route("owner", ("shared.example.com", "own.example.com")))
    register_route(registry, route("solo", ("solo.example.com",)))
    register_route(
        registry, route("taker", ("shared.example.com", "solo.example.com")), take_domains=True
    )
    assert registry.get("team-a", "owner").route.domains == ("own.example.com",)
    assert registry.get("team-a", "solo") is None  # no domain left: its key is removed
    assert registry.get("team-a", "taker").route.domains == (
        "shared.example.com",
        "solo.example.com",
    )


def test_registering_the_same_route_twice_writes_once():
    registry = MemoryRouteRegistry()
    assert register_route(registry, route()) is True
    assert register_route(registry, route()) is False
    assert registry.writes == 1


def test_two_writers_of_one_key_one_wins_the_other_gets_a_conflict():
    registry = MemoryRouteRegistry()
    register_route(registry, route())
    first, second = registry.get("team-a", "hello"), registry.get("team-a", "hello")
    registry.put(route(upstreams=("127.0.0.12:30080",)), first.version)
    with pytest.raises(RouteConflict):
        registry.put(route(upstreams=("127.0.0.13:30080",)), second.version)
    assert registry.get("team-a", "hello").route.upstreams == ("127.0.0.12:30080",)


# Sync ----------------------------------------------------------------------------------


def service(name, node_port, namespace="team-a"):
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "pysteps"},
        },
        "spec": {"ports": [{"name": "http", "port": 8080, "nodePort": node_port}]},
    }


def sync_world():
    kube = FakeKube()
    for n in (node("n1", "127.0.0.11"), node("n2", "127.0.0.12")):
        kube.create(n)
    kube.create(service("hello", 30080))
    kube.create(service("gone-soon", 30081))
    registry = MemoryRouteRegistry()
    addrs = ("127.0.0.11", "127.0.0.12")
    for name, port in (("hello", 30080), ("gone-soon", 30081)):
        r = desired_route("team-a", name, [f"{name}.example.com"], {"http": port}, addrs, 2)
        registry.put(r, None)
    return kube, registry


def test_sync_with_nothing_changed_writes_nothing_in_three_reads():
    kube, registry = sync_world()
    kube.requests.clear()
    lines: list[str] = []
    report = sync_routes(kube, registry, None, {}, lines.append)
    assert report.changed == [] and lines == []
    assert registry.writes == 2  # the two puts of the setup only
    assert kube.requests == [("list", "Service"), ("list", "Node")]


def test_sync_follows_nodes_ports_and_apps_that_are_gone():
    kube, registry = sync_world()
    kube.patch("Node", None, "n1", {"spec": {"unschedulable": True}})  # drained
    kube.create(node("n3", "127.0.0.13"))  # added
    kube.delete("Service", "team-a", "gone-soon")
    lines: list[str] = []
    report = sync_routes(kube, registry, None, {}, lines.append)
    hello = registry.get("team-a", "hello").route
    assert hello.upstreams == ("127.0.0.12:30080", "127.0.0.13:30080")
    assert hello.revision == 2 and hello.domains == ("hello.example.com",)
    assert registry.get("team-a", "gone-soon") is None
    assert lines == [
        "remove /devnginx/team-a/gone-soon: the app's Service is gone",
        "update /devnginx/team-a/hello: +127.0.0.13:30080 -127.0.0.11:30080",
    ]
    assert len(report.changed) == 2
    # and a second run has nothing left to do
    assert sync_routes(kube, registry, None, {}, lines.append).changed == []


def test_sync_narrows_upstreams_to_the_edge_selector():
    kube, registry = sync_world()
    kube.patch("Node", None, "n2", {"metadata": {"labels": {"edge": "true"}}})
    sync_routes(kube, registry, "team-a", {"edge": "true"}, lambda _l: None)
    assert registry.get("team-a", "hello").route.upstreams == ("127.0.0.12:30080",)


def test_sync_dry_run_changes_nothing():
    kube, registry = sync_world()
    kube.delete("Service", "team-a", "hello")
    report = sync_routes(kube, registry, None, {}, lambda _l: None, dry_run=True)
    assert len(report.changed) == 1 and registry.get("team-a", "hello") is not None


class RacingRegistry(MemoryRouteRegistry):
    """Another writer rewrites every route right after sync read it."""

    def list(self, namespace=None):
        seen = super().list(namespace)
        for s in seen:
            super().put(s.route, s.version)
        return seen


def test_sync_leaves_a_route_changed_meanwhile_to_the_next_run():
    kube, plain = sync_world()
    registry = RacingRegistry()
    registry.values, registry.version = dict(plain.values), plain.version
    kube.delete("Service", "team-a", "gone-soon")
    kube.patch("Node", None, "n1", {"spec": {"unschedulable": True}})
    lines: list[str] = []
    report = sync_routes(kube, registry, None, {}, lines.append)
    assert report.changed == []
    assert report.conflicts == ["/devnginx/team-a/gone-soon", "/devnginx/team-a/hello"]
    assert registry.get("team-a", "gone-soon") is not None  # the other writer's value stays
    assert any("changed meanwhile" in line for line in lines)


def test_plan_route_sync_keeps_domains_and_revision_and_moves_the_canary_too():
    canary = Canary("hello-canary", 5, ("127.0.0.11:31500",), 31500)
    r = route(node_ports={"http": 30080}, revision=7, canary=canary)
    stored = [StoredRoute(r, 1)]
    ports = {("team-a", "hello"): {"http": 30090}, ("team-a", "hello-canary"): {"http": 31500}}
    [change] = plan_route_sync(stored, ports, ["127.0.0.11", "127.0.0.12"])
    assert change.new is not None
    assert change.new.upstreams == ("127.0.0.11:30090", "127.0.0.12:30090")
    assert (change.new.domains, change.new.revision) == (r.domains, 7)
    assert change.new.canary == Canary(
        "hello-canary", 5, ("127.0.0.11:31500", "127.0.0.12:31500"), 31500
    )
    assert "ports http=30080 -> http=30090" in change.describe()
    assert "canary +127.0.0.12:31500" in change.describe()


def test_plan_route_sync_drops_a_canary_whose_service_is_gone():
    r = route(node_ports={"http": 30080}, canary=Canary("hello-canary", 5, (), 31500))
    ports = {("team-a", "hello"): {"http": 30080}}
    [change] = plan_route_sync([StoredRoute(r, 1)], ports, ["127.0.0.11"])
    assert change.new is not None and change.new.canary is None
    assert "canary hello-canary dropped" in change.describe()


# Configuration -------------------------------------------------------------------------


def test_registry_from_env(monkeypatch):
    for var in ("PYSTEPS_ETCD_URL", "PYSTEPS_ETCD_API"):
        monkeypatch.delenv(var, raising=False)
    assert isinstance(route_registry_from_env(), LogRouteRegistry)
    monkeypatch.setenv("PYSTEPS_ETCD_URL", "http://127.0.0.1:2379,https://127.0.0.2:2379")
    assert isinstance(route_registry_from_env(), EtcdV3RouteRegistry)
    monkeypatch.setenv("PYSTEPS_ETCD_API", "v2")
    assert isinstance(route_registry_from_env(), EtcdV2RouteRegistry)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PYSTEPS_ETCD_URL": "127.0.0.1:2379"}, "PYSTEPS_ETCD_URL"),
        ({"PYSTEPS_ETCD_URL": "http://127.0.0.1:2379/v3"}, "PYSTEPS_ETCD_URL"),
        ({"PYSTEPS_ETCD_URL": "http://127.0.0.1:99999"}, "bad port"),
        ({"PYSTEPS_ETCD_URL": "http://h:1", "PYSTEPS_ETCD_API": "v4"}, "PYSTEPS_ETCD_API"),
        ({"PYSTEPS_ETCD_URL": "http://h:1", "PYSTEPS_ETCD_CERT": "c"}, "PYSTEPS_ETCD_KEY"),
        ({"PYSTEPS_ETCD_URL": "http://h:1", "PYSTEPS_ETCD_PASSWORD": "p"}, "USERNAME"),
    ],
)
def test_bad_etcd_configuration_is_one_line_naming_the_variable(env, message):
    with pytest.raises(InputError, match=message):
        EtcdConfig.from_env(env)
