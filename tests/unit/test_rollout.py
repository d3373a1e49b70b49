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
