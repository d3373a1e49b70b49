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
    path: str
    commit: str
    previous: str | None

    def describe(self) -> str:
        if self.previous:
            return f"update code in {self.path} from {self.previous[:12]} to {self.commit[:12]}"
        return f"create {self.path} and copy code at {self.commit[:12]}"


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
    code_changed = spec.mode == "code" and observed.code_commit != release.commit
    if code_changed:
        actions.append(SyncCode(spec.code_path, release.commit, observed.code_commit))

    if wl is None:
        actions.append(CreateWorkload(spec.kind, spec.name, image, spec.replicas))
    else:
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
            restart_for_code = code_changed and spec.code.restart == "rolling"
            if restart_for_code and not reasons and wl.code_commit != release.commit:
                old = (wl.code_commit or "none")[:12]
                actions.append(
                    RestartPods(
                        spec.kind, spec.name, f"code {old} -> {release.short} on the volume"
                    )
                )
            else:
                if restart_for_code:
                    reasons.append(f"code -> {release.short}")
                if not reasons:
                    reasons.append("pod template changed (resources, env, ports or probe)")
                actions.append(RollingUpdate(spec.kind, spec.name, image, tuple(reasons)))

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


def _short_image(image: str | None) -> str:
    if image is None:
        return "new build"
    if "@sha256:" in image:
        repo, _, digest = image.partition("@sha256:")
        return f"{repo.rsplit('/', 1)[-1]}@{digest[:12]}"
    return image.rsplit("/", 1)[-1]
