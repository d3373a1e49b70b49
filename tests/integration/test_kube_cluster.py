"""The test bed's Kubernetes control plane is real: apiserver, controller manager, scheduler, kwok.

Objects are made through pykube-ng, as pysteps makes them. What is asserted is what the real
controllers did: ReplicaSets, scheduling, rollouts, the progress deadline, RBAC refusals. Failure
is simulated by kwok from the image tag (testbed/kwok/README.md).
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import pykube
import pytest
import requests

from tests.conftest import require

pytestmark = pytest.mark.integration

T = TypeVar("T")
IMAGE = "127.0.0.1:25000/demo/web"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll PROBE until it returns something truthy; fail naming WHAT and the last thing seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


@pytest.fixture(scope="module")
def admin(testbed: Mapping[str, str]) -> pykube.HTTPClient:
    (kubeconfig,) = require(testbed, "KUBECONFIG")
    return pykube.HTTPClient(pykube.KubeConfig.from_file(kubeconfig), timeout=15)


@pytest.fixture(scope="module")
def restricted(testbed: Mapping[str, str]) -> pykube.HTTPClient:
    (kubeconfig,) = require(testbed, "PYSTEPS_KUBECONFIG_RESTRICTED")
    return pykube.HTTPClient(pykube.KubeConfig.from_file(kubeconfig), timeout=15)


def make_namespace(api: pykube.HTTPClient, prefix: str) -> pykube.Namespace:
    """A fresh namespace, returned once its default service account exists (pods need it)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ns = pykube.Namespace(api, {"metadata": {"name": name, "labels": {"pysteps-test": "kube"}}})
    ns.create()
    wait_for(
        f"service account default in {name}",
        lambda: pykube.ServiceAccount.objects(api, namespace=name).get_or_none(name="default"),
    )
    return ns


@pytest.fixture(scope="module")
def namespace(admin: pykube.HTTPClient) -> Iterator[str]:
    ns = make_namespace(admin, "kube-test")
    yield ns.name
    ns.delete()


def deployment(
    api: pykube.HTTPClient,
    namespace: str,
    name: str,
    image: str,
    replicas: int = 2,
    progress_deadline: int = 600,
) -> pykube.Deployment:
    labels = {"app": name}
    return pykube.Deployment(
        api,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": replicas,
                "progressDeadlineSeconds": progress_deadline,
                "selector": {"matchLabels": labels},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                },
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": image}]},
                },
            },
        },
    )


def rollout_done(dep: pykube.Deployment) -> bool:
    """kubectl's rule for `rollout status`: the controller saw the spec and every replica is new
    and available, with no old one left."""
    dep.reload()
    spec, status = dep.obj["spec"], dep.obj.get("status", {})
    return (
        status.get("observedGeneration", 0) >= dep.obj["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == spec["replicas"]
        and status.get("replicas", 0) == spec["replicas"]
        and status.get("availableReplicas", 0) == spec["replicas"]
    )


def progressing(dep: pykube.Deployment) -> dict[str, Any] | None:
    dep.reload()
    for cond in dep.obj.get("status", {}).get("conditions", []):
        if cond["type"] == "Progressing":
            return dict(cond)
    return None


def replica_sets(api: pykube.HTTPClient, dep: pykube.Deployment) -> list[pykube.ReplicaSet]:
    """The ReplicaSets the controller manager made for DEP (owned by it, not just labelled)."""
    uid = dep.obj["metadata"]["uid"]
    return [
        rs
        for rs in pykube.ReplicaSet.objects(api, namespace=dep.namespace)
        if any(o.get("uid") == uid for o in rs.obj["metadata"].get("ownerReferences", []))
    ]


def pods_of(api: pykube.HTTPClient, namespace: str, app: str) -> list[pykube.Pod]:
    return list(pykube.Pod.objects(api, namespace=namespace).filter(selector={"app": app}))


def images(rs: pykube.ReplicaSet) -> list[str]:
    return [c["image"] for c in rs.obj["spec"]["template"]["spec"]["containers"]]


def test_control_plane_reports_its_version_and_nodes_are_ready(
    testbed: Mapping[str, str], admin: pykube.HTTPClient
) -> None:
    (version,) = require(testbed, "TESTBED_KUBE_VERSION")
    info = admin.session.get(f"{admin.url}/version", timeout=10).json()
    assert info["gitVersion"] == version
    assert (int(info["major"]), int(info["minor"].rstrip("+"))) >= (1, 34)

    nodes = [n for n in pykube.Node.objects(admin) if n.labels.get("type") == "kwok"]
    assert len(nodes) >= 2
    for node in nodes:
        conditions = {c["type"]: c["status"] for c in node.obj["status"]["conditions"]}
        assert conditions["Ready"] == "True", node.name
        internal = [
            a["address"] for a in node.obj["status"]["addresses"] if a["type"] == "InternalIP"
        ]
        assert len(internal) == 1 and ipaddress.ip_address(internal[0]).is_loopback, internal


def test_deployment_becomes_available_and_scales(admin: pykube.HTTPClient, namespace: str) -> None:
    dep = deployment(admin, namespace, "scale", f"{IMAGE}:1", replicas=2)
    dep.create()
    wait_for("2 replicas available", lambda: rollout_done(dep))

    (rs,) = replica_sets(admin, dep)
    assert rs.obj["status"]["readyReplicas"] == 2
    pods = pods_of(admin, namespace, "scale")
    assert len(pods) == 2
    for pod in pods:
        # Scheduled by the scheduler onto a kwok node, made Running/Ready there by kwok.
        assert pod.obj["spec"]["nodeName"].startswith("kwok-node-")
        assert pod.obj["status"]["phase"] == "Running" and pod.ready
        assert ipaddress.ip_address(pod.obj["status"]["podIP"]).is_loopback
        assert ipaddress.ip_address(pod.obj["status"]["hostIP"]).is_loopback

    dep.patch({"spec": {"replicas": 4}})
    wait_for("4 replicas available", lambda: rollout_done(dep))
    assert len(pods_of(admin, namespace, "scale")) == 4

    dep.patch({"spec": {"replicas": 1}})
    wait_for("scaled down to 1", lambda: rollout_done(dep))
    wait_for("3 pods gone", lambda: len(pods_of(admin, namespace, "scale")) == 1)
    dep.delete(propagation_policy="Foreground")


def test_rolling_update_leaves_old_replica_set_at_zero(
    admin: pykube.HTTPClient, namespace: str
) -> None:
    dep = deployment(admin, namespace, "roll", f"{IMAGE}:1", replicas=3)
    dep.create()
    wait_for("first rollout", lambda: rollout_done(dep))

    dep.patch(
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": f"{IMAGE}:2"}]}}}}
    )
    wait_for("rollout to :2", lambda: rollout_done(dep))

    by_image = {images(rs)[0]: rs for rs in replica_sets(admin, dep)}
    assert set(by_image) == {f"{IMAGE}:1", f"{IMAGE}:2"}
    old, new = by_image[f"{IMAGE}:1"], by_image[f"{IMAGE}:2"]
    assert old.obj["spec"]["replicas"] == 0
    wait_for("old pods gone", lambda: old.reload() or old.obj["status"].get("replicas", 0) == 0)
    assert new.obj["spec"]["replicas"] == 3 and new.obj["status"]["readyReplicas"] == 3
    pods = pods_of(admin, namespace, "roll")
    assert sorted(p.obj["spec"]["containers"][0]["image"] for p in pods) == [f"{IMAGE}:2"] * 3
    dep.delete(propagation_policy="Foreground")


def test_never_ready_tag_ends_in_progress_deadline_exceeded_and_rolls_back(
    testbed: Mapping[str, str], admin: pykube.HTTPClient, namespace: str
) -> None:
    (tag,) = require(testbed, "TESTBED_KUBE_TAG_NEVER_READY")
    dep = deployment(admin, namespace, "stuck", f"{IMAGE}:1", replicas=2, progress_deadline=8)
    dep.create()
    wait_for("first rollout", lambda: rollout_done(dep))

    dep.patch(
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "web", "image": f"{IMAGE}:{tag}"}]}}
            }
        }
    )
    cond = wait_for(
        "ProgressDeadlineExceeded",
        lambda: (c := progressing(dep)) and c["reason"] == "ProgressDeadlineExceeded" and c,
        timeout=45,
    )
    assert cond["status"] == "False"
    stuck = [
        p
        for p in pods_of(admin, namespace, "stuck")
        if p.obj["spec"]["containers"][0]["image"].endswith(f":{tag}")
    ]
    assert stuck, "the new ReplicaSet made no pod"
    for pod in stuck:
        assert pod.obj["status"]["phase"] == "Running" and not pod.ready
    # maxUnavailable 0: the old pods kept serving all along.
    assert dep.obj["status"]["availableReplicas"] == 2

    # Roll back as `kubectl rollout undo` does: copy the previous ReplicaSet's pod template.
    (previous,) = [rs for rs in replica_sets(admin, dep) if images(rs) == [f"{IMAGE}:1"]]
    template = previous.obj["spec"]["template"]
    template["metadata"]["labels"].pop("pod-template-hash", None)
    dep.reload()
    dep.obj["spec"]["template"] = template
    dep.update()
    wait_for("rollback complete", lambda: rollout_done(dep))
    assert progressing(dep)["reason"] == "NewReplicaSetAvailable"
    wait_for(
        "never-ready pods gone",
        lambda: all(
            p.obj["spec"]["containers"][0]["image"] == f"{IMAGE}:1"
            for p in pods_of(admin, namespace, "stuck")
        ),
    )
    dep.delete(propagation_policy="Foreground")


def test_crash_tag_shows_crash_loop_back_off_with_rising_restarts(
    testbed: Mapping[str, str], admin: pykube.HTTPClient, namespace: str
) -> None:
    (tag,) = require(testbed, "TESTBED_KUBE_TAG_CRASH")
    dep = deployment(admin, namespace, "crash", f"{IMAGE}:{tag}", replicas=1)
    dep.create()

    def crashing() -> dict[str, Any] | None:
        for pod in pods_of(admin, namespace, "crash"):
            for cs in pod.obj.get("status", {}).get("containerStatuses", []):
                if cs.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff":
                    return dict(cs)
        return None

    first = wait_for("CrashLoopBackOff", crashing)
    assert first["restartCount"] >= 1
    assert first["lastState"]["terminated"]["exitCode"] == 1
    assert first["ready"] is False
    wait_for(
        "restart count to rise",
        lambda: (cs := crashing()) and cs["restartCount"] > first["restartCount"],
        timeout=30,
    )
    events = pykube.Event.objects(admin, namespace=namespace).filter(
        field_selector={"reason": "BackOff"}
    )
    crash_pods = {p.name for p in pods_of(admin, namespace, "crash")}
    assert any(
        e.obj["involvedObject"]["kind"] == "Pod" and e.obj["involvedObject"]["name"] in crash_pods
        for e in events
    )
    assert not rollout_done(dep)
    dep.delete(propagation_policy="Foreground")


def test_replication_controller_rolls_out(admin: pykube.HTTPClient, namespace: str) -> None:
    rc = pykube.ReplicationController(
        admin,
        {
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": "legacy", "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"app": "legacy"},
                "template": {
                    "metadata": {"labels": {"app": "legacy"}},
                    "spec": {"containers": [{"name": "web", "image": f"{IMAGE}:1"}]},
                },
            },
        },
    )
    rc.create()

    def ready() -> bool:
        rc.reload()
        return rc.obj.get("status", {}).get("readyReplicas", 0) == 2

    wait_for("2 RC replicas ready", ready)
    pods = pods_of(admin, namespace, "legacy")
    assert len(pods) == 2 and all(p.ready for p in pods)
    assert {p.obj["metadata"]["ownerReferences"][0]["kind"] for p in pods} == {
        "ReplicationController"
    }
    rc.delete(propagation_policy="Foreground")


def test_restricted_user_deploys_in_its_namespace_only(
    testbed: Mapping[str, str], admin: pykube.HTTPClient, restricted: pykube.HTTPClient
) -> None:
    (allowed,) = require(testbed, "TESTBED_KUBE_NAMESPACE")
    name = f"restricted-{uuid.uuid4().hex[:6]}"
    dep = deployment(restricted, allowed, name, f"{IMAGE}:1", replicas=1)
    dep.create()
    try:
        wait_for("restricted deployment available", lambda: rollout_done(dep))
        assert len(pods_of(restricted, allowed, name)) == 1
    finally:
        dep.delete(propagation_policy="Foreground")

    elsewhere = make_namespace(admin, "kube-denied")
    try:
        for ns in (elsewhere.name, "default"):
            with pytest.raises(pykube.exceptions.HTTPError) as refused:
                deployment(restricted, ns, name, f"{IMAGE}:1").create()
            assert refused.value.code == 403, ns
        with pytest.raises(requests.HTTPError) as listing:
            list(pykube.Node.objects(restricted))
        assert listing.value.response.status_code == 403
        # Nothing was made by the refused calls.
        assert not pykube.Deployment.objects(admin, namespace=elsewhere.name).get_or_none(name=name)
    finally:
        elsewhere.delete()


def test_components_answer_over_tls_with_our_ca(testbed: Mapping[str, str]) -> None:
    """The apiserver's certificate checks out against the test bed's CA; anonymous is read-only."""
    (kubeconfig,) = require(testbed, "KUBECONFIG")
    config = pykube.KubeConfig.from_file(kubeconfig)
    server = config.cluster["server"]
    assert server.startswith("https://127.0.0.1:")
    ca = config.cluster["certificate-authority"].filename()
    assert requests.get(f"{server}/readyz", verify=ca, timeout=5).text == "ok"
    assert requests.get(f"{server}/api/v1/namespaces", verify=ca, timeout=5).status_code in (
        401,
        403,
    )
