"""pysteps list: one list request per kind, never one per app."""

from __future__ import annotations

from pysteps.clients.mail import MemoryNotifier
from pysteps.console import Console
from pysteps.deploy import DeployEngine, DeployOptions, Services
from pysteps.inventory import list_apps
from pysteps.manifests import Release
from pysteps.spec import build_spec
from tests.unit.fakes import FakeCode, FakeImages, FakeKube, MemoryRouteRegistry


def deploy_apps(kube: FakeKube, count: int) -> None:
    images, code = FakeImages(), FakeCode()
    services = Services(kube, MemoryRouteRegistry(), MemoryNotifier(), lambda: images, lambda: code)
    engine = DeployEngine(services, Console(stream=open("/dev/null", "w")))  # noqa: SIM115
    for i in range(count):
        kind = "ReplicationController" if i % 3 == 0 else "Deployment"
        spec = build_spec(
            {"name": f"app-{i}", "namespace": "team-a", "image": "reg/t/a", "kind": kind}
        )
        engine.deploy(spec, Release(f"{i:040x}"), DeployOptions(poll=0))


def test_list_makes_three_requests_whatever_the_number_of_apps():
    kube = FakeKube()
    deploy_apps(kube, 12)
    kube.requests.clear()
    apps = list_apps(kube, "team-a")
    assert len(apps) == 12
    assert kube.requests == [
        ("list", "Deployment"),
        ("list", "ReplicationController"),
        ("list", "Service"),
    ]
    rc_app = next(a for a in apps if a.name == "app-0")
    assert (rc_app.kind, rc_app.ready, rc_app.desired) == ("ReplicationController", 1, 1)
    assert rc_app.node_ports == {"http": 30080}
    assert rc_app.domains == ("app-0.ctest.example.com",)
