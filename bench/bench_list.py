"""`pysteps list` with 500 apps on the test bed's cluster (target <= 2 s), against
`kubectl get deployments,services` of the same objects (the floor: one list per kind)."""

from __future__ import annotations

import json
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

from benchlib import best_of, run, testbed_env

from pysteps import manifests
from pysteps.clients.kube import KubeClient
from pysteps.manifests import Release
from pysteps.spec import build_spec

APPS = 500


def main() -> None:
    env = testbed_env()
    kube = KubeClient(env["KUBECONFIG"])
    namespace = f"bench-list-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        release = Release("b" * 40)

        def create(i: int) -> None:
            # replicas 0: the bench measures listing, not 1000 simulated pods
            spec = build_spec(
                {"name": f"app-{i:03d}", "namespace": namespace, "image": "reg/b/a", "replicas": 0}
            )
            template = manifests.pod_template(spec, "reg/b/a:1", None, None)
            kube.create(manifests.deployment(spec, release, template))
            kube.create(manifests.service(spec))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(APPS)))
        cli = [sys.executable, "-m", "pysteps", "list", "-n", namespace, "--output", "json"]
        got = json.loads(run(cli, env).stdout)
        assert len(got) == APPS, f"pysteps list saw {len(got)} of {APPS} apps"
        ours = best_of(lambda: run(cli, env), 3)
        kubectl = [
            env["TESTBED_KUBECTL"],
            "--kubeconfig",
            env["KUBECONFIG"],
            "-n",
            namespace,
            "get",
            "deployments,services",
            "-o",
            "json",
        ]
        reference = best_of(lambda: run(kubectl), 3)
        verdict = "ok" if ours <= 2.0 else "OVER TARGET"
        print(
            f"pysteps list, {APPS} apps: {ours:.2f}s (target <= 2 s: {verdict}); "
            f"kubectl get deployments,services: {reference:.2f}s; ratio {ours / reference:.2f}"
        )
    finally:
        kube.delete("Namespace", None, namespace)


if __name__ == "__main__":
    main()
