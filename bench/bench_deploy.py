"""Deploy an existing Deployment to an already-pushed image: pysteps against
`kubectl set image` + `kubectl rollout status` on the same cluster (target ratio <= 1.2).

Both sides change the same Deployment between two images that are already in the registry,
alternating, so neither pays for a build. pysteps also observes, plans, takes the deploy lock,
updates the route and judges the rollout with its pod checks. The example app's readiness probe
waits 3 s, and the test bed's kwok, like a kubelet, makes no pod Ready before that: both sides
wait for a realistic rollout. The absolute overhead of pysteps is printed too.

`--real-node` runs the same on the test bed's real node (kubelet + containerd): the containers
really start and the readiness probe really answers (target ratio <= 1.1 there).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchlib import REPO, git, run, testbed_env

ROUNDS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-node", action="store_true", help="run on the real node")
    real_node = parser.parse_args().real_node
    env = testbed_env()
    namespace = f"bench-deploy-{uuid.uuid4().hex[:6]}"
    kubectl = [env["TESTBED_KUBECTL"], "--kubeconfig", env["KUBECONFIG"]]
    run([*kubectl, "create", "namespace", namespace])
    tmp = Path(tempfile.mkdtemp(prefix="pysteps-bench-"))
    try:
        app = tmp / "app"
        shutil.copytree(REPO / "examples" / "hello", app)
        git(app, "init", "-q", "-b", "main")
        commits = []
        for version in ("a", "b"):
            (app / "www" / "index.html").write_text(f"<h1>{version}</h1>\n")
            git(app, "add", "-A")
            git(app, "commit", "-q", "-m", version)
            commits.append(git(app, "rev-parse", "HEAD"))
        sets = [
            "--set",
            f"namespace={namespace}",
            "--set",
            f"image={env['PYSTEPS_REGISTRY']}/bench/hello",
            "--set",
            f"build.args.BASE={env['TESTBED_BASE_IMAGE']}",
            "--set",
            "mail.to=[]",
        ]
        if real_node:
            placement = tmp / "real-node.json"
            placement.write_text(
                json.dumps(
                    {
                        "node_selector": {env["TESTBED_NODE_LABEL"]: "true"},
                        "tolerations": [{"key": env["TESTBED_NODE_TAINT"], "operator": "Exists"}],
                    }
                )
            )
            sets += ["--overrides", str(placement)]
        base = [sys.executable, "-m", "pysteps", "deploy", "--repo", str(app), *sets]
        images = []
        for commit in commits:  # build and push both once; not measured
            result = tmp / "r.json"
            run([*base, "--commit", commit, "--result", str(result)], env)
            images.append(json.loads(result.read_text())["image"])
        ours, theirs = [], []
        # The Deployment runs image b now. Each round pysteps puts image a back (it sees the
        # change kubectl made by hand as drift) and kubectl sets image b again.
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            run([*base, "--commit", commits[0]], env)
            ours.append(time.perf_counter() - t0)
            image = images[1]
            t0 = time.perf_counter()
            run([*kubectl, "-n", namespace, "set", "image", "deployment/hello", f"hello={image}"])
            run(
                [
                    *kubectl,
                    "-n",
                    namespace,
                    "rollout",
                    "status",
                    "deployment/hello",
                    "--timeout=120s",
                ]
            )
            theirs.append(time.perf_counter() - t0)
        o, t = statistics.median(ours), statistics.median(theirs)
        where, target = ("on the real node", "1.1") if real_node else ("on kwok nodes", "1.2")
        print(
            f"deploy to a pushed image {where}: pysteps {o:.2f}s, kubectl set image + rollout "
            f"status {t:.2f}s, ratio {o / t:.2f} (target <= {target}); pysteps adds {o - t:.2f}s"
        )
    finally:
        run([*kubectl, "delete", "namespace", namespace, "--wait=false"])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
