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
from pysteps.clients.routes import Route, RouteRegistry
from pysteps.console import Console
from pysteps.errors import PreconditionError, PystepsError, RolloutFailed, RolloutTimeout
from pysteps.lock import DeployLock
from pysteps.manifests import Release, selector_labels
from pysteps.plan import (
    Action,
    BuildImage,
    CreateWorkload,
    EnsureService,
    JudgeRollout,
    Notify,
    Plan,
    RegisterRoute,
    RestartPods,
    ResumeRollout,
    RollingUpdate,
    SwitchCode,
    SyncCode,
    desired_image,
    plan_deploy,
)
from pysteps.rollout import FailureReport, RolloutOutcome, pod_ready
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

    def sync(
        self,
        path: str,
        repo: Path,
        commit: str,
        keep: int,
        *,
        switch: bool = True,
        protect: Sequence[str] = (),
    ) -> CodeSyncLike: ...

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
        # code.restart: none: the switch that put new code live in this deploy, if any.
        self._live_switch: SwitchCode | None = None

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
        code_releases = None
        digest = None
        if spec.mode == "code":
            code_commit = self.services.code.deployed_commit(spec.code_path)
            code_releases = tuple(self.services.code.releases(spec.code_path))
        elif spec.image:
            digest = self.services.images.remote_digest(spec.image, release.commit)
        route = None
        routes = self.services.routes
        if routes.observable:
            found = routes.get(ns, name)
            route = ObservedRoute(found.domains, found.upstreams) if found else None
        return Observed(
            workload,
            service,
            code_commit,
            digest,
            route,
            routes.observable,
            code_releases=code_releases,
        )

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
        self._live_switch = None
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
                    # Only written: pods move to it with the rollout; `current` after it.
                    sync = self.services.code.sync(
                        action.path,
                        options.repo,
                        release.commit,
                        spec.code.keep,
                        switch=False,
                        protect=observed.workload.code_commits if observed.workload else (),
                    )
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
                        self._rollout_failed(action, outcome, spec, options, result)
                    self.say(f"  {outcome.message}")
                elif isinstance(action, (ResumeRollout, JudgeRollout)):
                    if isinstance(action, ResumeRollout):
                        outcome = self.workloads.resume(spec, options.rollback)
                    else:
                        outcome = self.workloads.judge(spec, options.rollback)
                    if not outcome.ok:
                        self._rollout_failed(action, outcome, spec, options, result)
                    self.say(f"  {outcome.message}")
                elif isinstance(action, SwitchCode):
                    self._switch_code(action, spec, options, result)
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

    def _rollout_failed(
        self,
        action: Action,
        outcome: RolloutOutcome,
        spec: AppSpec,
        options: DeployOptions,
        result: DeployResult,
    ) -> None:
        self.say.error(f"rollout failed: {outcome.message}")
        for line in outcome.report.lines():
            self.say(f"  {line}")
        result.report = outcome.report.to_dict()
        if options.rollback:
            self._roll_back_after_failure(action, outcome, spec, options, result)
        else:
            # Noted on the revision, so a rerun judges it again instead of calling it done.
            if not isinstance(action, JudgeRollout):  # noted already
                self.workloads.mark_failed(spec, outcome.message)
            self.say("left as it is (--no-rollback)")
        cls = RolloutTimeout if outcome.timed_out else RolloutFailed
        suffix = "; rolled back" if result.rolled_back else ""
        raise cls(f"{spec.namespace}/{spec.name}: {outcome.message}{suffix}")

    def _roll_back_after_failure(
        self,
        action: Action,
        outcome: RolloutOutcome,
        spec: AppSpec,
        options: DeployOptions,
        result: DeployResult,
    ) -> None:
        self.say.heading("Rolling back")
        live = self._live_switch
        if live is not None and live.previous:
            # code.restart: none: the new code went live before the rollout; take it back.
            self.services.code.switch(live.path, live.previous)
            self.say(f"code switched back to {live.previous[:12]}")
        if isinstance(action, CreateWorkload):
            self.say(
                f"first deploy of {spec.name}: no earlier revision; the workload is left for "
                f"inspection (pysteps destroy {spec.name} removes it)"
            )
            return
        if spec.kind == "Deployment":
            try:
                target = self.workloads.rollback_target(spec.namespace, spec.name, None)
            except PreconditionError as exc:  # e.g. the only revision never became available
                self.say.error(f"not rolled back: {exc}")
                return
            missing = self._missing_release(spec, target.code_commit, options.repo)
            if missing:
                self.say.error(f"not rolled back: {missing}")
                return
            back = self.workloads.rollback(
                spec.namespace, spec.name, spec.rollout.timeout_seconds, target=target
            )
            self.say(f"  {back.message}")
            if not back.ok:
                self.say.error(f"the rollback did not finish either: {back.message}")
                return
        elif outcome.rolled_back:
            self.say("the last revision that rolled out was scaled back, the failed one removed")
        else:
            self.say.error("the earlier revision was not restored (see above)")
            return
        result.rolled_back = True
        self._align_current(spec)

    def _missing_release(self, spec: AppSpec, commit: str | None, repo: Path) -> str | None:
        """Why a revision naming code release COMMIT cannot come back, or None when it can.

        A release gone from the volume is rebuilt from the checkout when it has the commit.
        """
        if spec.mode != "code" or commit is None:
            return None
        if commit in self.services.code.releases(spec.code_path):
            return None
        wl = self.workloads.observe(spec.namespace, spec.name)
        try:
            self.services.code.sync(
                spec.code_path,
                repo,
                commit,
                spec.code.keep,
                switch=False,
                protect=wl.code_commits if wl else (),
            )
            self.say(f"release {commit[:12]} was gone from the volume: rebuilt from git")
            return None
        except PystepsError as exc:
            self.say.warn(f"release {commit[:12]} cannot be rebuilt: {exc}")
        return (
            f"release {commit[:12]} is no longer on the volume ({spec.code_path}); "
            f"deploy commit {commit[:12]} again to rebuild it"
        )

    def _align_current(self, spec: AppSpec) -> None:
        """After a rollback, point `current` at the release the workload's pods run."""
        if spec.mode != "code":
            return
        wl = self.workloads.observe(spec.namespace, spec.name)
        commit = wl.code_commit if wl else None
        if commit and self.services.code.deployed_commit(spec.code_path) != commit:
            self.services.code.switch(spec.code_path, commit)
            self.say(f"code: current switched back to {commit[:12]}, the workload's release")

    def _switch_code(
        self, action: SwitchCode, spec: AppSpec, options: DeployOptions, result: DeployResult
    ) -> None:
        """Move `current`; when pods read it (restart: none), judge the app and undo on failure."""
        self.services.code.switch(action.path, action.commit)
        self.say(f"  current -> {action.commit[:12]}")
        if action.live:
            self._live_switch = action
        if not action.judge:
            return
        outcome = self.workloads.judge_serving(spec)
        if outcome.ok:
            self.say(f"  {outcome.message}")
            return
        self.say.error(f"the app is not serving after the switch: {outcome.message}")
        for line in outcome.report.lines():
            self.say(f"  {line}")
        result.report = outcome.report.to_dict()
        if options.rollback and action.previous:
            self.services.code.switch(action.path, action.previous)
            self.say(f"code switched back to {action.previous[:12]}")
            result.rolled_back = True
        else:
            self.say("left as it is" + (" (--no-rollback)" if not options.rollback else ""))
        suffix = "; rolled back" if result.rolled_back else ""
        raise RolloutFailed(f"{spec.namespace}/{spec.name}: {outcome.message}{suffix}")

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
