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
from pysteps.clients.mail import Notifier
from pysteps.clients.routes import RouteRegistry
from pysteps.console import Console
from pysteps.errors import PreconditionError, PystepsError, RolloutFailed, RolloutTimeout
from pysteps.history import now_utc
from pysteps.lock import DeployLock, LockedKube
from pysteps.manifests import ANN_DOMAINS, Release, env_secret
from pysteps.notify import after_deploy
from pysteps.ownership import check_code_path_free
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
from pysteps.rollout import RolloutOutcome
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
    # Move domains that another app's route claims to this app (else exit 3).
    take_domains: bool = False
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
        # Every cluster write goes through the guard: while a lock is held, it is checked first.
        if not isinstance(services.kube, LockedKube):
            services.kube = LockedKube(services.kube)
        self.guard: LockedKube = services.kube
        self.workloads = Workloads(self.guard, console)
        self.lock: DeployLock | None = None
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
            route = ObservedRoute(found.route.domains, found.route.upstreams) if found else None
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
        started_at = now_utc()
        lock = None
        observed: Observed | None = None
        attempted = False
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
                attempted = True
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
                self._hold(None)
                lock.release()
            result.timings["total"] = round(time.monotonic() - started, 3)
            if attempted:
                after_deploy(self, spec, release, options, result, observed, started_at)

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
        self._live_switch = None
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
                result.timings[f"{index + 1}.{action.type}"] = round(time.monotonic() - t0, 3)
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
                result.rollback_error = str(exc)
                return
            missing = self._missing_release(spec, target.code_commit, options.repo)
            if missing:
                self.say.error(f"not rolled back: {missing}")
                result.rollback_error = missing
                return
            back = self.workloads.rollback(
                spec.namespace, spec.name, spec.rollout.timeout_seconds, target=target
            )
            self.say(f"  {back.message}")
            if not back.ok:
                self.say.error(f"the rollback did not finish either: {back.message}")
                result.rollback_error = back.message
                return
        elif outcome.rolled_back:
            self.say("the last revision that rolled out was scaled back, the failed one removed")
        else:
            self.say.error("the earlier revision was not restored (see above)")
            result.rollback_error = "the earlier revision was not restored"
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
