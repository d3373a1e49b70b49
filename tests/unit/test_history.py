"""The deploy history: a capped list of attempts in one ConfigMap per app (on FakeKube)."""

from __future__ import annotations

import json

import pytest

from pysteps.clients.kube import Conflict
from pysteps.errors import ServiceError
from pysteps.history import CAP, DeployAttempt, DeployHistory, describe
from tests.unit.fakes import FakeKube


def attempt(n: int, result: str = "ok", **extra) -> DeployAttempt:
    return DeployAttempt(
        f"2026-01-01T00:00:{n % 60:02d}Z",
        f"2026-01-01T00:01:{n % 60:02d}Z",
        f"{n:040x}",
        result,
        **extra,
    )


def test_first_record_creates_a_configmap_owned_by_the_app():
    kube = FakeKube()
    DeployHistory(kube, "team-a", "shop").record(attempt(1))
    cm = kube.get("ConfigMap", "team-a", "pysteps-history-shop")
    assert cm["metadata"]["labels"] == {
        "app.kubernetes.io/name": "shop",
        "app.kubernetes.io/managed-by": "pysteps",
        "pysteps.io/history": "true",
    }
    assert [a["commit"] for a in json.loads(cm["data"]["attempts.json"])] == [f"{1:040x}"]


def test_attempts_are_kept_in_order_and_capped():
    kube = FakeKube()
    history = DeployHistory(kube, "team-a", "shop")
    for n in range(CAP + 7):
        history.record(attempt(n, "failed" if n % 3 else "ok"))
    kept = history.read()
    assert len(kept) == CAP
    assert [a.commit for a in kept] == [f"{n:040x}" for n in range(7, CAP + 7)]
    assert kept[-1].result == ("failed" if (CAP + 6) % 3 else "ok")


def test_a_long_error_is_cut_so_the_cap_fits():
    kube = FakeKube()
    history = DeployHistory(kube, "team-a", "shop")
    history.record(attempt(1, "failed", error="x" * 10_000))
    (kept,) = history.read()
    assert kept.error is not None and len(kept.error) == 500


def test_a_concurrent_write_is_retried_not_lost():
    kube = FakeKube()
    history = DeployHistory(kube, "team-a", "shop")
    history.record(attempt(1))
    real_replace = kube.replace
    raced = []

    def replace_after_someone_else(obj):
        if not raced:
            raced.append(True)
            DeployHistory(kube, "team-a", "shop").record(attempt(2, "failed"))
        return real_replace(obj)

    kube.replace = replace_after_someone_else
    history.record(attempt(3))
    assert [a.commit[-1] for a in history.read()] == ["1", "2", "3"]


def test_a_history_that_keeps_changing_is_a_service_error():
    kube = FakeKube()
    history = DeployHistory(kube, "team-a", "shop")
    history.record(attempt(1))

    def always_conflict(obj):
        raise Conflict("modified")

    kube.replace = always_conflict
    with pytest.raises(ServiceError, match="pysteps-history-shop"):
        history.record(attempt(2), retries=3)


def test_unreadable_entries_are_skipped():
    kube = FakeKube()
    DeployHistory(kube, "team-a", "shop").record(attempt(1))
    cm = kube.objects[("ConfigMap", "team-a", "pysteps-history-shop")]
    items = json.loads(cm["data"]["attempts.json"])
    cm["data"]["attempts.json"] = json.dumps([*items, {"nonsense": 1}, "x"])
    assert len(DeployHistory(kube, "team-a", "shop").read()) == 1
    cm["data"]["attempts.json"] = "{not json"
    assert DeployHistory(kube, "team-a", "shop").read() == []


def test_describe_lists_newest_first_with_rollback_and_version():
    lines = describe(
        [
            attempt(1, image="r/team/shop@sha256:" + "ab" * 32, build_url="https://ci/job/1/"),
            attempt(2, "failed", rolled_back=True, code_release="c" * 40),
            attempt(3, "failed", rollback_error="deadline exceeded", changed=True),
            attempt(4, changed=False),
        ]
    )
    assert lines[0].split() == ["WHEN", "RESULT", "COMMIT", "VERSION", "ROLLED", "BACK", "BY"]
    assert "ok (no change)" in lines[1]
    assert "tried, failed" in lines[2]
    assert "release cccccccccccc" in lines[3] and lines[3].endswith("  yes")
    assert "sha256:abababababab" in lines[4] and "https://ci/job/1/" in lines[4]
