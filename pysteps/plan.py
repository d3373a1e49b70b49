"""The decision: a pure function from (spec, release, observed state) to typed actions.

`plan_deploy` does no I/O, so `--dry-run` is free and the whole decision table is tested
without mocks. An empty plan means there is nothing new to ship.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pysteps import manifests
from pysteps.errors import PreconditionError
from pysteps.manifests import Release
from pysteps.spec import AppSpec
from pysteps.state import Observed


@dataclass(frozen=True)
class Action:
    """One step of a plan. Subclasses say what they change in `describe`."""

    def describe(self) -> str:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self), "description": self.describe()}


@dataclass(frozen=True)
class BuildImage(Action):
    repository: str
    tag: str
    context: str
    dockerfile: str

    def describe(self) -> str:
        return (
            f"build {self.repository}:{self.tag} from {self.context}/{self.dockerfile} and push it"
        )


@dataclass(frozen=True)
class SyncCode(Action):
    """Write release COMMIT beside the others on the volume; `current` is not touched."""

    path: str
    commit: str
    previous: str | None

    def describe(self) -> str:
        if self.previous:
            return (
                f"write release {self.commit[:12]} in {self.path} "
                f"(incremental from {self.previous[:12]})"
            )
        return f"create {self.path} and write release {self.commit[:12]}"


@dataclass(frozen=True)
class SwitchCode(Action):
    """Point the app's `current` at release COMMIT.

    live: pods read `current` (code.restart: none), so this is the moment the release goes
    live; it comes before any rollout (new pods start on it) and is switched back when the
    deploy fails. judge: no rollout follows to judge the app, so the switch judges it by the
    pods' readiness. Otherwise pods mount their own release, and `current`, moved after the
    rollout, only records what the workload serves.
    """

    path: str
    commit: str
    previous: str | None
    live: bool
    judge: bool = False

    def describe(self) -> str:
        what = f"switch current in {self.path} to {self.commit[:12]}"
        if self.judge:
            return f"{what} (pods read it at once: judged by readiness, switched back on failure)"
        if self.live:
            return f"{what} (pods read it at once; switched back if the rollout fails)"
        return what


@dataclass(frozen=True)
class CreateWorkload(Action):
    kind: str
    name: str
    image: str | None  # None: the image that BuildImage produces
    replicas: int

    def describe(self) -> str:
        image = self.image or "the new build"
        return f"create {self.kind} {self.name} ({self.replicas} replicas of {image})"


@dataclass(frozen=True)
class RollingUpdate(Action):
    kind: str
    name: str
    image: str | None
    reasons: tuple[str, ...]

    def describe(self) -> str:
        return f"rolling update of {self.kind} {self.name}: {'; '.join(self.reasons)}"


@dataclass(frozen=True)
class RestartPods(Action):
    kind: str
    name: str
    reason: str

    def describe(self) -> str:
        return f"rolling restart of {self.kind} {self.name}: {self.reason}"


@dataclass(frozen=True)
class ResumeRollout(Action):
    """The live revision is the desired one but its rollout never finished: finish it."""

    kind: str
    name: str
    revision: int
    state: str

    def describe(self) -> str:
        return (
            f"finish the rollout of {self.kind} {self.name} revision {self.revision}: {self.state}"
        )


@dataclass(frozen=True)
class JudgeRollout(Action):
    """The live revision is the desired one but it failed: judge it again, finish or fail."""

    kind: str
    name: str
    revision: int
    reason: str

    def describe(self) -> str:
        return (
            f"judge {self.kind} {self.name} revision {self.revision} again "
            f"(it failed: {self.reason})"
        )


@dataclass(frozen=True)
class EnsureService(Action):
    name: str
    ports: tuple[tuple[str, int], ...]
    exists: bool

    def describe(self) -> str:
        ports = ", ".join(f"{n}:{p}" for n, p in self.ports)
        verb = "update" if self.exists else "create"
        return f"{verb} NodePort Service {self.name} ({ports})"


@dataclass(frozen=True)
class RegisterRoute(Action):
    namespace: str
    name: str
    domains: tuple[str, ...]

    def describe(self) -> str:
        return f"register route devnginx/{self.namespace}/{self.name} for {', '.join(self.domains)}"


@dataclass(frozen=True)
class Notify(Action):
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"mail the result to {', '.join(self.to)}"


@dataclass(frozen=True)
class Plan:
    """A deploy decision: what will be done, in order."""

    name: str
    namespace: str
    mode: str
    kind: str
    commit: str
    actions: tuple[Action, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.actions

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "mode": self.mode,
            "kind": self.kind,
            "commit": self.commit,
            "actions": [a.to_dict() for a in self.actions],
        }

    def describe(self) -> list[str]:
        if self.empty:
            return [f"nothing to do: {self.namespace}/{self.name} already runs {self.commit[:12]}"]
        return [f"{i}. {a.describe()}" for i, a in enumerate(self.actions, 1)]


def desired_image(spec: AppSpec, observed: Observed) -> str | None:
    """The image the workload should run, when it is known before applying."""
    if spec.mode == "code":
        return spec.runtime_image
    if observed.image_digest:
        return f"{spec.image}@{observed.image_digest}"
    return None


def desired_template_hash(spec: AppSpec, image: str, commit: str, code_volume: str | None) -> str:
    template = manifests.pod_template(
        spec, image, commit if spec.mode == "code" else None, code_volume
    )
    return manifests.desired_hash(spec, template)


def plan_deploy(
    spec: AppSpec, release: Release, observed: Observed, code_volume: str | None = None
) -> Plan:
    """Decide what a deploy of RELEASE must do, given what was OBSERVED. Pure."""
    actions: list[Action] = []
    image = desired_image(spec, observed)
    wl = observed.workload

    if wl is not None and wl.kind != spec.kind:
        raise PreconditionError(
            f"kind: {spec.namespace}/{spec.name} runs as a {wl.kind}, the spec asks for a "
            f"{spec.kind}; set kind: {wl.kind}, or destroy the app first"
        )

    if spec.mode == "image" and image is None:
        assert spec.image is not None  # the spec's validator guarantees it in image mode
        actions.append(
            BuildImage(spec.image, release.commit, spec.build.context, spec.build.dockerfile)
        )
    if spec.mode == "code" and not _release_on_volume(observed, release.commit):
        actions.append(SyncCode(spec.code_path, release.commit, observed.code_commit))
    pinned = manifests.pinned_release(spec, release.commit) is not None
    switch_live = spec.mode == "code" and not pinned and observed.code_commit != release.commit
    workload_actions = len(actions)

    workload_action = _workload_action(spec, release, observed, image, code_volume)
    if workload_action is not None:
        actions.append(workload_action)

    if switch_live:
        # Before the rollout: new pods must start on the new code (and find `current`).
        rolls = workload_action is not None
        switch = SwitchCode(
            spec.code_path, release.commit, observed.code_commit, True, judge=not rolls
        )
        actions.insert(workload_actions, switch)
    elif spec.mode == "code" and observed.code_commit != release.commit:
        actions.append(SwitchCode(spec.code_path, release.commit, observed.code_commit, False))

    ports = manifests.service_ports(spec)
    if observed.service is None:
        actions.append(EnsureService(spec.name, ports, exists=False))
    elif observed.service.port_pairs() != ports:
        actions.append(EnsureService(spec.name, ports, exists=True))

    domains = tuple(spec.rendered_domains())
    route_stale = observed.route_known and (
        observed.route is None or observed.route.domains != domains
    )
    if domains and (actions or route_stale):
        actions.append(RegisterRoute(spec.namespace, spec.name, domains))

    if actions and spec.mail.wanted:
        everyone = [*spec.mail.to, *(a for lst in spec.mail.lists for a in lst.to)]
        actions.append(Notify(tuple(dict.fromkeys(everyone)), tuple(spec.mail.cc)))

    return Plan(spec.name, spec.namespace, spec.mode, spec.kind, release.commit, tuple(actions))


def _workload_action(
    spec: AppSpec,
    release: Release,
    observed: Observed,
    image: str | None,
    code_volume: str | None,
) -> Action | None:
    """What the workload needs: a new one, a new template, the live rollout finished or
    judged again, or nothing."""
    wl = observed.workload
    if wl is None:
        return CreateWorkload(spec.kind, spec.name, image, spec.replicas)
    wanted = desired_template_hash(spec, image, release.commit, code_volume) if image else None
    # The recorded hash says what pysteps last applied; the live image and replica count
    # catch changes made by hand since (kubectl set image, kubectl scale).
    drifted = (image is not None and wl.image != image) or wl.replicas != spec.replicas
    if wanted is None or wanted != wl.spec_hash or drifted:
        reasons: list[str] = []
        if spec.mode == "image" and (image is None or wl.image != image):
            reasons.append(f"image {_short_image(wl.image)} -> {_short_image(image)}")
        if wl.replicas != spec.replicas:
            reasons.append(f"replicas {wl.replicas} -> {spec.replicas}")
        # Pinned code-mode pods name their release: new code means new pods.
        restart_for_code = (
            manifests.pinned_release(spec, release.commit) is not None
            and wl.code_commit != release.commit
        )
        if restart_for_code and not reasons:
            old = (wl.code_commit or "none")[:12]
            return RestartPods(spec.kind, spec.name, f"code {old} -> {release.short}")
        if restart_for_code:
            reasons.append(f"code -> {release.short}")
        if not reasons:
            reasons.append("pod template changed (resources, env, ports or probe)")
        return RollingUpdate(spec.kind, spec.name, image, tuple(reasons))
    if wl.rollout.state == "failed":
        # The desired revision is live but failed (left by --no-rollback, or the controller
        # gave up since): a rerun must not call that success.
        return JudgeRollout(spec.kind, spec.name, wl.revision, wl.rollout.message)
    if not wl.rollout.finished:
        # Interrupted (SIGTERM, a killed job) before the rollout was judged: finish it.
        state = wl.rollout.message or "not marked rolled out"
        return ResumeRollout(spec.kind, spec.name, wl.revision, state)
    return None


def _release_on_volume(observed: Observed, commit: str) -> bool:
    if observed.code_releases is None:  # not read: trust the `current` record alone
        return observed.code_commit == commit
    return commit in observed.code_releases


def _short_image(image: str | None) -> str:
    if image is None:
        return "new build"
    if "@sha256:" in image:
        repo, _, digest = image.partition("@sha256:")
        return f"{repo.rsplit('/', 1)[-1]}@{digest[:12]}"
    return image.rsplit("/", 1)[-1]
