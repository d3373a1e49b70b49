"""Reruns tell the truth and finish what an earlier run left, on the real test bed.

A revision left failed (--no-rollback) is judged again, never reported as done; a rollout
killed with SIGTERM half-way is finished by the next run (Deployment and client-side
ReplicationController alike); code-mode pods name their release, so code and workload roll
back to the same commit; the client-side timeout is exit 70.

Namespaces are `er-<random>`, images `<registry>/er/hello`, code directories `er-<namespace>`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import OWN_DOMAINS_SET, require
from tests.integration.test_deploy_e2e import Bed, change_page, make_app

pytestmark = pytest.mark.integration

ROLLED_OUT = "pysteps.io/rolled-out"


class ErBed(Bed):
    def deploy(self, app: Path, *sets: str, expect: int = 0, extra: tuple[str, ...] = ()):
        result_file = self.tmp / f"result-{uuid.uuid4().hex[:6]}.json"
        out = self.cli(*self.deploy_args(app, result_file, *sets), *extra)
        detail = f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
        assert out.returncode == expect, detail
        return json.loads(result_file.read_text()), out

    def deploy_args(self, app: Path, result_file: Path, *sets: str) -> list[str]:
        args = ["deploy", "--repo", str(app), "--result", str(result_file)]
        args += ["--set", f"namespace={self.namespace}"]
        args += ["--set", f"image={self.env['PYSTEPS_REGISTRY']}/er/hello"]
        args += ["--set", f"build.args.BASE={self.env['TESTBED_BASE_IMAGE']}"]
        args += ["--set", OWN_DOMAINS_SET]
        for s in sets:
            args += ["--set", s]
        return args

    def deploy_code(self, app: Path, *sets: str, expect: int = 0, extra: tuple[str, ...] = ()):
        result_file = self.tmp / f"result-{uuid.uuid4().hex[:6]}.json"
        args = ["deploy", "--repo", str(app), "-f", str(app / "deploy-code.yaml")]
        args += ["--result", str(result_file), "--set", f"namespace={self.namespace}"]
        args += ["--set", f"code.path={self.code_path}", "--set", OWN_DOMAINS_SET]
        for s in sets:
            args += ["--set", s]
        out = self.cli(*args, *extra)
        detail = f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
        assert out.returncode == expect, detail
        return json.loads(result_file.read_text()), out

    @property
    def code_path(self) -> str:
        # Under the app's namespace, as pysteps requires; the namespace is this test's own.
        return f"{self.namespace}/er-hello"

    def get_json(self, *what: str) -> dict:
        return json.loads(self.kubectl("-n", self.namespace, "get", *what, "-o", "json"))

    def controllers(self) -> dict[str, int]:
        rcs = self.get_json("rc")["items"]
        return {r["metadata"]["name"]: r["spec"]["replicas"] for r in rcs}

    def interrupt_when(self, args: list[str], marker: str) -> tuple[int, str]:
        """Run the CLI, send SIGTERM as soon as MARKER appears on stderr; (exit code, stderr)."""
        env = {**os.environ, **self.env}
        env.pop("BUILD_URL", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pysteps", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        seen: list[str] = []
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if marker in line:
                proc.send_signal(signal.SIGTERM)
                break
        rest, _ = proc.communicate(timeout=120)
        return proc.returncode, "".join(seen) + (rest or "")


@pytest.fixture
def bed(testbed, tmp_path):
    require(testbed, "KUBECONFIG", "TESTBED_KUBECTL", "PYSTEPS_REGISTRY", "DOCKER_HOST")
    namespace = f"er-{uuid.uuid4().hex[:8]}"
    b = ErBed(dict(testbed), namespace, tmp_path)
    b.kubectl("create", "namespace", namespace)
    yield b
    b.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.fixture
def code_bed(bed):
    host, volume = require(bed.env, "PYSTEPS_GLUSTER_HOST", "PYSTEPS_GLUSTER_VOLUME")
    from pysteps.clients.storage import GlusterStorage

    with GlusterStorage(host, volume) as storage:
        bed.storage = storage
        yield bed
        from pysteps import codesync

        codesync.purge(storage.app_dir(bed.code_path))


def image_of(obj: dict) -> str:
    return obj["spec"]["template"]["spec"]["containers"][0]["image"]


def newest_rs(bed: ErBed, dep: dict) -> dict:
    revision = dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    rss = bed.get_json("rs", "-l", "app.kubernetes.io/name=hello")["items"]
    return next(
        rs
        for rs in rss
        if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == revision
    )


# -- a revision left failed is judged again -----------------------------------------------------


def test_rerun_after_a_no_rollback_failure_is_not_success(bed, tmp_path):
    app = make_app(tmp_path)
    first, _ = bed.deploy(app)
    change_page(app, "broken")
    broken = ("env.TESTBED_SIMULATE=never-ready", "rollout.progress_deadline_seconds=10")
    failed, _ = bed.deploy(app, *broken, expect=1, extra=("--no-rollback",))
    assert failed["rolled_back"] is False

    # The same deploy again: the live revision is the desired one, but it failed.
    again, out = bed.deploy(app, *broken, expect=1, extra=("--no-rollback",))
    assert [a["type"] for a in again["plan"]][:1] == ["JudgeRollout"]
    assert "progress deadline exceeded" in again["error"]
    assert "nothing to do" not in out.stderr
    assert "TESTBED_SIMULATE" in json.dumps(bed.kget("deployment", "hello")["spec"])

    # Allowed to roll back, the rerun does: the first revision serves again.
    back, _ = bed.deploy(app, *broken, expect=1)
    assert back["rolled_back"] is True
    dep = bed.kget("deployment", "hello")
    assert image_of(dep) == first["image"]
    assert "env" not in dep["spec"]["template"]["spec"]["containers"][0]


def test_rerun_after_a_no_rollback_failure_of_controllers_is_not_success(bed, tmp_path):
    app = make_app(tmp_path)
    bed.deploy(app, "kind=ReplicationController")
    change_page(app, "crashing")
    broken = ("kind=ReplicationController", "env.TESTBED_SIMULATE=crash")
    bed.deploy(app, *broken, expect=1, extra=("--no-rollback",))
    again, _ = bed.deploy(app, *broken, expect=1, extra=("--no-rollback",))
    assert [a["type"] for a in again["plan"]][:1] == ["JudgeRollout"]
    assert "revision 2 failed" in again["error"]
    assert bed.controllers()["hello-r2"] > 0, "left as it is (--no-rollback)"
    back, _ = bed.deploy(app, *broken, expect=1)
    assert back["rolled_back"] is True
    assert bed.controllers() == {"hello-r1": 2}


# -- SIGTERM half-way, then the rerun finishes -------------------------------------------------


def test_deployment_rollout_killed_half_way_is_finished_by_the_rerun(bed, tmp_path):
    app = make_app(tmp_path)
    slow = ("replicas=4", "rollout.max_surge=1", "rollout.max_unavailable=0")
    bed.deploy(app, *slow)
    commit = change_page(app, "v2")
    result_file = tmp_path / "killed.json"
    code, err = bed.interrupt_when(bed.deploy_args(app, result_file, *slow), "updated Deployment")
    assert code == 130, err
    dep = bed.kget("deployment", "hello")
    assert dep["metadata"]["annotations"]["pysteps.io/commit"] == commit
    assert ROLLED_OUT not in newest_rs(bed, dep)["metadata"].get("annotations", {})

    rerun, out = bed.deploy(app, *slow)
    assert [a["type"] for a in rerun["plan"]][:1] == ["ResumeRollout"], out.stderr
    dep = bed.kget("deployment", "hello")
    assert dep["status"]["updatedReplicas"] == dep["status"]["availableReplicas"] == 4
    assert dep["status"]["replicas"] == 4
    assert ROLLED_OUT in newest_rs(bed, dep)["metadata"]["annotations"]
    # and now it is truly nothing to do
    again, _ = bed.deploy(app, *slow)
    assert again["plan"] == []


def test_controller_rollout_killed_half_way_resumes_where_it_stopped(bed, tmp_path):
    app = make_app(tmp_path)
    # max_surge as a number: one pod per step (it used to replace every replica at once)
    rc = ("kind=ReplicationController", "replicas=4", "rollout.max_surge=1")
    bed.deploy(app, *rc)
    change_page(app, "v2")
    code, err = bed.interrupt_when(
        bed.deploy_args(app, tmp_path / "killed.json", *rc),
        "scaled ReplicationController hello-r2 to 2",
    )
    assert code == 130, err
    half = bed.controllers()
    assert half["hello-r2"] == 2 and half["hello-r1"] > 0, half

    rerun, out = bed.deploy(app, *rc)
    assert [a["type"] for a in rerun["plan"]][:1] == ["ResumeRollout"], out.stderr
    assert "hello-r2 to 1" not in out.stderr, "resumed, not started again"
    assert "scaled ReplicationController hello-r2 to 3" in out.stderr
    assert bed.controllers() == {"hello-r1": 0, "hello-r2": 4}
    r2 = bed.kget("rc", "hello-r2")
    assert ROLLED_OUT in r2["metadata"]["annotations"]
    assert bed.deploy(app, *rc)[0]["plan"] == []


# -- the client-side timeout ------------------------------------------------------------------


@pytest.mark.parametrize("rollback", [True, False])
def test_client_side_timeout_is_exit_70(bed, tmp_path, rollback):
    app = make_app(tmp_path)
    first, _ = bed.deploy(app)
    change_page(app, "slow")
    sets = (
        "env.TESTBED_SIMULATE=never-ready",
        "rollout.timeout_seconds=8",
        "rollout.progress_deadline_seconds=600",
    )
    extra = () if rollback else ("--no-rollback",)
    result, _ = bed.deploy(app, *sets, expect=70, extra=extra)
    assert "timed out" in result["error"]
    assert result["rolled_back"] is rollback
    dep = bed.kget("deployment", "hello")
    assert (image_of(dep) == first["image"] and "env" not in json.dumps(dep["spec"])) is rollback


# -- code pinned like images --------------------------------------------------------------------


def pinned_commit(bed: ErBed, name: str = "hello-code") -> tuple[str, str]:
    """The commit the Deployment's template names, and the volume path its pods mount."""
    tmpl = bed.kget("deployment", name)["spec"]["template"]
    return (
        tmpl["metadata"]["annotations"]["pysteps.io/code-commit"],
        tmpl["spec"]["volumes"][0]["hostPath"]["path"],
    )


def current_commit(bed: ErBed) -> str | None:
    from pysteps import codesync

    return codesync.deployed_commit(bed.storage.app_dir(bed.code_path))


def test_code_rollback_moves_code_and_workload_to_the_same_commit(code_bed, tmp_path):
    bed = code_bed
    app = make_app(tmp_path)
    first, _ = bed.deploy_code(app)
    c1 = first["commit"]
    c2 = change_page(app, "code v2")
    bed.deploy_code(app)
    commit, path = pinned_commit(bed)
    assert commit == c2 and path.endswith(f"/{bed.code_path}/releases/{c2}")
    assert current_commit(bed) == c2

    out = bed.cli("rollback", "hello-code", "-n", bed.namespace)
    assert out.returncode == 0, out.stderr
    commit, path = pinned_commit(bed)
    assert commit == c1 and path.endswith(f"/releases/{c1}")
    assert current_commit(bed) == c1


def test_failure_after_an_earlier_failure_rolls_code_and_workload_to_one_commit(code_bed, tmp_path):
    bed = code_bed
    app = make_app(tmp_path)
    c1 = bed.deploy_code(app)[0]["commit"]
    change_page(app, "code v2")
    crash = "env.TESTBED_SIMULATE=crash"
    bed.deploy_code(app, crash, expect=1, extra=("--no-rollback",))
    change_page(app, "code v3")
    result, _ = bed.deploy_code(app, crash, expect=1)
    assert result["rolled_back"] is True
    assert current_commit(bed) == c1
    commit, path = pinned_commit(bed)
    assert commit == c1 and path.endswith(f"/releases/{c1}")


def test_rollback_to_a_release_gone_from_the_volume_is_refused_before_any_change(
    code_bed, tmp_path
):
    bed = code_bed
    app = make_app(tmp_path)
    c1 = bed.deploy_code(app)[0]["commit"]
    c2 = change_page(app, "code v2")
    bed.deploy_code(app)
    # the release the previous revision names disappears (pruned by hand, or an older pysteps)
    bed.storage.app_dir(bed.code_path).delete(f"releases/{c1}", recursive=True)
    rv = bed.kget("deployment", "hello-code")["metadata"]["resourceVersion"]
    out = bed.cli("rollback", "hello-code", "-n", bed.namespace)
    assert out.returncode == 3, out.stderr
    assert f"release {c1[:12]}" in out.stderr and "no longer on volume" in out.stderr
    assert bed.kget("deployment", "hello-code")["metadata"]["resourceVersion"] == rv
    assert pinned_commit(bed)[0] == c2 and current_commit(bed) == c2
    # with the checkout at hand, the release is rebuilt from git and the rollback goes on
    out = bed.cli("rollback", "hello-code", "-n", bed.namespace, "--repo", str(app))
    assert out.returncode == 0, out.stderr
    assert "rebuilt from" in out.stderr
    commit, path = pinned_commit(bed)
    assert commit == c1 and path.endswith(f"/releases/{c1}") and current_commit(bed) == c1


def test_code_for_apps_that_reload_themselves_is_switched_then_judged(code_bed, tmp_path):
    bed = code_bed
    app = make_app(tmp_path)
    none = "code.restart=none"
    c1 = bed.deploy_code(app, none)[0]["commit"]
    assert current_commit(bed) == c1
    generation = bed.kget("deployment", "hello-code")["metadata"]["generation"]
    c2 = change_page(app, "reloaded")
    result, out = bed.deploy_code(app, none)
    switch = next(a for a in result["plan"] if a["type"] == "SwitchCode")
    assert switch["live"] and switch["judge"], result["plan"]
    assert "pods ready" in out.stderr and "after the switch" in out.stderr
    assert current_commit(bed) == c2
    # no restart: the same pods read the new `current`
    dep = bed.kget("deployment", "hello-code")
    assert dep["metadata"]["generation"] == generation
    assert dep["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"].endswith(
        f"/{bed.code_path}"
    )
