"""pysteps on the test bed's REAL node: containers that really run, requests through nginx.

The node (testbed/services/75-node.sh) is a kubelet + containerd + kube-proxy joined to the test
bed's control plane, tainted so that only apps asking for it land there. Every app here sets
`node_selector` and `tolerations` (the spec fields) to get onto it, and its namespaced domain is
requested through nginx, which proxies to the node's address and the app's NodePort.
A node that is not Ready fails these tests with the kubelet's log; they never skip.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.realnode import (
    Poller,
    kubectl,
    placement,
    require_ready_node,
    wait_for_page,
)
from tests.integration.test_deploy_e2e import Bed, change_page, make_app

pytestmark = pytest.mark.integration


@pytest.fixture
def node_bed(testbed, tmp_path):
    require_ready_node(testbed)
    namespace = f"nd-{uuid.uuid4().hex[:8]}"
    env = dict(testbed)
    # Where routes follow every Ready node (PYSTEPS_EDGE_NODE_SELECTOR narrows them), this
    # app's route names the real node only: kwok's nodes run nothing that answers.
    env["PYSTEPS_EDGE_NODE_SELECTOR"] = f"{testbed['TESTBED_NODE_LABEL']}=true"
    b = Bed(env, namespace, tmp_path)
    b.kubectl("create", "namespace", namespace)
    yield b
    # destroy also removes the route: nginx keeps no stale server for this test's domain.
    b.cli("destroy", "hello", "-n", namespace, "--yes")
    b.kubectl("delete", "namespace", namespace, "--wait=false")


def domain(bed: Bed, name: str = "hello") -> str:
    """The app's own domain (tests.conftest.OWN_DOMAINS)."""
    return f"{name}-{bed.namespace}.ctest.example.com"


def pods_of(bed: Bed, name: str) -> list[dict]:
    raw = bed.kubectl(
        "-n", bed.namespace, "get", "pods", "-l", f"app.kubernetes.io/name={name}", "-o", "json"
    )
    return json.loads(raw)["items"]


def assert_really_running_on_the_node(bed: Bed, name: str) -> None:
    """Every pod is bound to the real node, got an address on its bridge, and its container
    was started by containerd (a container ID that kwok never sets)."""
    pods = [p for p in pods_of(bed, name) if not p["metadata"].get("deletionTimestamp")]
    assert pods, f"no pods of {name}"
    for pod in pods:
        assert pod["spec"]["nodeName"] == bed.env["TESTBED_NODE_NAME"], pod["spec"]
        assert pod["status"]["hostIP"] == bed.env["TESTBED_NODE_IP"]
        assert pod["status"]["podIP"].startswith("10.244."), pod["status"]
        for cs in pod["status"]["containerStatuses"]:
            assert cs["containerID"].startswith("containerd://"), cs


# The example app, started the way real apps start: it needs a few seconds before it listens.
# Only the readiness probe (and maxUnavailable 0) keeps requests from a pod that is not serving
# yet; without them this test counts failed requests (checked by hand with readiness=null).
SLOW_START = 'command=["sh", "-c", "sleep 3; exec httpd -f -p 8080 -h /www"]'


def test_image_mode_serves_through_nginx_and_updates_without_downtime(node_bed, tmp_path):
    bed = node_bed
    app = make_app(tmp_path)
    over = ("--overrides", str(placement(bed.env, bed.namespace, tmp_path)))
    first, _ = bed.deploy(app, SLOW_START, extra=over)
    assert first["ok"], first
    assert_really_running_on_the_node(bed, "hello")
    nginx, host = bed.env["PYSTEPS_NGINX_URL"], domain(bed)
    # The page the image serves (examples/hello/www/index.html), fetched by its domain.
    body = wait_for_page(nginx, host, "hello from pysteps")
    assert "version 1" in body

    new_text = f"nd v2 {uuid.uuid4().hex[:6]}"
    change_page(app, new_text)
    with Poller(nginx, host) as poll:
        second, out = bed.deploy(app, SLOW_START, extra=over)
        wait_for_page(nginx, host, new_text, timeout=30)
        time.sleep(1)
    print(f"image-mode rolling update on the real node: {poll.summary()}")
    assert second["ok"], out.stderr
    assert [a["type"] for a in second["plan"]][:2] == ["BuildImage", "RollingUpdate"]
    assert poll.ok > 20, poll.summary()
    assert poll.failures == [], poll.summary() + "\n" + "\n".join(poll.failures[:10])
    # Old page until the new pods served, then only the new one.
    texts = [b for _, b in poll.bodies]
    assert "version 1" in texts[0] and new_text in texts[-1], texts
    assert_really_running_on_the_node(bed, "hello")


def test_code_mode_serves_the_page_from_the_volume(node_bed, tmp_path):
    bed = node_bed
    app = make_app(tmp_path)
    code_path = f"{bed.namespace}/nd-hello"  # under the namespace, as pysteps requires
    over = ("--overrides", str(placement(bed.env, bed.namespace, tmp_path)))

    def deploy_code():
        result_file = tmp_path / f"r-{uuid.uuid4().hex[:6]}.json"
        out = bed.cli(
            "deploy",
            "--repo",
            str(app),
            "-f",
            str(app / "deploy-code.yaml"),
            *over,
            "--result",
            str(result_file),
            "--set",
            f"namespace={bed.namespace}",
            "--set",
            f"code.path={code_path}",
            "--set",
            f"runtime_image={bed.env['TESTBED_RUNTIME_IMAGE']}",
            "--set",
            'command=["sh", "-c", "sleep 3; exec httpd -f -p 8080 -h /apps/current/www"]',
        )
        assert out.returncode == 0, out.stderr
        return json.loads(result_file.read_text()), out

    try:
        first, _ = deploy_code()
        assert [a["type"] for a in first["plan"]][:2] == ["SyncCode", "CreateWorkload"]
        assert_really_running_on_the_node(bed, "hello-code")
        nginx, host = bed.env["PYSTEPS_NGINX_URL"], domain(bed, "hello-code")
        wait_for_page(nginx, host, "version 1")
        # The page is read from the volume: the FUSE mount on the node holds this very file.
        mount = Path(bed.env["TESTBED_NODE_CODE_MOUNT"]) / code_path / "current" / "www"
        assert "version 1" in (mount / "index.html").read_text()

        new_text = f"nd code v2 {uuid.uuid4().hex[:6]}"
        change_page(app, new_text)
        with Poller(nginx, host) as poll:
            second, _ = deploy_code()
            wait_for_page(nginx, host, new_text, timeout=30)
            time.sleep(1)
        print(f"code-mode rolling restart on the real node: {poll.summary()}")
        assert [a["type"] for a in second["plan"]][:2] == ["SyncCode", "RestartPods"]
        assert poll.ok > 20, poll.summary()
        assert poll.failures == [], poll.summary() + "\n" + "\n".join(poll.failures[:10])
        assert new_text in (mount / "index.html").read_text()
        assert_really_running_on_the_node(bed, "hello-code")
    finally:
        bed.cli("destroy", "hello-code", "-n", bed.namespace, "--purge-code", "--yes")


def test_crash_loop_on_the_real_node_fails_fast_with_the_containers_log(node_bed, tmp_path):
    bed = node_bed
    app = make_app(tmp_path)
    over = ("--overrides", str(placement(bed.env, bed.namespace, tmp_path)))
    bed.deploy(app, extra=over)
    nginx, host = bed.env["PYSTEPS_NGINX_URL"], domain(bed)
    wait_for_page(nginx, host, "version 1")
    change_page(app, "never served")
    started = time.monotonic()
    # A real mistake: the web root is misspelt, so busybox httpd exits at start with its error.
    result, out = bed.deploy(
        app,
        'command=["httpd", "-f", "-p", "8080", "-h", "/wwww"]',
        "rollout.progress_deadline_seconds=600",
        expect=1,
        extra=over,
    )
    took = time.monotonic() - started
    print(f"crash loop on the real node failed and rolled back in {took:.1f}s")
    assert took < 150, out.stderr
    assert "CrashLoopBackOff" in result["error"], result["error"]
    assert result["rolled_back"] is True, out.stderr
    logs = "\n".join(x["text"] for x in result["report"]["logs"])
    # busybox's own words, read from the container's log through the kubelet.
    assert "/wwww" in logs and "No such file or directory" in logs, result["report"]
    assert "/wwww" in out.stderr
    # The old version still answers.
    wait_for_page(nginx, host, "version 1", timeout=30)
    deps = json.loads(kubectl(bed.env, "-n", bed.namespace, "get", "deploy", "hello", "-o", "json"))
    assert "command" not in deps["spec"]["template"]["spec"]["containers"][0]


def test_kwok_failure_simulation_leaves_the_real_node_alone(node_bed, tmp_path):
    """kwok fails pods whose container has TESTBED_SIMULATE=never-ready, but only on its own
    nodes: on the real node the kubelet alone decides, and the app really becomes Ready."""
    bed = node_bed
    app = make_app(tmp_path)
    over = ("--overrides", str(placement(bed.env, bed.namespace, tmp_path)))
    result, out = bed.deploy(app, "env.TESTBED_SIMULATE=never-ready", extra=over)
    assert result["ok"], out.stderr
    assert_really_running_on_the_node(bed, "hello")
    wait_for_page(bed.env["PYSTEPS_NGINX_URL"], domain(bed), "version 1")
