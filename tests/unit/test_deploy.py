"""The whole deploy flow on in-memory fakes of our client interfaces."""

from __future__ import annotations

import base64
import io
import json

import pytest

from pysteps.clients.mail import MemoryNotifier
from pysteps.console import Console
from pysteps.deploy import DeployEngine, DeployOptions, Services
from pysteps.errors import PreconditionError, RolloutFailed
from pysteps.lock import DeployLock
from pysteps.manifests import Release
from pysteps.spec import build_spec
from tests.unit.fakes import FakeCode, FakeImages, FakeKube, MemoryRouteRegistry, node

C1, C2, C3 = "1" * 40, "2" * 40, "3" * 40
REPO = "127.0.0.1:25000/team/hello"


class World:
    def __init__(self) -> None:
        self.kube = FakeKube()
        self.kube.create(node("node-1", "127.0.0.11"))
        self.kube.create(node("node-2", "127.0.0.12"))
        self.kube.requests.clear()
        self.routes = MemoryRouteRegistry()
        self.mail = MemoryNotifier()
        self.images = FakeImages()
        self.code = FakeCode()
        self.out = io.StringIO()
        self.console = Console(stream=self.out)
        self.services = Services(
            self.kube, self.routes, self.mail, lambda: self.images, lambda: self.code
        )

    def deploy(
        self,
        commit: str,
        dry_run: bool = False,
        rollback: bool = True,
        environ: dict[str, str] | None = None,
        **fields,
    ):
        spec = build_spec(
            {
                "name": "hello",
                "namespace": "team-a",
                "image": REPO,
                "mail": {"to": ["oncall@example.com"]},
                **fields,
            }
        ).with_secrets(environ or {})
        engine = DeployEngine(self.services, self.console)
        self.last_engine = engine
        options = DeployOptions(dry_run=dry_run, rollback=rollback, poll=0)
        return engine.deploy(spec, Release(commit, "https://ci.example.com/job/1/"), options)

    @property
    def last_result(self):
        return self.last_engine.last_result

    def deployment(self):
        return self.kube.get("Deployment", "team-a", "hello")

    def writes(self):
        return [r for r in self.kube.requests if r[0] in ("create", "replace", "patch", "delete")]


@pytest.fixture
def world():
    return World()


def test_first_deploy_creates_everything_and_registers_route(world):
    result = world.deploy(C1)
    assert result.ok and result.exit_code == 0
    dep = world.deployment()
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].startswith(REPO + "@sha256:")
    assert dep["metadata"]["annotations"]["kubernetes.io/change-cause"].startswith(
        "pysteps deploy 111111111111"
    )
    route = world.routes.get("team-a", "hello").route
    assert route.domains == ("hello.ctest.example.com",)
    # Every Ready node's InternalIP with the NodePort, not only the nodes that hold pods.
    assert route.upstreams == ("127.0.0.11:30080", "127.0.0.12:30080")
    assert route.node_ports == {"http": 30080}
    assert route.revision == 1
    assert result.urls == ["http://hello.ctest.example.com/"]
    assert [m.subject for m in world.mail.sent] == ["[pysteps] ok: team-a/hello at 111111111111"]
    # the lock is released
    assert world.kube.get("Lease", "team-a", "pysteps-deploy-hello") is None


def test_second_deploy_with_nothing_new_changes_nothing(world):
    world.deploy(C1)
    world.kube.requests.clear()
    world.mail.sent.clear()
    result = world.deploy(C1)
    assert result.ok and result.plan == []
    # only the lock lease and the attempt in the history are written; no workload, service
    # or route change, no mail
    assert {kind for _verb, kind in world.writes()} == {"Lease", "ConfigMap"}
    assert world.mail.sent == []
    assert world.images.builds == 1


def test_dry_run_changes_nothing(world):
    result = world.deploy(C1, dry_run=True)
    assert [a["type"] for a in result.plan][:2] == ["BuildImage", "CreateWorkload"]
    assert world.writes() == []
    assert world.images.builds == 0
    assert world.mail.sent == []


def test_new_commit_rolls_out_a_new_revision(world):
    world.deploy(C1)
    result = world.deploy(C2)
    assert result.ok
    assert [a["type"] for a in result.plan] == [
        "BuildImage",
        "RollingUpdate",
        "RegisterRoute",
        "Notify",
    ]
    ann = world.deployment()["metadata"]["annotations"]
    assert ann["deployment.kubernetes.io/revision"] == "2"
    assert ann["pysteps.io/commit"] == C2


def test_never_ready_rollout_fails_and_rolls_back(world):
    world.deploy(C1)
    good_image = world.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]
    with pytest.raises(RolloutFailed, match=r"progress deadline exceeded.*rolled back"):
        world.deploy(C2, image="127.0.0.1:25000/team/never-ready")
    dep = world.deployment()
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == good_image
    assert dep["metadata"]["annotations"]["pysteps.io/commit"] == C1
    mail = world.mail.sent[-1]
    assert mail.subject.startswith("[pysteps] FAILED: team-a/hello")
    assert "Rollback:" in mail.body and "rolled back: the previous revision runs" in mail.body
    assert "Not reached:" in mail.body and "register route" in mail.body


def test_crashing_pods_fail_fast_with_reasons_and_logs(world):
    world.deploy(C1)
    with pytest.raises(RolloutFailed, match="CrashLoopBackOff") as err:
        world.deploy(C2, image="127.0.0.1:25000/team/crash")
    assert err.value.exit_code == 1
    out = world.out.getvalue()
    assert "CrashLoopBackOff (restarts 3)" in out
    assert "panic: boom" in out
    body = world.mail.sent[-1].body
    assert "== Failing pods ==" in body and "CrashLoopBackOff (restarts 3)" in body
    assert "panic: boom" in body


def test_no_rollback_leaves_the_failed_revision(world):
    world.deploy(C1)
    with pytest.raises(RolloutFailed):
        world.deploy(C2, image="127.0.0.1:25000/team/crash", rollback=False)
    assert "crash" in world.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]


def test_replication_controller_rolls_client_side_and_restores_on_failure(world):
    world.deploy(C1, kind="ReplicationController", replicas=2)
    rcs = world.kube.list("ReplicationController", "team-a")
    assert [(r["metadata"]["name"], r["spec"]["replicas"]) for r in rcs] == [("hello-r1", 2)]
    world.deploy(C2, kind="ReplicationController", replicas=2)
    rcs = {
        r["metadata"]["name"]: r["spec"]["replicas"]
        for r in world.kube.list("ReplicationController", "team-a")
    }
    assert rcs == {"hello-r1": 0, "hello-r2": 2}
    with pytest.raises(RolloutFailed):
        world.deploy(
            C3, kind="ReplicationController", replicas=2, image="127.0.0.1:25000/team/crash"
        )
    rcs = {
        r["metadata"]["name"]: r["spec"]["replicas"]
        for r in world.kube.list("ReplicationController", "team-a")
    }
    assert rcs == {"hello-r1": 0, "hello-r2": 2}


def test_code_mode_syncs_then_restarts_and_switches_back_on_failure(world):
    code = {"mode": "code", "runtime_image": "127.0.0.1:25000/runtime/busybox:1"}
    first = world.deploy(C1, **code)
    assert [a["type"] for a in first.plan][:2] == ["SyncCode", "CreateWorkload"]
    second = world.deploy(C2, **code)
    assert [a["type"] for a in second.plan][:2] == ["SyncCode", "RestartPods"]
    tmpl = world.deployment()["spec"]["template"]
    assert tmpl["metadata"]["annotations"]["pysteps.io/code-commit"] == C2
    path = tmpl["spec"]["volumes"][0]["hostPath"]["path"]
    assert path == f"/mnt/gv-test/team-a/hello/releases/{C2}"
    assert world.code.deployed_commit("team-a/hello") == C2
    # a code change whose pods crash: `current` never moved, the workload comes back to C2
    with pytest.raises(RolloutFailed, match="rolled back"):
        world.deploy(C3, **{**code, "runtime_image": "127.0.0.1:25000/runtime/crash:1"})
    assert world.code.deployed_commit("team-a/hello") == C2
    tmpl = world.deployment()["spec"]["template"]
    assert tmpl["metadata"]["annotations"]["pysteps.io/code-commit"] == C2
    assert tmpl["spec"]["volumes"][0]["hostPath"]["path"].endswith(f"/releases/{C2}")
    # the releases every kept revision names are protected from pruning
    world.deploy(C3, **code)
    assert set(world.code.protected) >= {C1, C2}


def test_lock_held_by_another_deploy_is_named_and_nothing_changes(world):
    other = DeployLock(
        world.kube, "team-a", "hello", identity="https://ci.example.com/job/other/7/"
    )
    assert other.try_acquire() is None
    world.kube.requests.clear()
    with pytest.raises(PreconditionError, match="job/other/7"):
        world.deploy(C1)
    assert {kind for _verb, kind in world.writes()} <= {"Lease"}
    assert world.deployment() is None


def test_secret_env_goes_to_a_secret_and_is_masked_in_output_report_and_mail(world):
    from pysteps.masking import mask

    secret = "tok-" + "9f3a7c1e5b"
    spec_env = {"API_TOKEN": {"secret_env": "JENKINS_API_TOKEN"}, "MODE": "prod"}
    env = {"JENKINS_API_TOKEN": secret}
    world.deploy(C1, env=spec_env, environ=env)
    # the value reaches the pod through a Secret, never as a literal in the Deployment
    dep = world.deployment()
    assert secret not in json.dumps(dep)
    container_env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "MODE", "value": "prod"} in container_env
    assert {
        "name": "API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hello-pysteps-env", "key": "API_TOKEN"}},
    } in container_env
    stored = world.kube.get("Secret", "team-a", "hello-pysteps-env")
    assert base64.b64decode(stored["data"]["API_TOKEN"]).decode() == secret
    # a crash whose log prints the value: the failure report on the console, in the result
    # and in the mail shows the mask instead
    with pytest.raises(RolloutFailed):
        world.deploy(C2, env=spec_env, environ=env, image="127.0.0.1:25000/team/crash")
    out = world.out.getvalue()
    assert "API_TOKEN=********" in out and secret not in out
    body = world.mail.sent[-1].body
    assert "API_TOKEN=********" in body and secret not in body
    assert secret not in json.dumps(mask.deep(world.last_result.to_dict()))


def test_rollback_skips_revisions_that_never_became_available(world):
    world.deploy(C1)
    good_image = world.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]
    with pytest.raises(RolloutFailed):
        world.deploy(C2, image="127.0.0.1:25000/team/crash")
    with pytest.raises(RolloutFailed, match="rolled back"):
        world.deploy(C3, image="127.0.0.1:25000/team/never-ready")
    # the revision before the last is the crashing one; the rollback goes past it
    assert world.deployment()["spec"]["template"]["spec"]["containers"][0]["image"] == good_image


def test_manual_rollback_refuses_to_return_to_a_revision_that_never_ran(world):
    from pysteps.workloads import Workloads

    with pytest.raises(RolloutFailed):
        world.deploy(C1, image="127.0.0.1:25000/team/crash")  # first deploy: left as it is
    world.deploy(C2)
    with pytest.raises(PreconditionError, match="no earlier revision ever became available"):
        Workloads(world.kube, world.console, poll=0).rollback("team-a", "hello", 10)
    forced = Workloads(world.kube, world.console, poll=0).rollback("team-a", "hello", 10, 1)
    assert not forced.ok  # --to-revision forces it, and it fails as it did


def test_rerun_over_a_failed_revision_is_never_success(world):
    world.deploy(C1)
    good_image = world.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]
    broken = {"image": "127.0.0.1:25000/team/never-ready"}
    with pytest.raises(RolloutFailed):
        world.deploy(C2, rollback=False, **broken)
    # the same deploy again: judged again, failed with the reason, still left as it is
    with pytest.raises(RolloutFailed, match="progress deadline exceeded") as err:
        world.deploy(C2, rollback=False, **broken)
    assert err.value.exit_code == 1
    assert "never-ready" in world.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]
    # and once rollback is allowed, the rerun rolls it back
    with pytest.raises(RolloutFailed, match="rolled back"):
        world.deploy(C2, **broken)
    assert world.deployment()["spec"]["template"]["spec"]["containers"][0]["image"] == good_image


def test_rerun_over_a_failed_controller_revision_is_never_success(world):
    rc = {"kind": "ReplicationController", "replicas": 2}
    world.deploy(C1, **rc)
    broken = {**rc, "image": "127.0.0.1:25000/team/crash"}
    with pytest.raises(RolloutFailed):
        world.deploy(C2, rollback=False, **broken)
    with pytest.raises(RolloutFailed, match="revision 2 failed"):
        world.deploy(C2, rollback=False, **broken)
    with pytest.raises(RolloutFailed, match="rolled back"):
        world.deploy(C2, **broken)
    rcs = {
        r["metadata"]["name"]: r["spec"]["replicas"]
        for r in world.kube.list("ReplicationController", "team-a")
    }
    assert rcs == {"hello-r1": 2}


def test_code_switch_for_apps_that_reload_themselves_is_judged_and_undone(world):
    code = {
        "mode": "code",
        "runtime_image": "127.0.0.1:25000/runtime/busybox:1",
        "code": {"restart": "none"},
        "readiness": None,
    }
    world.deploy(C1, **code)
    assert world.code.deployed_commit("team-a/hello") == C1
    # pods go unready after the switch (as broken code would make them)
    for key, obj in world.kube.objects.items():
        if key[0] == "Pod":
            obj["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    with pytest.raises(RolloutFailed, match="after the switch; rolled back"):
        world.deploy(C2, **code)
    assert world.code.deployed_commit("team-a/hello") == C1


def test_live_code_switch_is_taken_back_when_the_rollout_after_it_fails(world):
    code = {
        "mode": "code",
        "runtime_image": "127.0.0.1:25000/runtime/busybox:1",
        "code": {"restart": "none"},
    }
    world.deploy(C1, **code)
    with pytest.raises(RolloutFailed, match="rolled back"):
        world.deploy(C2, **{**code, "runtime_image": "127.0.0.1:25000/runtime/crash:1"})
    assert world.code.deployed_commit("team-a/hello") == C1
    assert "code switched back to" in world.out.getvalue()


def test_a_lock_stolen_mid_deploy_stops_the_deploy_before_its_next_write(world):
    from pysteps.lock import LockLost

    real_build = world.images.ensure_commit_image

    def build_while_someone_steals_the_lock(**kwargs):
        built = real_build(**kwargs)
        lease = world.kube.get("Lease", "team-a", "pysteps-deploy-hello")
        lease["spec"]["holderIdentity"] = "job/thief/1"
        world.kube.replace(lease)
        world.kube.requests.clear()
        return built

    world.images.ensure_commit_image = build_while_someone_steals_the_lock
    with pytest.raises(LockLost, match="taken by job/thief/1"):
        world.deploy(C1)
    # nothing of the app is written; only the attempt goes into its history (a ConfigMap)
    assert [w for w in world.writes() if w[1] != "ConfigMap"] == []
    assert world.deployment() is None
    assert world.kube.get("Lease", "team-a", "pysteps-deploy-hello")["spec"]["holderIdentity"] == (
        "job/thief/1"
    )
    assert world.last_result.exit_code == 3


def test_a_changed_secret_value_updates_the_secret_and_restarts_the_pods(world):
    spec_env = {"API_TOKEN": {"secret_env": "CI_TOKEN_VAR"}}
    world.deploy(C1, env=spec_env, environ={"CI_TOKEN_VAR": "first-" + "a1b2c3"})
    again = world.deploy(C1, env=spec_env, environ={"CI_TOKEN_VAR": "first-" + "a1b2c3"})
    assert again.plan == []
    changed = world.deploy(C1, env=spec_env, environ={"CI_TOKEN_VAR": "second-" + "d4e5f6"})
    assert "RollingUpdate" in [a["type"] for a in changed.plan]
    stored = world.kube.get("Secret", "team-a", "hello-pysteps-env")["data"]["API_TOKEN"]
    assert base64.b64decode(stored).decode() == "second-d4e5f6"


@pytest.mark.parametrize("in_repo", [True, False])
def test_rollback_target_whose_release_is_gone_is_rebuilt_from_git_or_not_used(world, in_repo):
    code = {"mode": "code", "runtime_image": "127.0.0.1:25000/runtime/busybox:1"}
    world.deploy(C1, **code)
    world.deploy(C2, **code)
    world.code.releases_by_path["team-a/hello"].remove(C2)  # pruned by hand
    if not in_repo:
        world.code.repo_lacks.add(C2)
    with pytest.raises(RolloutFailed) as err:
        world.deploy(C3, **{**code, "runtime_image": "127.0.0.1:25000/runtime/crash:1"})
    tmpl = world.deployment()["spec"]["template"]
    if in_repo:
        assert "rolled back" in str(err.value)
        assert C2 in world.code.releases("team-a/hello")
        assert tmpl["metadata"]["annotations"]["pysteps.io/code-commit"] == C2
    else:
        assert "rolled back" not in str(err.value)
        assert "not rolled back: release 222222222222 is no longer on the volume" in (
            world.out.getvalue()
        )
        assert tmpl["metadata"]["annotations"]["pysteps.io/code-commit"] == C3
