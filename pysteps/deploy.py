"""The deploy engine: observe (read only), plan (pure), apply (in order, stop at a failure).

Every outside system is reached through a client interface handed in as `Services`, so unit
tests run the whole flow on in-memory fakes and integration tests on the real test bed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pysteps.clients.kube import KubeApi
from pysteps.clients.mail import Mail, Notifier
from pysteps.clients.routes import Route, RouteRegistry
from pysteps.console import Console
from pysteps.errors import PystepsError, RolloutFailed, RolloutTimeout
from pysteps.lock import DeployLock, LockedKube
from pysteps.manifests import Release, env_secret, selector_labels
from pysteps.masking import public_url
from pysteps.ownership import check_code_path_free
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
from pysteps.rollout import FailureReport, RolloutOutcome, pod_ready
from pysteps.spec import AppSpec
from pysteps.state import Observed, ObservedRoute
from pysteps.workloads import Workloads

if TYPE_CHECKING:
    from pysteps.clients.images import ImageService
    from pysteps.codestore import CodeService


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
        # Every cluster write goes through the guard: while a lock is held, it is checked first.
        if not isinstance(services.kube, LockedKube):
            services.kube = LockedKube(services.kube)
        self.guard: LockedKube = services.kube
        self.workloads = Workloads(self.guard, console)
        self.lock: DeployLock | None = None
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
        lock = None
        try:
            if spec.mode == "code":
                check_code_path_free(self.services.kube, spec.namespace, spec.name, spec.code_path)
            if not options.dry_run:
                lock = DeployLock(
                    self.guard.kube,
                    spec.namespace,
                    spec.name,
                    duration=max(60, spec.rollout.timeout_seconds // 2),
                )
                lock.acquire(options.lock_wait, self.say)
                self._hold(lock)
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
                self._hold(None)
                lock.release()
            result.timings["total"] = round(time.monotonic() - started, 3)
            notify = [a for a in result.plan if a.get("type") == "Notify"]
            if notify and not options.dry_run:
                self._notify(spec, release, result, notify[0])

    def _hold(self, lock: DeployLock | None) -> None:
        """While LOCK is held every cluster write first checks it (stops if it was lost)."""
        self.lock = lock
        self.guard.lock = lock

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
                if self.lock is not None:
                    self.lock.check()  # code and routes are written outside the cluster too
                if isinstance(action, BuildImage):
                    # From a clean export of the commit, never from the working tree.
                    built = self.services.images.ensure_commit_image(
                        checkout=options.repo,
                        context=spec.build.context,
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
                    if spec.secret_values:
                        self._ensure_env_secret(spec)
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
                result.failed = action.describe()
                result.not_reached = [a.describe() for a in pending[index + 1 :]]
                raise
            result.done.append(action.describe())
            result.timings[f"{index + 1}.{action.type}"] = round(time.monotonic() - t0, 3)

    def _ensure_env_secret(self, spec: AppSpec) -> None:
        """Write the app's Secret of secret env values (never logged) before pods need it."""
        desired = env_secret(spec)
        kube = self.services.kube
        live = kube.get("Secret", spec.namespace, desired["metadata"]["name"])
        if live is None:
            kube.create(desired)
        elif live.get("data") != desired["data"]:
            desired["metadata"]["resourceVersion"] = live["metadata"].get("resourceVersion")
            kube.replace(desired)
        else:
            return
        self.say(f"  Secret {desired['metadata']['name']}: {', '.join(sorted(desired['data']))}")

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
        lines.append(f"build:    {public_url(release.build_url)}")
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
