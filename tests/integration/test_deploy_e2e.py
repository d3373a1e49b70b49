"""pysteps end to end on the test bed: the real control plane, registry, Docker Engine,
GlusterFS volume, etcd and SMTP store. Every check is made with kubectl or the service itself.

Failures are simulated by the test bed's kwok stages, keyed on the container's
TESTBED_SIMULATE environment variable (never-ready | crash), so an image deployed by digest
can still be made to fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import OWN_DOMAINS_SET, REPO, require
from tests.gitrepo import GitRepo

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "examples" / "hello"


class Bed:
    """The test bed as the CLI sees it, plus kubectl for checking."""

    def __init__(self, env: dict[str, str], namespace: str, tmp: Path) -> None:
        self.env = env
        self.namespace = namespace
        self.tmp = tmp

    def cli(self, *args: str, kubeconfig: str | None = None, timeout: float = 240):
        env = {**os.environ, **self.env}
        if kubeconfig:
            env["KUBECONFIG"] = kubeconfig
        env.pop("BUILD_URL", None)
        out = subprocess.run(
            [sys.executable, "-m", "pysteps", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return out

    def kubectl(self, *args: str) -> str:
        out = subprocess.run(
            [self.env["TESTBED_KUBECTL"], "--kubeconfig", self.env["KUBECONFIG"], *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def kget(self, kind: str, name: str) -> dict:
        return json.loads(self.kubectl("-n", self.namespace, "get", kind, name, "-o", "json"))

    def deploy(self, app: Path, *sets: str, expect: int = 0, extra: tuple[str, ...] = ()):
        result_file = self.tmp / f"result-{uuid.uuid4().hex[:6]}.json"
        args = ["deploy", "--repo", str(app), "--result", str(result_file)]
        args += ["--set", f"namespace={self.namespace}"]
        args += ["--set", f"image={self.env['PYSTEPS_REGISTRY']}/e2e/hello"]
        args += ["--set", f"build.args.BASE={self.env['TESTBED_BASE_IMAGE']}"]
        args += ["--set", OWN_DOMAINS_SET]
        for s in sets:
            args += ["--set", s]
        out = self.cli(*args, *extra)
        detail = f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
        assert out.returncode == expect, detail
        return json.loads(result_file.read_text()), out


def make_app(tmp: Path, name: str = "app") -> Path:
    """A git checkout of examples/hello with one commit."""
    app = tmp / name
    shutil.copytree(EXAMPLE, app)
    GitRepo(app).commit("first")
    return app


def change_page(app: Path, text: str) -> str:
    """Change the page and commit; returns the new commit."""
    repo = GitRepo(app)
    repo.write("www/index.html", f"<h1>{text}</h1>\n")
    return repo.commit(text)


@pytest.fixture
def bed(testbed, tmp_path):
    require(testbed, "KUBECONFIG", "TESTBED_KUBECTL", "PYSTEPS_REGISTRY", "DOCKER_HOST")
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    b = Bed(dict(testbed), namespace, tmp_path)
    b.kubectl("create", "namespace", namespace)
    yield b
    b.kubectl("delete", "namespace", namespace, "--wait=false")


def test_image_mode_create_noop_update_history(bed, tmp_path):
    app = make_app(tmp_path)
    first, _ = bed.deploy(app)
    assert first["ok"] and first["exit_code"] == 0
    dep = bed.kget("deployment", "hello")
    image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(f"{bed.env['PYSTEPS_REGISTRY']}/e2e/hello@sha256:")
    assert image == first["image"]
    assert dep["status"]["availableReplicas"] == 2
    svc = bed.kget("service", "hello")
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["ports"][0]["nodePort"] > 0

    # Nothing new: an empty plan, nothing changed on the cluster.
    rv = dep["metadata"]["resourceVersion"]
    again, out = bed.deploy(app)
    assert again["plan"] == []
    assert "nothing to do" in out.stderr
    assert bed.kget("deployment", "hello")["metadata"]["resourceVersion"] == rv

    # A new commit: rolling update, old ReplicaSet at zero, history readable.
    new_commit = change_page(app, "version 2")
    second, _ = bed.deploy(app)
    assert [a["type"] for a in second["plan"]][:2] == ["BuildImage", "RollingUpdate"]
    dep = bed.kget("deployment", "hello")
    assert dep["metadata"]["annotations"]["pysteps.io/commit"] == new_commit
    rss = json.loads(
        bed.kubectl(
            "-n", bed.namespace, "get", "rs", "-l", "app.kubernetes.io/name=hello", "-o", "json"
        )
    )["items"]
    assert sorted(rs["spec"]["replicas"] for rs in rss) == [0, 2]
    history = bed.kubectl("-n", bed.namespace, "rollout", "history", "deployment/hello")
    assert f"pysteps deploy {new_commit[:12]}" in history


def test_never_ready_fails_and_rolls_back(bed, tmp_path):
    app = make_app(tmp_path)
    first, _ = bed.deploy(app)
    change_page(app, "broken")
    result, out = bed.deploy(
        app,
        "env.TESTBED_SIMULATE=never-ready",
        "rollout.progress_deadline_seconds=10",
        expect=1,
    )
    assert result["rolled_back"] is True
    assert "progress deadline exceeded" in result["error"]
    assert "NotReady" in out.stderr or "Readiness probe failed" in out.stderr
    dep = bed.kget("deployment", "hello")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == first["image"]
    assert "env" not in dep["spec"]["template"]["spec"]["containers"][0]
    assert not result["done"] or "rolling update" not in " ".join(result["done"])
    assert any("register route" in a for a in result["not_reached"])


def test_crash_loop_fails_fast_with_reasons(bed, tmp_path):
    app = make_app(tmp_path)
    bed.deploy(app)
    change_page(app, "crashing")
    started = time.monotonic()
    result, out = bed.deploy(
        app, "env.TESTBED_SIMULATE=crash", "rollout.progress_deadline_seconds=600", expect=1
    )
    # Fails long before the progress deadline: CrashLoopBackOff is doomed.
    assert time.monotonic() - started < 120
    assert "CrashLoopBackOff" in result["error"]
    assert result["report"]["problems"][0]["reason"] == "CrashLoopBackOff"
    assert "recent events:" in out.stderr
    assert result["rolled_back"] is True, out.stderr


def test_replication_controller_rolling_update_and_failure(bed, tmp_path):
    app = make_app(tmp_path)
    bed.deploy(app, "kind=ReplicationController")
    rcs = json.loads(bed.kubectl("-n", bed.namespace, "get", "rc", "-o", "json"))["items"]
    assert [(r["metadata"]["name"], r["spec"]["replicas"]) for r in rcs] == [("hello-r1", 2)]
    first_image = rcs[0]["spec"]["template"]["spec"]["containers"][0]["image"]
    change_page(app, "v2")
    bed.deploy(app, "kind=ReplicationController")
    rcs = json.loads(bed.kubectl("-n", bed.namespace, "get", "rc", "-o", "json"))["items"]
    assert {r["metadata"]["name"]: r["spec"]["replicas"] for r in rcs} == {
        "hello-r1": 0,
        "hello-r2": 2,
    }
    change_page(app, "v3")
    bed.deploy(app, "kind=ReplicationController", "env.TESTBED_SIMULATE=crash", expect=1)
    rcs = json.loads(bed.kubectl("-n", bed.namespace, "get", "rc", "-o", "json"))["items"]
    assert {r["metadata"]["name"]: r["spec"]["replicas"] for r in rcs} == {
        "hello-r1": 0,
        "hello-r2": 2,
    }
    # rollback command: revision 1's template comes back as a new revision (r3: the failed
    # controller was removed), and it alone has replicas
    out = bed.cli("rollback", "hello", "-n", bed.namespace)
    assert out.returncode == 0, out.stderr
    rcs = json.loads(bed.kubectl("-n", bed.namespace, "get", "rc", "-o", "json"))["items"]
    live = [r for r in rcs if r["spec"]["replicas"] > 0]
    assert [(r["metadata"]["name"], r["spec"]["replicas"]) for r in live] == [("hello-r3", 2)]
    assert live[0]["spec"]["template"]["spec"]["containers"][0]["image"] == first_image


def test_code_mode_sync_restart_and_rollback(bed, tmp_path):
    require(bed.env, "PYSTEPS_GLUSTER_HOST", "PYSTEPS_GLUSTER_VOLUME")
    app = make_app(tmp_path)
    code_args = ("-f", str(app / "deploy-code.yaml"))
    path = f"{bed.namespace}/hello-shop"  # code.path stays under the namespace

    def deploy_code(*sets: str, expect: int = 0):
        result_file = tmp_path / f"r-{uuid.uuid4().hex[:6]}.json"
        out = bed.cli(
            "deploy",
            "--repo",
            str(app),
            *code_args,
            "--result",
            str(result_file),
            "--set",
            f"namespace={bed.namespace}",
            "--set",
            f"code.path={path}",
            "--set",
            OWN_DOMAINS_SET,
            *[x for s in sets for x in ("--set", s)],
        )
        assert out.returncode == expect, out.stderr
        return json.loads(result_file.read_text()), out

    first, _ = deploy_code()
    assert [a["type"] for a in first["plan"]][:2] == ["SyncCode", "CreateWorkload"]
    v2 = change_page(app, "code v2")
    second, out = deploy_code()
    assert [a["type"] for a in second["plan"]][:2] == ["SyncCode", "RestartPods"]
    assert "incremental sync" in out.stderr
    dep = bed.kget("deployment", "hello-code")
    assert dep["spec"]["template"]["metadata"]["annotations"]["pysteps.io/code-commit"] == v2
    volume_path = dep["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"]
    assert volume_path.endswith(f"/{path}/releases/{v2}")
    out = bed.cli("rollback", "hello-code", "-n", bed.namespace)
    assert out.returncode == 0, out.stderr
    assert f"code of hello-code switched to {first['commit'][:12]}" in out.stderr
    out = bed.cli("destroy", "hello-code", "-n", bed.namespace, "--purge-code", "--yes")
    assert out.returncode == 0, out.stderr
    assert f"code directory {path}" in out.stderr


def test_destroy_leaves_nothing_behind(bed, tmp_path):
    app = make_app(tmp_path)
    bed.deploy(app)
    out = bed.cli("destroy", "hello", "-n", bed.namespace, "--yes")
    assert out.returncode == 0, out.stderr
    left = bed.kubectl(
        "-n",
        bed.namespace,
        "get",
        "deploy,rs,rc,svc,pods,leases",
        "-l",
        "app.kubernetes.io/name=hello",
        "-o",
        "name",
    )
    assert left.strip() == ""
    assert bed.kubectl("-n", bed.namespace, "get", "leases", "-o", "name").strip() == ""
    from pysteps.clients.routes import EtcdConfig, EtcdV3RouteRegistry

    etcd = EtcdConfig((bed.env["PYSTEPS_ETCD_URL"],))
    assert EtcdV3RouteRegistry(etcd).get(bed.namespace, "hello") is None


def test_restricted_kubeconfig_deploys_in_its_namespace_only(testbed, tmp_path):
    restricted, namespace = require(
        testbed, "PYSTEPS_KUBECONFIG_RESTRICTED", "TESTBED_KUBE_NAMESPACE"
    )
    b = Bed(dict(testbed), namespace, tmp_path)
    app = make_app(tmp_path)
    name = f"r{uuid.uuid4().hex[:6]}"
    result_file = tmp_path / "r.json"
    base = [
        "deploy",
        "--repo",
        str(app),
        "--result",
        str(result_file),
        "--set",
        f"name={name}",
        "--set",
        f"image={testbed['PYSTEPS_REGISTRY']}/e2e/hello",
        "--set",
        f"build.args.BASE={testbed['TESTBED_BASE_IMAGE']}",
    ]
    out = b.cli(*base, "--set", f"namespace={namespace}", kubeconfig=restricted)
    assert out.returncode == 0, out.stderr
    assert b.kget("deployment", name)["status"]["availableReplicas"] == 2
    out = b.cli(*base, "--set", "namespace=default", kubeconfig=restricted)
    assert out.returncode == 3, out.stderr
    assert "may not" in out.stderr
    assert b.cli("destroy", name, "-n", namespace, "--yes", kubeconfig=restricted).returncode == 0


def test_concurrent_deploys_of_one_app_do_not_interleave(bed, tmp_path):
    app = make_app(tmp_path)
    bed.deploy(app)
    # Someone else holds the lock: we are told who, and nothing changes.
    from pysteps.clients.kube import KubeClient
    from pysteps.lock import DeployLock

    holder = DeployLock(
        KubeClient(bed.env["KUBECONFIG"]), bed.namespace, "hello", identity="job/other/7"
    )
    assert holder.try_acquire() is None
    change_page(app, "v2")
    _, out = bed.deploy(app, expect=3)
    assert "job/other/7" in out.stderr
    holder.release()

    # Two deploys of one commit at once: one rolls out, the other waits, then has nothing to do.
    results: list = []

    def run() -> None:
        results.append(bed.deploy(app, extra=("--lock-wait", "180")))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    plans = sorted(len(r[0]["plan"]) for r in results)
    assert plans[0] == 0 and plans[1] > 0
    assert any("waiting for the deploy lock" in r[1].stderr for r in results)


def test_list_and_status(bed, tmp_path):
    app = make_app(tmp_path)
    bed.deploy(app)
    out = bed.cli("list", "-n", bed.namespace, "--output", "json")
    assert out.returncode == 0, out.stderr
    apps = json.loads(out.stdout)
    assert [(a["name"], a["mode"], a["ready"], a["desired"]) for a in apps] == [
        ("hello", "image", 2, 2)
    ]
    assert apps[0]["node_ports"]["http"] > 0
    out = bed.cli("status", "hello", "-n", bed.namespace, "--output", "json")
    status = json.loads(out.stdout)
    assert status["ready"] == 2 and len(status["pods"]) == 2
    assert {p["host_ip"] for p in status["pods"]} <= set(
        bed.env["TESTBED_KUBE_NODE_IPS"].split(",")
    )
    assert status["route"]["domains"] == [f"hello-{bed.namespace}.ctest.example.com"]
