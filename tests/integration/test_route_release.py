"""Routes versioned with the release, and canaries, through the CLI on the real test bed
(control plane with kwok nodes, registry, Docker Engine, etcd).

kwok's nodes answer nothing on their NodePorts, so these tests read the routes in etcd; the
traffic itself is proven by test_nginx_confd.py and test_routes_sync.py.
"""

from __future__ import annotations

import json
import uuid

import pytest

from pysteps.clients.routes import EtcdConfig, EtcdV3RouteRegistry
from tests.conftest import require
from tests.integration.test_deploy_e2e import Bed, change_page, make_app

pytestmark = pytest.mark.integration

APP = "rt-web"


@pytest.fixture
def bed(testbed, tmp_path):
    require(testbed, "KUBECONFIG", "TESTBED_KUBECTL", "PYSTEPS_REGISTRY", "DOCKER_HOST")
    namespace = f"rt-rel-{uuid.uuid4().hex[:8]}"
    b = Bed(dict(testbed), namespace, tmp_path)
    b.kubectl("create", "namespace", namespace)
    yield b
    b.cli("destroy", APP, "-n", namespace, "--yes")
    b.kubectl("delete", "namespace", namespace, "--wait=false")


def registry(bed: Bed) -> EtcdV3RouteRegistry:
    return EtcdV3RouteRegistry(EtcdConfig((bed.env["PYSTEPS_ETCD_URL"],)))


def ready_node_ips(bed: Bed) -> set[str]:
    nodes = json.loads(bed.kubectl("get", "nodes", "-o", "json"))["items"]
    ips = set()
    for n in nodes:
        ready = any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
        )
        if ready and not n["spec"].get("unschedulable"):
            ips |= {a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"}
    return ips


def deploy(bed: Bed, app, domain: str, *extra: str, expect: int = 0):
    return bed.deploy(app, f"name={APP}", f"domains=[{domain}]", expect=expect, extra=extra)


def test_the_route_is_versioned_with_the_release_and_rollback_restores_it(bed, tmp_path):
    app = make_app(tmp_path)
    one = f"one-{bed.namespace}.ctest.example.com"
    two = f"two-{bed.namespace}.ctest.example.com"
    deploy(bed, app, one)
    stored = registry(bed).get(bed.namespace, APP)
    assert stored is not None and stored.route.domains == (one,)
    port = bed.kget("service", APP)["spec"]["ports"][0]["nodePort"]
    # every Ready node with the NodePort, not only where the pods are
    assert set(stored.route.upstreams) == {f"{ip}:{port}" for ip in ready_node_ips(bed)}
    assert stored.route.revision == 1

    change_page(app, "version 2")
    deploy(bed, app, two)
    route = registry(bed).get(bed.namespace, APP).route
    assert (route.domains, route.revision) == ((two,), 2)

    out = bed.cli("rollback", APP, "-n", bed.namespace)
    assert out.returncode == 0, out.stderr
    route = registry(bed).get(bed.namespace, APP).route
    assert route.domains == (one,)
    assert route.revision == 3  # revision 1's template, as the Deployment's revision 3


def test_a_failed_rollout_leaves_the_route_of_the_revision_that_serves(bed, tmp_path):
    app = make_app(tmp_path)
    one = f"one-{bed.namespace}.ctest.example.com"
    deploy(bed, app, one)
    before = registry(bed).get(bed.namespace, APP)
    change_page(app, "broken")
    deploy(
        bed,
        app,
        f"two-{bed.namespace}.ctest.example.com",
        "--set",
        "env.TESTBED_SIMULATE=crash",
        expect=1,
    )
    assert registry(bed).get(bed.namespace, APP) == before


def test_canary_deploy_weight_abort_and_promote(bed, tmp_path):
    app = make_app(tmp_path)
    domain = f"web-{bed.namespace}.ctest.example.com"
    deploy(bed, app, domain)
    main_image = bed.kget("deployment", APP)["spec"]["template"]["spec"]["containers"][0]["image"]
    commit = change_page(app, "canary")
    result, _out = deploy(bed, app, domain, "--canary", "10")
    assert result["ok"]
    canary_dep = bed.kget("deployment", f"{APP}-canary")
    assert canary_dep["metadata"]["labels"]["pysteps.io/canary-of"] == APP
    canary_image = canary_dep["spec"]["template"]["spec"]["containers"][0]["image"]
    assert canary_image != main_image
    route = registry(bed).get(bed.namespace, APP).route
    assert route.canary is not None and (route.canary.weight, route.canary.commit) == (10, commit)
    canary_port = bed.kget("service", f"{APP}-canary")["spec"]["ports"][0]["nodePort"]
    assert set(route.canary.servers) == {f"{ip}:{canary_port}" for ip in ready_node_ips(bed)}

    status = bed.cli("canary", "status", APP, "-n", bed.namespace, "--output", "json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["weight"] == 10
    shown = bed.cli("status", APP, "-n", bed.namespace)
    assert f"canary:    {APP}-canary at 10 %" in shown.stdout

    out = bed.cli("canary", "abort", APP, "-n", bed.namespace)
    assert out.returncode == 0, out.stderr
    assert registry(bed).get(bed.namespace, APP).route.canary is None
    gone = bed.kubectl("-n", bed.namespace, "get", "deploy,svc", "-o", "name")
    assert f"{APP}-canary" not in gone

    deploy(bed, app, domain, "--canary", "20")
    out = bed.cli(
        "canary",
        "promote",
        APP,
        "-n",
        bed.namespace,
        "--repo",
        str(app),
        "--set",
        f"name={APP}",
        "--set",
        f"namespace={bed.namespace}",
        "--set",
        f"image={bed.env['PYSTEPS_REGISTRY']}/e2e/hello",
        "--set",
        f"build.args.BASE={bed.env['TESTBED_BASE_IMAGE']}",
        "--set",
        f"domains=[{domain}]",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    promoted = bed.kget("deployment", APP)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert promoted == canary_image
    assert registry(bed).get(bed.namespace, APP).route.canary is None
    assert f"{APP}-canary" not in bed.kubectl("-n", bed.namespace, "get", "deploy", "-o", "name")
