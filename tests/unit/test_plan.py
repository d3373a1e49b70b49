"""The deploy decision as a table: mode x kind x exists x changed, no mocks needed."""

from __future__ import annotations

import pytest

from pysteps.errors import PreconditionError
from pysteps.manifests import Release
from pysteps.plan import (
    BuildImage,
    CreateWorkload,
    EnsureService,
    JudgeRollout,
    Notify,
    RegisterRoute,
    RestartPods,
    ResumeRollout,
    RollingUpdate,
    SwitchCode,
    SyncCode,
    desired_template_hash,
    plan_deploy,
)
from pysteps.spec import build_spec
from pysteps.state import (
    Observed,
    ObservedRoute,
    ObservedService,
    ObservedWorkload,
    RolloutStatus,
)

COMMIT = "a" * 40
OLD = "b" * 40
DIGEST = "sha256:" + "c" * 64
REPO = "127.0.0.1:25000/team/hello"


def make_spec(mode: str, kind: str, **extra):
    base = {"name": "hello", "namespace": "team-a", "mode": mode, "kind": kind}
    if mode == "image":
        base["image"] = REPO
    else:
        base["runtime_image"] = "127.0.0.1:25000/runtime/busybox:1"
    base.update(extra)
    return build_spec(base)


def live(
    spec,
    *,
    changed: bool,
    code_commit: str | None = None,
    rollout: RolloutStatus | None = None,
    code_releases: tuple[str, ...] | None = None,
) -> Observed:
    """The world after a successful deploy of COMMIT (or of OLD when CHANGED)."""
    commit = OLD if changed else COMMIT
    if spec.mode == "image":
        image = f"{REPO}@{DIGEST}"
        digest = None if changed else DIGEST
        wl_hash = desired_template_hash(spec, image, commit, None)
        volume_commit = None
    else:
        image = spec.runtime_image
        digest = None
        wl_hash = desired_template_hash(spec, image, commit, None)
        volume_commit = commit
    workload = ObservedWorkload(
        kind=spec.kind,
        name=spec.name,
        spec_hash=wl_hash,
        commit=commit,
        image=image,
        replicas=spec.replicas,
        ready_replicas=spec.replicas,
        code_commit=commit if spec.mode == "code" else None,
        rollout=rollout or RolloutStatus(),
    )
    service = ObservedService(ports=(("http", 8080, 30080),))
    route = ObservedRoute(domains=tuple(spec.rendered_domains()), upstreams=("127.0.0.11:30080",))
    return Observed(
        workload=workload,
        service=service,
        code_commit=code_commit or volume_commit,
        image_digest=digest,
        route=route,
        route_known=True,
        code_releases=code_releases,
    )


def types(plan):
    return [type(a) for a in plan.actions]


CASES = [
    # mode, kind, exists, changed, expected action types
    (
        "image",
        "Deployment",
        False,
        True,
        [BuildImage, CreateWorkload, EnsureService, RegisterRoute],
    ),
    ("image", "Deployment", True, True, [BuildImage, RollingUpdate, RegisterRoute]),
    ("image", "Deployment", True, False, []),
    (
        "image",
        "ReplicationController",
        False,
        True,
        [BuildImage, CreateWorkload, EnsureService, RegisterRoute],
    ),
    ("image", "ReplicationController", True, True, [BuildImage, RollingUpdate, RegisterRoute]),
    ("image", "ReplicationController", True, False, []),
    (
        "code",
        "Deployment",
        False,
        True,
        [SyncCode, CreateWorkload, SwitchCode, EnsureService, RegisterRoute],
    ),
    ("code", "Deployment", True, True, [SyncCode, RestartPods, SwitchCode, RegisterRoute]),
    ("code", "Deployment", True, False, []),
    (
        "code",
        "ReplicationController",
        False,
        True,
        [SyncCode, CreateWorkload, SwitchCode, EnsureService, RegisterRoute],
    ),
    (
        "code",
        "ReplicationController",
        True,
        True,
        [SyncCode, RestartPods, SwitchCode, RegisterRoute],
    ),
    ("code", "ReplicationController", True, False, []),
]


@pytest.mark.parametrize(("mode", "kind", "exists", "changed", "expected"), CASES)
def test_decision_table(mode, kind, exists, changed, expected):
    spec = make_spec(mode, kind)
    observed = live(spec, changed=changed) if exists else Observed(route_known=True)
    plan = plan_deploy(spec, Release(COMMIT), observed)
    assert types(plan) == expected
    assert plan.empty is (expected == [])


def test_nothing_new_is_an_empty_plan_and_says_so():
    spec = make_spec("image", "Deployment")
    plan = plan_deploy(spec, Release(COMMIT), live(spec, changed=False))
    assert plan.empty
    assert plan.describe() == [f"nothing to do: team-a/hello already runs {COMMIT[:12]}"]


def test_rerun_after_build_reuses_pushed_image():
    spec = make_spec("image", "Deployment")
    observed = Observed(image_digest=DIGEST)
    plan = plan_deploy(spec, Release(COMMIT), observed)
    create = plan.actions[0]
    assert isinstance(create, CreateWorkload)
    assert create.image == f"{REPO}@{DIGEST}"


def test_replica_change_is_a_rolling_update_with_reason():
    spec = make_spec("image", "Deployment")
    observed = live(spec, changed=False)
    scaled = make_spec("image", "Deployment", replicas=3)
    plan = plan_deploy(scaled, Release(COMMIT), observed)
    assert types(plan) == [RollingUpdate, RegisterRoute]
    assert plan.actions[0].reasons == ("replicas 1 -> 3",)


def test_code_change_without_restart_writes_then_switches_live():
    spec = make_spec("code", "Deployment", code={"restart": "none"})
    observed = live(spec, changed=False, code_commit=OLD)
    plan = plan_deploy(spec, Release(COMMIT), observed)
    assert types(plan) == [SyncCode, SwitchCode, RegisterRoute]
    assert plan.actions[0].previous == OLD
    switch = plan.actions[1]
    assert switch.live and switch.judge and switch.previous == OLD and switch.commit == COMMIT


def test_first_deploy_of_an_app_that_reads_current_switches_before_creating_pods():
    spec = make_spec("code", "Deployment", code={"restart": "none"})
    plan = plan_deploy(spec, Release(COMMIT), Observed(route_known=True))
    assert types(plan)[:3] == [SyncCode, SwitchCode, CreateWorkload]
    assert plan.actions[1].live and not plan.actions[1].judge  # the rollout judges the pods


def test_pinned_code_switches_current_only_after_the_rollout():
    spec = make_spec("code", "Deployment")
    plan = plan_deploy(spec, Release(COMMIT), live(spec, changed=True))
    kinds = types(plan)
    assert kinds.index(SwitchCode) > kinds.index(RestartPods)
    assert not plan.actions[kinds.index(SwitchCode)].live


def test_release_already_on_the_volume_is_not_written_again():
    # A rollout interrupted after its release was written: only the rollout and the switch.
    spec = make_spec("code", "Deployment")
    observed = live(spec, changed=True, code_releases=(OLD, COMMIT))
    assert types(plan_deploy(spec, Release(COMMIT), observed)) == [
        RestartPods,
        SwitchCode,
        RegisterRoute,
    ]


def test_current_left_behind_by_an_interrupted_run_is_switched_alone():
    spec = make_spec("code", "Deployment")
    observed = live(spec, changed=False, code_commit=OLD, code_releases=(OLD, COMMIT))
    assert types(plan_deploy(spec, Release(COMMIT), observed)) == [SwitchCode, RegisterRoute]


ROLLOUT_STATES = [
    # kind, changed, live rollout status, expected action types
    ("Deployment", False, RolloutStatus("done", "2 of 2 available", True), []),
    (
        "Deployment",
        False,
        RolloutStatus("progressing", "1 of 2 updated replicas available", False),
        [ResumeRollout, RegisterRoute],
    ),
    # finished while nobody watched (killed before the mark): confirmed and marked
    ("Deployment", False, RolloutStatus("done", "2 of 2", False), [ResumeRollout, RegisterRoute]),
    (
        "Deployment",
        False,
        RolloutStatus("failed", "progress deadline exceeded", False),
        [JudgeRollout, RegisterRoute],
    ),
    # a new commit over a failed revision: a new rollout supersedes it
    (
        "Deployment",
        True,
        RolloutStatus("failed", "progress deadline exceeded", False),
        [BuildImage, RollingUpdate, RegisterRoute],
    ),
    ("ReplicationController", False, RolloutStatus("done", "", True), []),
    (
        "ReplicationController",
        False,
        RolloutStatus("progressing", "revision 2 has 2 of 3 replicas", False),
        [ResumeRollout, RegisterRoute],
    ),
    (
        "ReplicationController",
        False,
        RolloutStatus("failed", "CrashLoopBackOff", False),
        [JudgeRollout, RegisterRoute],
    ),
]


@pytest.mark.parametrize(("kind", "changed", "status", "expected"), ROLLOUT_STATES)
def test_decision_table_rollout_state(kind, changed, status, expected):
    spec = make_spec("image", kind)
    plan = plan_deploy(spec, Release(COMMIT), live(spec, changed=changed, rollout=status))
    assert types(plan) == expected
    if expected and expected[0] in (ResumeRollout, JudgeRollout):
        assert status.message in plan.actions[0].describe() or not status.message


def test_code_and_spec_change_together_roll_once():
    spec = make_spec("code", "Deployment")
    observed = live(spec, changed=True)
    plan = plan_deploy(make_spec("code", "Deployment", replicas=2), Release(COMMIT), observed)
    assert types(plan) == [SyncCode, RollingUpdate, SwitchCode, RegisterRoute]
    assert plan.actions[1].reasons == ("replicas 1 -> 2", f"code -> {COMMIT[:12]}")


def test_missing_service_and_stale_route_are_repaired_alone():
    spec = make_spec("image", "Deployment")
    observed = live(spec, changed=False)
    broken = Observed(
        workload=observed.workload,
        service=None,
        image_digest=DIGEST,
        route=ObservedRoute(domains=("old.example.com",), upstreams=()),
        route_known=True,
    )
    plan = plan_deploy(spec, Release(COMMIT), broken)
    assert types(plan) == [EnsureService, RegisterRoute]


def test_route_registry_that_cannot_observe_adds_nothing_to_a_noop():
    spec = make_spec("image", "Deployment")
    observed = live(spec, changed=False)
    unknown = Observed(workload=observed.workload, service=observed.service, image_digest=DIGEST)
    assert plan_deploy(spec, Release(COMMIT), unknown).empty


def test_mail_recipients_add_notify_last():
    spec = make_spec("image", "Deployment", mail={"to": ["oncall@example.com"]})
    plan = plan_deploy(spec, Release(COMMIT), Observed())
    assert isinstance(plan.actions[-1], Notify)
    assert plan.actions[-1].to == ("oncall@example.com",)


def test_kind_switch_is_refused_with_the_fix():
    spec = make_spec("image", "Deployment")
    observed = live(make_spec("image", "ReplicationController"), changed=False)
    with pytest.raises(PreconditionError, match="set kind: ReplicationController"):
        plan_deploy(spec, Release(COMMIT), observed)


def test_plan_json_names_every_action():
    spec = make_spec("image", "Deployment")
    data = plan_deploy(spec, Release(COMMIT), Observed()).to_dict()
    assert [a["type"] for a in data["actions"]] == [
        "BuildImage",
        "CreateWorkload",
        "EnsureService",
        "RegisterRoute",
    ]
    assert data["actions"][0]["tag"] == COMMIT


def test_changes_made_by_hand_are_undone():
    spec = make_spec("image", "Deployment")
    observed = live(spec, changed=False)
    wl = observed.workload
    by_hand = Observed(
        workload=type(wl)(**{**wl.__dict__, "image": f"{REPO}@sha256:{'d' * 64}"}),
        service=observed.service,
        image_digest=DIGEST,
        route=observed.route,
        route_known=True,
    )
    plan = plan_deploy(spec, Release(COMMIT), by_hand)
    assert types(plan) == [RollingUpdate, RegisterRoute]
    scaled = Observed(
        workload=type(wl)(**{**wl.__dict__, "replicas": 5}),
        service=observed.service,
        image_digest=DIGEST,
        route=observed.route,
        route_known=True,
    )
    assert plan_deploy(spec, Release(COMMIT), scaled).actions[0].reasons == ("replicas 5 -> 1",)


@pytest.mark.parametrize(
    ("domains", "upstreams", "message"),
    [
        (("ok.example.com",), ("127.0.0.11:30080",), None),
        (("bad;host.com",), ("127.0.0.11:30080",), "route domain"),
        (("ok.example.com",), ("node-1:30080",), "route upstream"),
        (("ok.example.com",), ("127.0.0.11:0",), "route upstream"),
    ],
)
def test_routes_are_validated_before_they_reach_nginx(domains, upstreams, message):
    from pysteps.errors import InputError
    from pysteps.routes import Route

    route = Route("team-a", "hello", domains, upstreams)
    if message is None:
        route.validate()
    else:
        with pytest.raises(InputError, match=message):
            route.validate()
