"""Routes are versioned with the release: written after a good rollout, restored by rollbacks."""

from __future__ import annotations

import pytest

from pysteps.errors import PreconditionError, RolloutFailed
from pysteps.routes import Route
from pysteps.routing import register_route
from pysteps.teardown import rollback_app
from tests.unit.fakes import node
from tests.unit.test_deploy import C1, C2, C3, World


@pytest.fixture
def world():
    return World()


def domains(world):
    stored = world.routes.get("team-a", "hello")
    return stored.route.domains if stored else None


def test_rollback_restores_the_route_of_the_restored_revision(world):
    world.deploy(C1, domains=["one.example.com"])
    world.deploy(C2, domains=["two.example.com"])
    assert domains(world) == ("two.example.com",)
    assert world.routes.get("team-a", "hello").route.revision == 2
    outcome = rollback_app(world.services, world.console, "team-a", "hello", None, 10)
    assert outcome.ok
    assert domains(world) == ("one.example.com",)
    restored = world.routes.get("team-a", "hello").route
    assert restored.upstreams == ("127.0.0.11:30080", "127.0.0.12:30080")
    live = world.deployment()["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    assert restored.revision == int(live) == 1  # the fake reuses the old revision number


def test_a_failed_rollout_never_touches_the_route(world):
    world.deploy(C1, domains=["one.example.com"])
    before = world.routes.get("team-a", "hello")
    with pytest.raises(RolloutFailed):
        world.deploy(C2, image="127.0.0.1:25000/team/crash", domains=["two.example.com"])
    assert world.routes.get("team-a", "hello") == before


def test_a_domain_change_alone_is_recorded_on_the_live_revision(world):
    world.deploy(C1, domains=["one.example.com"])
    world.deploy(C1, domains=["renamed.example.com"])
    assert domains(world) == ("renamed.example.com",)
    ann = world.deployment()["metadata"]["annotations"]
    assert ann["pysteps.io/domains"] == "renamed.example.com"


def make_owner(world, terminating: bool = False, service: bool = True) -> None:
    """team-b/owner: a running app (Namespace and Service) whose route claims one.example.com."""
    meta = {"name": "team-b"}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    world.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
    if service:
        world.kube.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "owner", "namespace": "team-b"},
                "spec": {"ports": [{"name": "http", "port": 80}]},
            }
        )
    register_route(world.routes, Route("team-b", "owner", ("one.example.com",), ()))
    world.kube.requests.clear()


def test_deploy_refuses_a_domain_of_another_app_unless_told_to_take_it(world):
    make_owner(world)
    with pytest.raises(PreconditionError, match="belongs to /devnginx/team-b/owner"):
        world.deploy(C1, domains=["one.example.com"])
    assert world.routes.get("team-a", "hello") is None
    # the lock and the attempt's history record only: no rollout
    assert {kind for _verb, kind in world.writes()} == {"Lease", "ConfigMap"}
    from pysteps.deploy import DeployEngine, DeployOptions
    from pysteps.manifests import Release
    from pysteps.spec import build_spec

    spec = build_spec(
        {"name": "hello", "namespace": "team-a", "image": "r/t/h", "domains": ["one.example.com"]}
    )
    engine = DeployEngine(world.services, world.console)
    engine.deploy(spec, Release(C3), DeployOptions(poll=0, take_domains=True))
    assert domains(world) == ("one.example.com",)
    assert world.routes.get("team-b", "owner") is None


def test_a_user_who_may_not_list_nodes_gets_the_nodes_of_ready_pods(world, monkeypatch):
    real_list = world.kube.list

    def namespaced_only(kind, namespace, selector=None):
        if kind == "Node":
            raise PreconditionError("user team-a may not get Node: forbidden")
        return real_list(kind, namespace, selector)

    monkeypatch.setattr(world.kube, "list", namespaced_only)
    world.kube.create(node("n3", "127.0.0.13"))
    result = world.deploy(C1, replicas=1)
    assert result.ok
    # one pod, on 127.0.0.11: not every node, but never the node it cannot see
    assert world.routes.get("team-a", "hello").route.upstreams == ("127.0.0.11:30080",)
    assert "may not list Nodes" in world.out.getvalue()


@pytest.mark.parametrize(
    "terminating, service", [(True, True), (False, False)], ids=["namespace-deleted", "app-gone"]
)
def test_a_claim_of_an_app_that_is_gone_lapses(world, terminating, service):
    make_owner(world, terminating=terminating, service=service)
    result = world.deploy(C1, domains=["one.example.com"])
    assert result.ok
    assert domains(world) == ("one.example.com",)
    assert world.routes.get("team-b", "owner") is None
    assert "took one.example.com from /devnginx/team-b/owner (its app is gone)" in (
        world.out.getvalue()
    )
