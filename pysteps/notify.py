"""After a deploy: record the attempt in the app's history, then mail whom the triggers name.

Neither step may fail a good deploy: a problem is a warning in the output and in the result
file (``history_error``, ``mail_error``), unless the spec says ``mail.required: true``.
"""

from __future__ import annotations

import getpass
import os
import re
from typing import TYPE_CHECKING

from pysteps.errors import PystepsError, ServiceError
from pysteps.history import (
    FAILED,
    INTERRUPTED,
    OK,
    TIMED_OUT,
    DeployAttempt,
    DeployHistory,
    now_utc,
)
from pysteps.mail_report import (
    DeployReport,
    Phase,
    RecipientList,
    compose,
    mail_masker,
    recipients,
    triggers_met,
)
from pysteps.rollout import FailureReport

if TYPE_CHECKING:
    from pysteps.clients.git import Changes
    from pysteps.deploy import DeployEngine, DeployOptions, DeployResult
    from pysteps.manifests import Release
    from pysteps.spec import AppSpec
    from pysteps.state import Observed

_ROLLOUT_ACTIONS = {"CreateWorkload", "RollingUpdate", "RestartPods"}


def result_name(result: DeployResult) -> str:
    if result.ok:
        return OK
    return {70: TIMED_OUT, 130: INTERRUPTED}.get(result.exit_code, FAILED)


def started_by(environ: dict[str, str] | None = None) -> str | None:
    """Who started the deploy: Jenkins' build user when known, else the local user."""
    env = os.environ if environ is None else environ
    user = env.get("BUILD_USER") or env.get("BUILD_USER_ID")
    if user:
        return user
    local = env.get("USER") or env.get("LOGNAME")
    if not local:
        try:
            local = getpass.getuser()
        except (KeyError, OSError):
            return None
    return f"{local} (local run)"


def _failed_action_type(result: DeployResult) -> str | None:
    if result.ok or not result.failed:
        return None
    pending = [a["type"] for a in result.plan if a.get("type") != "Notify"]
    index = len(result.done)
    return pending[index] if index < len(pending) else None


def rollback_story(result: DeployResult, options: DeployOptions) -> str | None:
    """One line on what became of the app after a failure (None after a success)."""
    if result.ok:
        return None
    if result.rolled_back:
        return "rolled back: the previous revision runs again"
    error = getattr(result, "rollback_error", None)
    if error:
        return f"the rollback did NOT finish: {error}"
    failed_type = _failed_action_type(result)
    if failed_type == "CreateWorkload":
        return "nothing to roll back to (first deploy); the workload is left for inspection"
    if failed_type in _ROLLOUT_ACTIONS:
        if not options.rollback:
            return "not rolled back (--no-rollback): the failed revision is left as it is"
        return "not rolled back"
    if any(t in _ROLLOUT_ACTIONS for t in (a.get("type") for a in result.plan[: len(result.done)])):
        return "not rolled back: the new revision runs; the failure came after the rollout"
    return "nothing to roll back: no workload was changed"


def phases(result: DeployResult) -> tuple[Phase, ...]:
    """The deploy's phases with their durations, in order; the failed one marked."""
    out = []
    for key, seconds in result.timings.items():
        if key == "total":
            continue
        if key == "observe_and_plan":
            name = "observe and plan"
        else:
            name = re.sub(r"(?<!^)([A-Z])", r" \1", key.partition(".")[2]).lower()
        out.append(Phase(name, float(seconds)))
    if out and not result.ok and result.failed:
        out[-1] = Phase(out[-1].name, out[-1].seconds, failed=True)
    return tuple(out)


def rerun_url(build_url: str | None, environ: dict[str, str] | None = None) -> str | None:
    """Where to rerun in Jenkins: PYSTEPS_RERUN_URL, else the build's restart-from-stage page."""
    env = os.environ if environ is None else environ
    if env.get("PYSTEPS_RERUN_URL"):
        return env["PYSTEPS_RERUN_URL"]
    return build_url.rstrip("/") + "/restart" if build_url else None


def rerun_command(spec: AppSpec, release: Release, options: DeployOptions) -> str:
    command = getattr(options, "command", None)
    if command:
        return str(command)
    return (
        f"pysteps deploy --repo {options.repo} --commit {release.commit} "
        f"--set namespace={spec.namespace}"
    )


def recipient_lists(spec: AppSpec) -> list[RecipientList]:
    m = spec.mail
    lists = []
    if m.to or m.cc:
        lists.append(RecipientList(tuple(m.to), tuple(m.cc), tuple(m.on)))
    lists.extend(RecipientList(tuple(x.to), tuple(x.cc), tuple(x.on)) for x in m.lists)
    return lists


def after_deploy(
    engine: DeployEngine,
    spec: AppSpec,
    release: Release,
    options: DeployOptions,
    result: DeployResult,
    observed: Observed | None,
    started_at: str,
) -> None:
    """Record the attempt, then mail it when the triggers say so. Raises only when the mail
    is required and could not be sent after a good deploy."""
    say = engine.say
    attempt = DeployAttempt(
        started_at=started_at,
        finished_at=now_utc(),
        commit=release.commit,
        result=result_name(result),
        exit_code=result.exit_code,
        build_url=release.build_url,
        started_by=started_by(),
        image=result.image if spec.mode == "image" else None,
        code_release=release.commit if spec.mode == "code" else None,
        changed=bool(result.plan) or not result.ok,
        rolled_back=result.rolled_back,
        rollback_error=getattr(result, "rollback_error", None),
        error=result.error,
    )
    masker = mail_masker(engine.say.mask, spec.env)
    attempt = DeployAttempt.from_dict(masker.deep(attempt.to_dict()))
    history = DeployHistory(engine.services.kube, spec.namespace, spec.name)
    previous: list[DeployAttempt] = []
    try:
        previous = history.record(attempt)[:-1]
    except Exception as exc:  # the deploy's outcome stands whatever the history does
        result.history_error = _describe(exc)
        say.warn(f"deploy history not recorded: {result.history_error}")
        try:
            previous = history.read()
        except Exception:
            previous = []
    planned = any(a.get("type") == "Notify" for a in result.plan)
    # A deploy that failed before it could plan (cluster unreachable, ...) is mailed too.
    if not planned and (result.ok or not spec.mail.wanted):
        return
    met = triggers_met(previous, attempt)
    to, cc = recipients(recipient_lists(spec), met)
    if not to and not cc:
        say(f"no mail: mail.on names none of {', '.join(sorted(met))}")
        return
    try:
        report = build_report(engine, spec, release, options, result, observed, previous, met)
        mail = compose(report, to, cc, masker)
        engine.services.notifier.send(mail)
        say(f"mailed {', '.join([*to, *cc])}: {mail.subject}")
    except Exception as exc:  # a mail problem never fails a good deploy (unless required)
        result.mail_error = masker(_describe(exc))
        say.warn(f"mail not sent: {result.mail_error}")
        if spec.mail.required and result.ok:
            result.ok = False
            result.exit_code = ServiceError.exit_code
            result.error = f"mail.required: {result.mail_error}"
            raise ServiceError(
                f"the deploy succeeded but its mail was not sent: {result.mail_error}"
            ) from None


def _describe(exc: Exception) -> str:
    if isinstance(exc, PystepsError):
        return str(exc)
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc) else ''}"


def build_report(
    engine: DeployEngine,
    spec: AppSpec,
    release: Release,
    options: DeployOptions,
    result: DeployResult,
    observed: Observed | None,
    previous: list[DeployAttempt],
    met: frozenset[str],
) -> DeployReport:
    """The mail's input, gathered after the deploy (reads only; never raises)."""
    ready = desired = None
    try:
        live = engine.workloads.observe(spec.namespace, spec.name)
        if live is not None:
            ready, desired = live.ready_replicas, live.replicas
    except PystepsError:
        pass
    failure = FailureReport.from_dict(result.report) if result.report else None
    return DeployReport(
        namespace=spec.namespace,
        name=spec.name,
        mode=spec.mode,
        kind=spec.kind,
        commit=release.commit,
        result=result_name(result),
        exit_code=result.exit_code,
        error=result.error,
        image=result.image if spec.mode == "image" else None,
        code_release=release.commit if spec.mode == "code" else None,
        replicas_ready=ready,
        replicas_desired=desired,
        urls=tuple(result.urls),
        build_url=release.build_url,
        started_by=started_by(),
        phases=phases(result),
        total_seconds=float(result.timings.get("total", 0.0)),
        changes=_changes(options, release, observed, previous),
        failed_step=result.failed,
        not_reached=tuple(result.not_reached),
        failure=failure,
        rollback=rollback_story(result, options),
        rerun_command=None if result.ok else rerun_command(spec, release, options),
        rerun_url=None if result.ok else rerun_url(release.build_url),
        triggers=met,
    )


def _changes(
    options: DeployOptions,
    release: Release,
    observed: Observed | None,
    previous: list[DeployAttempt],
) -> Changes:
    """Commits since the last deployed commit: the live workload's, else the history's."""
    from pysteps.clients.git import changes_between

    since: str | None = None
    if observed is not None and observed.workload is not None:
        since = observed.workload.commit or observed.workload.code_commit
    if since is None and observed is not None:
        since = observed.code_commit
    if since is None:
        since = next((a.commit for a in reversed(previous) if a.result == OK), None)
    return changes_between(options.repo, since, release.commit)
