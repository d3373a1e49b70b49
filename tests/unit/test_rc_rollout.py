"""Client-side ReplicationController rollouts on the in-memory cluster: steps, resuming an
interrupted rollout, absolute surge, restoring the last good revision."""

from __future__ import annotations

import io

import pytest

from pysteps.console import Console
from pysteps.rc_rollout import ControllerRollout, ControllerTarget, surge_step
from pysteps.rollout import ANN_ROLLED_OUT
from tests.unit.fakes import FakeKube

NS = "team-a"


def make_rc(kube: FakeKube, revision: int, replicas: int, image: str, *, rolled_out: bool):
    labels = {
        "app.kubernetes.io/name": "hello",
        "app.kubernetes.io/managed-by": "pysteps",
        "pysteps.io/revision": str(revision),
    }
    annotations = {"pysteps.io/desired-replicas": "3"}
    if rolled_out:
        annotations[ANN_ROLLED_OUT] = "2026-01-01T00:00:00Z"
    kube.create(
        {
            "kind": "ReplicationController",
            "metadata": {
                "name": f"hello-r{revision}",
                "namespace": NS,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {
                "replicas": replicas,
                "selector": labels,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "hello", "image": image}]},
                },
            },
        }
    )


def replicas(kube: FakeKube) -> dict[str, int]:
    return {
        r["metadata"]["name"]: r["spec"]["replicas"] for r in kube.list("ReplicationController", NS)
    }


def scaling_steps(out: str, name: str) -> list[int]:
    prefix = f"scaled ReplicationController {name} to "
    return [int(line.split(prefix)[1]) for line in out.splitlines() if prefix in line]


def rollout(kube: FakeKube, out: io.StringIO) -> ControllerRollout:
    return ControllerRollout(kube, Console(stream=out), poll=0)


@pytest.mark.parametrize(
    ("max_surge", "want", "step"),
    [("25%", 4, 1), ("50%", 3, 2), ("100%", 3, 3), ("1", 4, 1), ("2", 5, 2), ("0", 3, 1)],
)
def test_surge_step_honours_percentages_and_numbers(max_surge, want, step):
    assert surge_step(max_surge, want) == step


def test_absolute_surge_steps_one_pod_at_a_time():
    kube, out = FakeKube(), io.StringIO()
    make_rc(kube, 1, 3, "img:1", rolled_out=True)
    make_rc(kube, 2, 0, "img:2", rolled_out=False)
    outcome = rollout(kube, out).resume(ControllerTarget(NS, "hello", 3, 30, "1"))
    assert outcome.ok, outcome.message
    assert scaling_steps(out.getvalue(), "hello-r2") == [1, 2, 3]
    assert replicas(kube) == {"hello-r1": 0, "hello-r2": 3}


def test_interrupted_rollout_resumes_where_it_stopped():
    kube, out = FakeKube(), io.StringIO()
    make_rc(kube, 1, 3, "img:1", rolled_out=True)  # killed at r1: 3, r2: 2
    make_rc(kube, 2, 2, "img:2", rolled_out=False)
    outcome = rollout(kube, out).resume(ControllerTarget(NS, "hello", 3, 30, "1"))
    assert outcome.ok, outcome.message
    # never scaled back to 0 or 1: it continues from 2
    assert scaling_steps(out.getvalue(), "hello-r2") == [3]
    assert replicas(kube) == {"hello-r1": 0, "hello-r2": 3}
    r2 = kube.get("ReplicationController", NS, "hello-r2")
    assert ANN_ROLLED_OUT in r2["metadata"]["annotations"]


def test_failed_resume_restores_the_last_revision_that_rolled_out():
    kube, out = FakeKube(), io.StringIO()
    make_rc(kube, 1, 1, "img:1", rolled_out=True)
    make_rc(kube, 2, 1, "img:2", rolled_out=True)  # the last good one, half scaled down
    make_rc(kube, 3, 2, "img:crash", rolled_out=False)
    outcome = rollout(kube, out).resume(ControllerTarget(NS, "hello", 3, 30, "1"))
    assert not outcome.ok and outcome.rolled_back
    assert replicas(kube) == {"hello-r1": 0, "hello-r2": 3}


def test_old_controllers_are_scaled_down_oldest_first():
    kube, out = FakeKube(), io.StringIO()
    make_rc(kube, 1, 1, "img:1", rolled_out=True)
    make_rc(kube, 2, 3, "img:2", rolled_out=True)
    make_rc(kube, 3, 0, "img:3", rolled_out=False)
    rollout(kube, out)._scale_down_old(NS, "hello", "hello-r3", 2)
    assert replicas(kube) == {"hello-r1": 0, "hello-r2": 2, "hello-r3": 0}
