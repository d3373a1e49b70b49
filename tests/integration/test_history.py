"""The deploy history on the real control plane, as the namespace-scoped user of the test bed."""

from __future__ import annotations

import threading
import uuid

import pytest

from pysteps.clients.kube import KubeClient
from pysteps.history import DeployAttempt, DeployHistory
from tests.conftest import require

pytestmark = pytest.mark.integration


def test_concurrent_writers_keep_every_attempt(testbed):
    restricted, namespace = require(
        testbed, "PYSTEPS_KUBECONFIG_RESTRICTED", "TESTBED_KUBE_NAMESPACE"
    )
    app = f"ml-h{uuid.uuid4().hex[:6]}"
    kube = KubeClient(restricted)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        history = DeployHistory(KubeClient(restricted), namespace, app)
        try:
            for i in range(5):
                history.record(
                    DeployAttempt(
                        "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", f"{n:020x}{i:020x}", "ok"
                    )
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        kept = DeployHistory(kube, namespace, app).read()
        assert sorted(a.commit for a in kept) == sorted(
            f"{n:020x}{i:020x}" for n in range(4) for i in range(5)
        )
        # each writer's own records stay in its order
        for n in range(4):
            mine = [a.commit for a in kept if a.commit.startswith(f"{n:020x}")]
            assert mine == [f"{n:020x}{i:020x}" for i in range(5)]
        cm = kube.get("ConfigMap", namespace, f"pysteps-history-{app}")
        assert cm is not None and cm["metadata"]["labels"]["app.kubernetes.io/name"] == app
    finally:
        kube.delete("ConfigMap", namespace, f"pysteps-history-{app}")
