"""Destroy acts on what the app's own objects record as its own, under the app's lock."""

from __future__ import annotations

import pytest

from pysteps.clients.mail import MemoryNotifier
from pysteps.console import Console
from pysteps.deploy import DeployEngine, DeployOptions, Services
from pysteps.errors import InputError, PreconditionError
from pysteps.lock import DeployLock, LockedKube
from pysteps.manifests import Release
from pysteps.spec import build_spec
from pysteps.teardown import destroy_app
from tests.unit.fakes import FakeCode, FakeImages, FakeKube, MemoryRouteRegistry

C1 = "1" * 40


@pytest.fixture
def services():
    code = FakeCode()
    return Services(
        FakeKube(), MemoryRouteRegistry(), MemoryNotifier(), lambda: FakeImages(), lambda: code
    )


def fake_kube(services: Services) -> FakeKube:
    """The fake behind the engine's lock guard."""
    kube = services.kube
    return kube.kube if isinstance(kube, LockedKube) else kube


def deploy(services, name: str, namespace: str = "team-a", **fields) -> None:
    mode = {"mode": "code", "runtime_image": "reg/runtime/busybox:1"}
    spec = build_spec({"name": name, "namespace": namespace, **mode, **fields})
    engine = DeployEngine(services, Console(stream=open("/dev/null", "w")))  # noqa: SIM115
    engine.deploy(spec, Release(C1), DeployOptions(poll=0))


def test_destroy_of_a_missing_app_with_purge_touches_nothing(services):
    deploy(services, "hello-code")
    deploy(services, "team-a")  # named like its namespace: its directory is team-a/team-a
    before = dict(services.code.current)
    kube = fake_kube(services)
    kube.requests.clear()
    for missing in ("team-a-missing", "hello"):
        with pytest.raises(PreconditionError, match="no such app"):
            destroy_app(services, "team-a", missing, purge_code=True)
    assert services.code.current == before
    assert [r for r in kube.requests if r[0] != "get" and r[0] != "list"] == []


def test_destroy_purges_only_the_directory_the_workload_records(services):
    deploy(services, "hello-code")
    deploy(services, "team-a")
    removed = destroy_app(services, "team-a", "team-a", purge_code=True)
    assert "code directory team-a/team-a on volume gv-test" in removed
    assert services.code.current == {"team-a/hello-code": C1}


def test_destroy_of_an_image_mode_app_purges_no_code(services):
    deploy(services, "hello-code")
    spec = build_spec({"name": "web", "namespace": "team-a", "image": "reg/team/web"})
    engine = DeployEngine(services, Console(stream=open("/dev/null", "w")))  # noqa: SIM115
    engine.deploy(spec, Release(C1), DeployOptions(poll=0))
    removed = destroy_app(services, "team-a", "web", purge_code=True)
    assert any("no code directory purged" in line for line in removed)
    assert services.code.current == {"team-a/hello-code": C1}


def test_destroy_leaves_objects_it_did_not_make(services):
    kube = fake_kube(services)
    deploy(services, "hello-code")
    kube.create(
        {
            "kind": "Service",
            "metadata": {"name": "other", "namespace": "team-a"},
            "spec": {"ports": []},
        }
    )
    with pytest.raises(PreconditionError, match="no such app"):
        destroy_app(services, "team-a", "other", purge_code=False)
    assert kube.get("Service", "team-a", "other") is not None


def test_destroy_waits_for_no_one_and_never_deletes_a_lease_someone_holds(services):
    deploy(services, "hello-code")
    holder = DeployLock(services.kube, "team-a", "hello-code", identity="job/deploying/3")
    assert holder.try_acquire() is None
    with pytest.raises(PreconditionError, match="job/deploying/3"):
        destroy_app(services, "team-a", "hello-code", purge_code=True)
    lease = services.kube.get("Lease", "team-a", "pysteps-deploy-hello-code")
    assert lease["spec"]["holderIdentity"] == "job/deploying/3"
    assert services.kube.get("Deployment", "team-a", "hello-code") is not None


def test_two_apps_cannot_share_a_code_directory(services):
    deploy(services, "shop")
    with pytest.raises(InputError, match=r"spec field 'code.path': team-a/shop overlaps"):
        deploy(services, "shop2", code={"path": "team-a/shop"})
    with pytest.raises(InputError, match="overlaps team-a/shop"):
        deploy(services, "shop3", code={"path": "team-a/shop/sub"})
    assert services.kube.get("Deployment", "team-a", "shop2") is None
