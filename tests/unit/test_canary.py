"""Canary releases on the fakes: run beside the app with a weight, promote, abort."""

from __future__ import annotations

import pytest

from pysteps.canary import (
    canary_name,
    canary_spec,
    canary_status,
    deploy_canary,
    promote_canary,
    remove_canary,
    set_canary_weight,
)
from pysteps.deploy import DeployOptions
from pysteps.errors import InputError, PreconditionError
from pysteps.manifests import Release
from pysteps.spec import build_spec
from tests.unit.test_deploy import C1, C2, REPO, World


@pytest.fixture
def world():
    return World()


def spec(**fields):
    return build_spec({"name": "hello", "namespace": "team-a", "image": REPO, **fields})


def run_canary(world, commit=C2, weight=10, **fields):
    return deploy_canary(
        world.services,
        world.console,
        spec(**fields),
        Release(commit),
        weight,
        DeployOptions(poll=0),
    )


def image_of(world, name):
    dep = world.kube.get("Deployment", "team-a", name)
    return dep["spec"]["template"]["spec"]["containers"][0]["image"]


def test_a_canary_runs_beside_the_app_with_its_weight_in_the_route(world):
    world.deploy(C1)
    main_image = image_of(world, "hello")
    result = run_canary(world)
    assert result.ok
    assert image_of(world, "hello") == main_image  # the app is untouched
    assert image_of(world, "hello-canary") != main_image
    canary_dep = world.kube.get("Deployment", "team-a", "hello-canary")
    assert canary_dep["metadata"]["labels"]["pysteps.io/track"] == "canary"
    assert canary_dep["metadata"]["labels"]["pysteps.io/canary-of"] == "hello"
    assert canary_dep["spec"]["replicas"] == 1
    # its own Service, so that the app's NodePort never reaches canary pods
    svc = world.kube.get("Service", "team-a", "hello-canary")
    assert svc["spec"]["selector"]["app.kubernetes.io/name"] == "hello-canary"
    route = world.routes.get("team-a", "hello").route
    assert route.canary is not None and route.canary.weight == 10
    assert route.canary.name == "hello-canary" and route.canary.commit == C2
    assert route.canary.servers == ("127.0.0.11:30080", "127.0.0.12:30080")
    assert route.upstreams == ("127.0.0.11:30080", "127.0.0.12:30080")
    status = canary_status(world.services, "team-a", "hello")
    assert status is not None and (status["weight"], status["commit"]) == (10, C2)


def test_a_canary_needs_a_running_app_with_a_route(world):
    with pytest.raises(PreconditionError, match="does not run yet"):
        run_canary(world)
    assert world.kube.get("Deployment", "team-a", "hello-canary") is None


@pytest.mark.parametrize("weight", [0, 100, -5])
def test_a_weight_outside_1_to_99_is_bad_input(world, weight):
    world.deploy(C1)
    with pytest.raises(InputError, match="percentage"):
        run_canary(world, weight=weight)
    assert world.kube.get("Deployment", "team-a", "hello-canary") is None


def test_weight_can_change(world):
    world.deploy(C1)
    run_canary(world)
    set_canary_weight(world.services, world.console, "team-a", "hello", 50)
    canary = world.routes.get("team-a", "hello").route.canary
    assert canary.weight == 50 and canary.commit == C2


def test_promote_rolls_the_app_to_the_canary_commit_then_removes_the_canary(world):
    world.deploy(C1)
    run_canary(world)
    canary_image = image_of(world, "hello-canary")
    result = promote_canary(world.services, world.console, spec(), DeployOptions(poll=0))
    assert result.ok and result.commit == C2
    assert image_of(world, "hello") == canary_image
    assert world.kube.get("Deployment", "team-a", "hello-canary") is None
    assert world.kube.get("Service", "team-a", "hello-canary") is None
    route = world.routes.get("team-a", "hello").route
    assert route.canary is None
    assert world.deployment()["metadata"]["annotations"]["pysteps.io/commit"] == C2


def test_abort_removes_the_canary_from_the_route_and_the_cluster(world):
    world.deploy(C1)
    before = world.routes.get("team-a", "hello").route
    main_image = image_of(world, "hello")
    run_canary(world)
    remove_canary(world.services, world.console, "team-a", "hello", purge_code=True)
    assert world.routes.get("team-a", "hello").route == before
    assert world.kube.get("Deployment", "team-a", "hello-canary") is None
    assert image_of(world, "hello") == main_image
    with pytest.raises(PreconditionError, match="no canary"):
        remove_canary(world.services, world.console, "team-a", "hello", purge_code=True)


def test_code_mode_canary_has_its_own_code_directory(world):
    fields = {"mode": "code", "runtime_image": "127.0.0.1:25000/rt/python:3", "image": None}
    cspec = canary_spec(spec(**fields))
    assert cspec.code_path == "team-a/hello-canary" and cspec.domains == []
    custom = canary_spec(spec(code={"path": "team-a/shop/web"}, **fields))
    assert custom.code_path == "team-a/shop/web-canary"


def test_rc_mode_canary(world):
    world.deploy(C1, kind="ReplicationController")
    run_canary(world, kind="ReplicationController")
    rcs = world.kube.list("ReplicationController", "team-a", {"pysteps.io/track": "canary"})
    assert [rc["metadata"]["name"] for rc in rcs] == ["hello-canary-r1"]
    remove_canary(world.services, world.console, "team-a", "hello", purge_code=False)
    assert world.kube.list("ReplicationController", "team-a", {"pysteps.io/track": "canary"}) == []


def test_canary_names_stay_dns_labels():
    long = "a" * 63
    assert len(canary_name(long)) == 63 and canary_name(long).endswith("-canary")


def test_destroying_the_app_destroys_its_canary_but_not_a_namesake(world):
    from pysteps.teardown import destroy_app

    world.deploy(C1)
    run_canary(world)
    removed = destroy_app(world.services, "team-a", "hello", purge_code=False)
    assert "Deployment team-a/hello-canary" in removed
    assert world.kube.get("Deployment", "team-a", "hello-canary") is None
    world.deploy(C1, name="other-canary")  # an app of its own that only looks like one
    world.deploy(C1, name="other")
    destroy_app(world.services, "team-a", "other", purge_code=False)
    assert world.kube.get("Deployment", "team-a", "other-canary") is not None
