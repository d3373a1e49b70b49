"""kubectl's rollout rules, and the doomed-pod rules on top."""

from __future__ import annotations

import pytest

from pysteps.rollout import deployment_verdict, pod_problems


def dep(generation=2, observed=2, replicas=3, updated=3, total=3, available=3, conditions=()):
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "replicas": total,
            "availableReplicas": available,
            "conditions": list(conditions),
        },
    }


@pytest.mark.parametrize(
    ("obj", "state", "text"),
    [
        (dep(generation=3, observed=2), "waiting", "spec update to be observed"),
        (dep(updated=1), "waiting", "1 of 3 new replicas updated"),
        (dep(total=4), "waiting", "1 old replicas pending termination"),
        (dep(available=2), "waiting", "2 of 3 updated replicas available"),
        (dep(), "done", "3 of 3 replicas available"),
        (
            dep(
                available=0,
                conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}],
            ),
            "failed",
            "progress deadline exceeded",
        ),
    ],
)
def test_deployment_verdicts(obj, state, text):
    verdict = deployment_verdict(obj)
    assert verdict.state == state
    assert text in verdict.message


def pod(reason=None, restarts=0, phase="Running"):
    state = {"waiting": {"reason": reason, "message": "m"}} if reason else {"running": {}}
    return {
        "metadata": {"name": "p"},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "app", "state": state, "restartCount": restarts}],
        },
    }


@pytest.mark.parametrize(
    ("reason", "doomed"),
    [
        ("CrashLoopBackOff", True),
        ("ImagePullBackOff", True),
        ("ErrImagePull", True),
        ("CreateContainerConfigError", True),
        ("ContainerCreating", False),
        (None, False),
    ],
)
def test_doomed_pods(reason, doomed):
    problems = pod_problems([pod(reason, restarts=2)])
    assert bool(problems) is doomed
    if doomed:
        assert problems[0].reason == reason and problems[0].restarts == 2


def test_failed_pod_phase_is_a_problem():
    assert pod_problems([pod(phase="Failed")])[0].reason == "Failed"


def marked(**annotations):
    return {"metadata": {"annotations": annotations}}


PDE = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]
OUT = {"pysteps.io/rolled-out": "2026-01-01T00:00:00Z"}
FAILED = {"pysteps.io/rollout-failed": "CrashLoopBackOff"}


@pytest.mark.parametrize(
    ("obj", "rs", "state", "rolled_out"),
    [
        (dep(), marked(**OUT), "done", True),
        (dep(), marked(), "done", False),  # finished while nobody watched
        (dep(available=1), marked(), "progressing", False),  # interrupted half-way
        (dep(available=0, conditions=PDE), marked(), "failed", False),
        (dep(available=0), marked(**FAILED), "failed", False),  # left by --no-rollback
        (dep(available=1), marked(**OUT), "progressing", True),  # a pod lost since
    ],
)
def test_deployment_status_from_the_deployment_and_its_newest_replicaset(
    obj, rs, state, rolled_out
):
    from pysteps.rollout import deployment_status

    status = deployment_status(obj, rs)
    assert (status.state, status.rolled_out) == (state, rolled_out)
    assert status.finished is (state == "done" and rolled_out)


def rc(revision, replicas, ready, **annotations):
    return {
        "metadata": {"labels": {"rev": str(revision)}, "annotations": annotations},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready},
    }


@pytest.mark.parametrize(
    ("rcs", "state"),
    [
        ([rc(1, 0, 0, **OUT), rc(2, 3, 3, **OUT)], "done"),
        ([rc(1, 0, 0, **OUT), rc(2, 3, 1, **OUT)], "done"),  # readiness checked before the mark
        ([rc(1, 0, 0, **OUT), rc(2, 3, 3)], "done"),  # finished, not yet marked
        ([rc(1, 3, 3, **OUT), rc(2, 2, 2)], "progressing"),  # killed at r1: 3, r2: 2
        ([rc(1, 0, 0, **OUT), rc(2, 3, 1)], "progressing"),
        ([rc(1, 1, 1, **OUT), rc(2, 2, 0, **FAILED)], "failed"),
    ],
)
def test_controllers_status(rcs, state):
    from pysteps.rollout import controllers_status

    status = controllers_status(rcs, lambda r: int(r["metadata"]["labels"]["rev"]), 3)
    assert status.state == state, status.message
