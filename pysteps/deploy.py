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
from pysteps.clients.mail import Notifier
from pysteps.clients.routes import Route, RouteRegistry
from pysteps.console import Console
from pysteps.errors import PystepsError, RolloutFailed, RolloutTimeout
from pysteps.history import now_utc
from pysteps.lock import DeployLock
from pysteps.manifests import Release, selector_labels
from pysteps.notify import after_deploy
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
from pysteps.rollout import RolloutOutcome, pod_ready
from pysteps.spec import AppSpec
from pysteps.state import Observed, ObservedRoute
from pysteps.workloads import Workloads


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
    command: str | None = None  # the command line that ran, for the mail's rerun hint


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
    history_error: str | None = None
    rollback_error: str | None = None

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
            route = ObservedRoute(found.domains, found.upstreams) if found else None
        return Observed(workload, service, code_commit, digest, route, routes.observable)

    # Deploy -------------------------------------------------------------------------

    def deploy(self, spec: AppSpec, release: Release, options: DeployOptions) -> DeployResult:
        result = DeployResult(
            False, 0, spec.namespace, spec.name, spec.mode, spec.kind, release.commit
        )
        self.last_result = result  # what the CLI writes out when deploy raises
        self.workloads.poll = options.poll
        started = time.monotonic()
        started_at = now_utc()
        lock = None
        observed: Observed | None = None
        attempted = False
        try:
            if not options.dry_run:
                lock = DeployLock(
                    self.services.kube,
                    spec.namespace,
                    spec.name,
                    duration=max(60, spec.rollout.timeout_seconds // 2),
                )
                lock.acquire(options.lock_wait, self.say)
                attempted = True
            self.say.heading(f"Observing {spec.namespace}/{spec.name}")
            observed = self.observe(spec, release)
            self._describe_observed(spec, observed)
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
            if attempted:
                after_deploy(self, spec, release, options, result, observed, started_at)

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
                    route = self._route(spec, action)
                    self.services.routes.register(route)
                    self.say(f"  {route.key} -> {', '.join(route.upstreams) or 'no ready pods'}")
                    result.urls = [f"http://{d}/" for d in route.domains]
            except (PystepsError, KeyboardInterrupt):
                result.timings[f"{index + 1}.{action.type}"] = round(time.monotonic() - t0, 3)
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
                result.rollback_error = outcome.message
                return
        else:
            self.say("old ReplicationController scaled back, new one removed")
        result.rolled_back = True

    def _route(self, spec: AppSpec, action: RegisterRoute) -> Route:
        svc = self.workloads.observe_service(spec.namespace, spec.name)
        node_ports = svc.node_ports() if svc else {}
        port = node_ports.get("http") or next(iter(node_ports.values()), None)
        pods = self.services.kube.list("Pod", spec.namespace, selector_labels(spec))
        hosts = sorted(
            {
                p["status"]["hostIP"]
                for p in pods
                if pod_ready(p) and p.get("status", {}).get("hostIP")
            }
        )
        upstreams = tuple(f"{h}:{port}" for h in hosts) if port else ()
        return Route(spec.namespace, spec.name, action.domains, upstreams, node_ports)
