"""The deploy engine: observe (read only), plan (pure), apply (in order, stop at a failure).

Every outside system is reached through a client interface handed in as `Services`, so unit
tests run the whole flow on in-memory fakes and integration tests on the real test bed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pysteps.clients.kube import KubeApi
from pysteps.clients.mail import Mail, Notifier
from pysteps.clients.routes import RouteRegistry
from pysteps.console import Console
from pysteps.errors import PystepsError, RolloutFailed, RolloutTimeout
from pysteps.lock import DeployLock
from pysteps.manifests import ANN_DOMAINS, Release
from pysteps.plan import (
    Action,
    BuildImage,
    CreateWorkload,
    EnsureService,
    Notify,
    Plan,
    RegisterRoute,
    RestartPods,
    RollingUpdate,
    SyncCode,
    desired_image,
    plan_deploy,
)
from pysteps.rollout import FailureReport, RolloutOutcome
from pysteps.routes import Route
from pysteps.routing import (
    app_alive_on,
    app_edge_addresses,
    desired_route,
    refuse_claimed_domains,
    register_route,
)
from pysteps.spec import AppSpec
from pysteps.state import Observed, ObservedRoute
from pysteps.workloads import Workloads, app_selector, rc_revision


class BuiltImageLike(Protocol):
    @property
    def reference(self) -> str: ...

    @property
    def built(self) -> bool: ...


class ImageService(Protocol):
    """Image mode: what the engine needs of the image builder (pysteps.clients.images)."""

    def remote_digest(self, repository: str, tag: str) -> str | None: ...

    def ensure_image(
        self,
        *,
        context: Path,
        dockerfile: str,
        repository: str,
        commit: str,
        extra_tags: Sequence[str] = (),
        build_args: Mapping[str, str] | None = None,
        source_url: str | None = None,
    ) -> BuiltImageLike: ...


class CodeSyncLike(Protocol):
    @property
    def mode(self) -> str: ...

    @property
    def files_written(self) -> int: ...

    @property
    def bytes_written(self) -> int: ...


class CodeService(Protocol):
    """Code mode: what the engine needs of the code store (pysteps.codestore)."""

    volume: str

    def deployed_commit(self, path: str) -> str | None: ...

    def sync(self, path: str, repo: Path, commit: str, keep: int) -> CodeSyncLike: ...

    def switch(self, path: str, commit: str) -> None: ...

    def releases(self, path: str) -> list[str]: ...

    def purge(self, path: str) -> bool: ...


@dataclass
class Services:
    """The clients a command uses; image and code clients are made only when needed."""

    kube: KubeApi
    routes: RouteRegistry
    notifier: Notifier
    images_factory: Callable[[], ImageService] | None = None
    code_factory: Callable[[], CodeService] | None = None
    _images: ImageService | None = None
    _code: CodeService | None = None

    @property
    def images(self) -> ImageService:
        if self._images is None:
            if self.images_factory is None:
                raise PystepsError("image mode needs an image builder; none is configured")
            self._images = self.images_factory()
        return self._images

    @property
    def code(self) -> CodeService:
        if self._code is None:
            if self.code_factory is None:
                raise PystepsError("code mode needs a code volume; none is configured")
            self._code = self.code_factory()
        return self._code


@dataclass(frozen=True)
class DeployOptions:
    repo: Path = Path(".")
    dry_run: bool = False
    rollback: bool = True
    lock_wait: float = 0.0
    poll: float = 1.0
    # Move domains that another app's route claims to this app (else exit 3).
    take_domains: bool = False


@dataclass
class DeployResult:
    """What the Jenkins step reads back (--result FILE)."""

    ok: bool
    exit_code: int
    namespace: str
    name: str
    mode: str
    kind: str
    commit: str
    image: str | None = None
    plan: list[dict[str, Any]] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    not_reached: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None
    rolled_back: bool = False
    urls: list[str] = field(default_factory=list)
    node_ports: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    mail_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeployEngine:
    def __init__(self, services: Services, console: Console) -> None:
        self.services = services
        self.say = console
        self.workloads = Workloads(services.kube, console)
        self.last_result: DeployResult | None = None

    # Observe ------------------------------------------------------------------------

    def code_volume(self, spec: AppSpec) -> str | None:
        if spec.mode != "code":
            return None
        return spec.code.volume or self.services.code.volume

    def observe(self, spec: AppSpec, release: Release) -> Observed:
        """Everything the plan needs; reads only."""
        ns, name = spec.namespace, spec.name
        workload = self.workloads.observe(ns, name)
        service = self.workloads.observe_service(ns, name)
        code_commit = None
        digest = None
        if spec.mode == "code":
            code_commit = self.services.code.deployed_commit(spec.code_path)
        elif spec.image:
            digest = self.services.images.remote_digest(spec.image, release.commit)
        route = None
        routes = self.services.routes
        if routes.observable:
            found = routes.get(ns, name)
            route = ObservedRoute(found.route.domains, found.route.upstreams) if found else None
        return Observed(workload, service, code_commit, digest, route, routes.observable)

    # Deploy -------------------------------------------------------------------------

    def deploy(self, spec: AppSpec, release: Release, options: DeployOptions) -> DeployResult:
        result = DeployResult(
            False, 0, spec.namespace, spec.name, spec.mode, spec.kind, release.commit
        )
        self.last_result = result  # what the CLI writes out when deploy raises
        self.workloads.poll = options.poll
        started = time.monotonic()
        lock = None
        try:
            if not options.dry_run:
                lock = DeployLock(
                    self.services.kube,
                    spec.namespace,
                    spec.name,
                    duration=max(60, spec.rollout.timeout_seconds // 2),
                )
                lock.acquire(options.lock_wait, self.say)
            self.say.heading(f"Observing {spec.namespace}/{spec.name}")
            observed = self.observe(spec, release)
            self._describe_observed(spec, observed)
            if not options.dry_run and not options.take_domains:
                # Before anything changes: a domain of another app stops the deploy here.
                refuse_claimed_domains(
                    self.services.routes,
                    spec.namespace,
                    spec.name,
                    spec.rendered_domains(),
                    app_alive_on(self.services.kube),
                )
            plan = plan_deploy(spec, release, observed, self.code_volume(spec))
            result.plan = [a.to_dict() for a in plan.actions]
            result.image = desired_image(spec, observed)
            result.timings["observe_and_plan"] = round(time.monotonic() - started, 3)
            self.say.heading("Plan" + (" (dry run: nothing is changed)" if options.dry_run else ""))
            for line in plan.describe():
                self.say(line)
            if options.dry_run or plan.empty:
                result.ok = True
                return result
            self.say.heading("Applying")
            self._apply(plan, spec, release, observed, options, result)
            result.ok = True
            self.say.heading("Result")
            self.say(f"deployed {spec.namespace}/{spec.name} at {release.short}")
            for url in result.urls:
                self.say(f"  {url}")
            return result
        except PystepsError as exc:
            result.exit_code = exc.exit_code
            result.error = str(exc)
            raise
        except KeyboardInterrupt:
            result.exit_code = 130
            result.error = "interrupted (SIGTERM or Ctrl-C)"
            raise
        finally:
            if lock is not None:
                lock.release()
            result.timings["total"] = round(time.monotonic() - started, 3)
            notify = [a for a in result.plan if a.get("type") == "Notify"]
            if notify and not options.dry_run:
                self._notify(spec, release, result, notify[0])

    def _describe_observed(self, spec: AppSpec, observed: Observed) -> None:
        wl = observed.workload
        if wl is None:
            self.say(f"no workload named {spec.name} yet")
        else:
            self.say(
                f"{wl.kind} {wl.name}: {wl.ready_replicas}/{wl.replicas} ready, "
                f"commit {(wl.commit or '?')[:12]}"
            )
        if spec.mode == "code":
            self.say(f"code on the volume: {(observed.code_commit or 'none')[:12]}")
        else:
            built = "already in the registry" if observed.image_digest else "not built yet"
            self.say(f"image for this commit: {built}")

    def _apply(
        self,
        plan: Plan,
        spec: AppSpec,
        release: Release,
        observed: Observed,
        options: DeployOptions,
        result: DeployResult,
    ) -> None:
        image = desired_image(spec, observed)
        code_volume = self.code_volume(spec)
        synced_from: str | None = None
        pending = [a for a in plan.actions if not isinstance(a, Notify)]
        for index, action in enumerate(pending):
            self.say(f"- {action.describe()}")
            t0 = time.monotonic()
            try:
                if isinstance(action, BuildImage):
                    built = self.services.images.ensure_image(
                        context=options.repo / spec.build.context,
                        dockerfile=spec.build.dockerfile,
                        repository=action.repository,
                        commit=release.commit,
                        extra_tags=spec.build.extra_tags,
                        build_args=spec.build.args,
                        source_url=release.build_url,
                    )
                    image = built.reference
                    result.image = image
                    self.say(f"  image {image}" + ("" if built.built else " (already built)"))
                elif isinstance(action, SyncCode):
                    sync = self.services.code.sync(
                        action.path, options.repo, release.commit, spec.code.keep
                    )
                    synced_from = action.previous
                    self.say(
                        f"  {sync.mode} sync: {sync.files_written} files, "
                        f"{sync.bytes_written} bytes written"
                    )
                elif isinstance(action, (CreateWorkload, RollingUpdate, RestartPods)):
                    assert image is not None
                    outcome = self.workloads.roll_out(
                        spec,
                        release,
                        image,
                        release.commit if spec.mode == "code" else None,
                        code_volume,
                        restore_on_failure=options.rollback,
                    )
                    if not outcome.ok:
                        self._rollout_failed(action, outcome, spec, synced_from, options, result)
                    self.say(f"  {outcome.message}")
                elif isinstance(action, EnsureService):
                    svc = self.workloads.ensure_service(spec)
                    result.node_ports = svc.node_ports()
                elif isinstance(action, RegisterRoute):
                    # Written only here, after the rollout succeeded: a failed deploy
                    # leaves the route of the revision that still serves.
                    route = self._route(spec, action)
                    register_route(
                        self.services.routes,
                        route,
                        options.take_domains,
                        self.say,
                        app_alive_on(self.services.kube),
                    )
                    self._record_domains(spec, route)
                    upstreams = ", ".join(route.upstreams) or "no Ready edge node"
                    self.say(f"  {route.key} -> {upstreams}")
                    result.urls = [f"http://{d}/" for d in route.domains]
            except (PystepsError, KeyboardInterrupt):
                result.failed = action.describe()
                result.not_reached = [a.describe() for a in pending[index + 1 :]]
                raise
            result.done.append(action.describe())
            result.timings[f"{index + 1}.{action.type}"] = round(time.monotonic() - t0, 3)

    def _rollout_failed(
        self,
        action: Action,
        outcome: RolloutOutcome,
        spec: AppSpec,
        synced_from: str | None,
        options: DeployOptions,
        result: DeployResult,
    ) -> None:
        self.say.error(f"rollout failed: {outcome.message}")
        for line in outcome.report.lines():
            self.say(f"  {line}")
        result.report = outcome.report.to_dict()
        if options.rollback:
            self._roll_back_after_failure(action, spec, synced_from, result)
        else:
            self.say("left as it is (--no-rollback)")
        cls = RolloutTimeout if outcome.timed_out else RolloutFailed
        suffix = "; rolled back" if result.rolled_back else ""
        raise cls(f"{spec.namespace}/{spec.name}: {outcome.message}{suffix}")

    def _roll_back_after_failure(
        self, action: Action, spec: AppSpec, synced_from: str | None, result: DeployResult
    ) -> None:
        self.say.heading("Rolling back")
        if synced_from:
            self.services.code.switch(spec.code_path, synced_from)
            self.say(f"code switched back to {synced_from[:12]}")
        if isinstance(action, CreateWorkload):
            self.say(
                f"first deploy of {spec.name}: no earlier revision; the workload is left for "
                f"inspection (pysteps destroy {spec.name} removes it)"
            )
            return
        if spec.kind == "Deployment":
            outcome = self.workloads.rollback(
                spec.namespace, spec.name, spec.rollout.timeout_seconds
            )
            self.say(f"  {outcome.message}")
            if not outcome.ok:
                self.say.error(f"the rollback did not finish either: {outcome.message}")
                return
        else:
            self.say("old ReplicationController scaled back, new one removed")
        result.rolled_back = True

    def _route(self, spec: AppSpec, action: RegisterRoute) -> Route:
        """The app's route on today's edge nodes (pysteps.routing), versioned with the workload."""
        svc = self.workloads.observe_service(spec.namespace, spec.name)
        workload = self.workloads.observe(spec.namespace, spec.name)
        addresses = app_edge_addresses(self.services.kube, spec.namespace, spec.name, self.say)
        current = self.services.routes.get(spec.namespace, spec.name)
        return desired_route(
            spec.namespace,
            spec.name,
            action.domains,
            svc.node_ports() if svc else {},
            addresses,
            workload.revision if workload else 0,
            current.route.canary if current else None,
        )

    def _record_domains(self, spec: AppSpec, route: Route) -> None:
        """Keep the route's domains on the live workload revision, for rollbacks to restore."""
        domains = ",".join(route.domains)
        if spec.kind == "Deployment":
            kind, name = "Deployment", spec.name
        else:
            rcs = self.services.kube.list(
                "ReplicationController", spec.namespace, app_selector(spec.name)
            )
            if not rcs:
                return
            kind, name = "ReplicationController", max(rcs, key=rc_revision)["metadata"]["name"]
        live = self.services.kube.get(kind, spec.namespace, name)
        if live and (live["metadata"].get("annotations") or {}).get(ANN_DOMAINS) != domains:
            patch = {"metadata": {"annotations": {ANN_DOMAINS: domains}}}
            self.services.kube.patch(kind, spec.namespace, name, patch)

    def _notify(
        self, spec: AppSpec, release: Release, result: DeployResult, notify: dict[str, Any]
    ) -> None:
        state = "ok" if result.ok else "FAILED"
        subject = f"[pysteps] {state}: {spec.namespace}/{spec.name} at {release.short}"
        body = "\n".join(deploy_summary(result, release))
        mail = Mail(tuple(notify["to"]), tuple(notify.get("cc") or ()), subject, body)
        try:
            self.services.notifier.send(mail)
            self.say(f"mailed {', '.join(mail.to)}: {subject}")
        except PystepsError as exc:
            result.mail_error = str(exc)
            self.say.warn(f"mail not sent: {exc}")


def deploy_summary(result: DeployResult, release: Release) -> list[str]:
    """The text on-call reads: what happened, what failed and why, where the app is."""
    lines = [
        f"app:      {result.namespace}/{result.name} ({result.mode} mode, {result.kind})",
        f"commit:   {release.commit}",
        f"result:   {'ok' if result.ok else 'FAILED'}"
        + (f" (exit {result.exit_code})" if result.exit_code else ""),
    ]
    if release.build_url:
        lines.append(f"build:    {release.build_url}")
    if result.image:
        lines.append(f"image:    {result.image}")
    if result.error:
        lines.append(f"error:    {result.error}")
    if result.rolled_back:
        lines.append("rollback: the previous revision was restored")
    lines.append("")
    lines.append("done:")
    lines.extend(f"  - {d}" for d in result.done or ["nothing"])
    if result.failed:
        lines.append(f"failed:\n  - {result.failed}")
    if result.not_reached:
        lines.append("not reached:")
        lines.extend(f"  - {d}" for d in result.not_reached)
    if result.report:
        lines.append("why:")
        lines.extend(f"  {line}" for line in FailureReport.from_dict(result.report).lines())
    if result.urls:
        lines.append("urls:")
        lines.extend(f"  {u}" for u in result.urls)
    if result.node_ports:
        ports = ", ".join(f"{k}={v}" for k, v in sorted(result.node_ports.items()))
        lines.append(f"nodeports: {ports}")
    return lines
