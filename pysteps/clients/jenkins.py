"""Jenkins through python-jenkins: recent failed builds, restart from a stage, trigger a job.

Credentials come from the environment only (JENKINS_URL, JENKINS_USER, JENKINS_API_TOKEN);
the token is never printed. python-jenkins resolves authentication lazily, and get_version()
sends its request before that happens, so against a Jenkins that refuses anonymous access it
fails: connect() makes an authenticated call first.

Restart from a stage is Declarative Pipeline's RestartDeclarativePipelineAction: it is offered
at <build>/restart when the build is finished, declarative and buildable by the user;
<build>/restart/checkStageName?value=S validates a stage, and a form POST of
json={"stageName": S} to <build>/restart/restart (with the crumb) schedules the new build.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pysteps.errors import InputError, PreconditionError, ServiceError


@dataclass(frozen=True)
class JenkinsLogin:
    """Where Jenkins is and who we are; the token never appears in repr or messages."""

    url: str
    user: str
    token: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JenkinsLogin:
        env = os.environ if env is None else env
        names = ("JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN")
        missing = [k for k in names if not env.get(k)]
        if missing:
            raise InputError(
                f"{', '.join(missing)} not set: export JENKINS_URL, JENKINS_USER and "
                "JENKINS_API_TOKEN (a user's API token, from its Jenkins security page)"
            )
        url = env["JENKINS_URL"]
        if not url.startswith(("http://", "https://")):
            raise InputError(f"JENKINS_URL {url!r}: give the http(s) URL of Jenkins")
        return cls(url.rstrip("/") + "/", env["JENKINS_USER"], env["JENKINS_API_TOKEN"])


@dataclass(frozen=True)
class Build:
    job: str
    number: int
    url: str
    result: str | None  # None while building
    building: bool
    timestamp_ms: int
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.result == "FAILURE"


@dataclass(frozen=True)
class Restart:
    """What `rerun` did: a restart from the stage, or a rebuild with the same parameters."""

    how: str  # "restart" or "rebuild"
    reason: str | None
    build: Build | None
    queue_item: int | None = None


def job_url_path(job: str) -> str:
    """'team-a/shop/main' -> 'job/team-a/job/shop/job/main/' (each part URL-quoted)."""
    parts = [p for p in job.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise InputError("JOB: give the job's full name, e.g. team-a/shop/main")
    return "".join(f"job/{quote(p, safe='')}/" for p in parts)


def _build_from(job: str, data: Mapping[str, Any]) -> Build:
    params: dict[str, Any] = {}
    for action in data.get("actions") or []:
        if isinstance(action, dict) and action.get("_class", "").endswith("ParametersAction"):
            for p in action.get("parameters") or []:
                params[p["name"]] = p.get("value")
    return Build(
        job,
        int(data["number"]),
        str(data.get("url", "")),
        data.get("result"),
        bool(data.get("building")),
        int(data.get("timestamp", 0)),
        params,
    )


class JenkinsClient:
    """The Jenkins REST API as the ops commands need it (one seam: `server`)."""

    def __init__(
        self,
        login: JenkinsLogin,
        timeout: float = 30,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import jenkins  # lazy: only the jenkins command needs python-jenkins

        self._errors = (jenkins.JenkinsException, OSError)
        self._not_found = jenkins.NotFoundException
        self.login = login
        self.server = jenkins.Jenkins(login.url, login.user, login.token, timeout=timeout)
        self.sleep = sleep
        self.version: str | None = None

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._not_found:
            raise PreconditionError(f"{what}: not found on {self.login.url}") from None
        except self._errors as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "401" in text or "403" in text or "authenticat" in text.lower():
                raise PreconditionError(
                    f"{what}: Jenkins refused {self.login.user}: check JENKINS_USER and "
                    "JENKINS_API_TOKEN and the user's permissions"
                ) from None
            raise ServiceError(f"{what}: {self.login.url}: {text}") from None

    def connect(self) -> str:
        """Authenticate (an authenticated call first: see the module doc), then read the version."""
        self._call("log in", self.server.get_whoami)
        self.version = str(self._call("version", self.server.get_version))
        return self.version

    def _get_json(self, what: str, path: str) -> Any:
        import requests

        response = self._call(
            what,
            self.server.jenkins_open,
            requests.Request("GET", self.login.url + path),
        )
        return json.loads(response)

    # Reading -------------------------------------------------------------------------

    def branch_jobs(self, job: str) -> list[str]:
        """The job itself, or for a multibranch project (or folder) the jobs inside it."""
        info = self._get_json(job, job_url_path(job) + "api/json?tree=jobs[name]")
        children = info.get("jobs")
        if children is None:
            return [job]
        return [f"{job}/{c['name']}" for c in children]

    def recent_builds(self, job: str, since_ms: int) -> list[Build]:
        """Builds of JOB started at or after SINCE_MS (epoch milliseconds), newest first."""
        tree = (
            "builds[number,url,result,building,timestamp,"
            "actions[_class,parameters[name,value]]]{0,100}"
        )
        info = self._get_json(job, job_url_path(job) + f"api/json?tree={tree}")
        builds = [_build_from(job, b) for b in info.get("builds") or []]
        return [b for b in builds if b.timestamp_ms >= since_ms]

    def build(self, job: str, number: int | None = None) -> Build:
        """One build; without NUMBER the last failed one."""
        ref = str(number) if number is not None else "lastFailedBuild"
        try:
            data = self._get_json(f"{job} #{ref}", job_url_path(job) + f"{ref}/api/json")
        except PreconditionError:
            if number is None:
                raise PreconditionError(f"{job}: no failed build to rerun") from None
            raise
        return _build_from(job, data)

    def stages(self, job: str, number: int) -> list[dict[str, Any]]:
        """The build's stages (name, status) from the Pipeline Stage View API (wfapi)."""
        described = self._call(f"{job} #{number}", self.server.get_build_stages, job, number)
        return list((described or {}).get("stages") or [])

    def failed_stage(self, job: str, number: int) -> str | None:
        for stage in self.stages(job, number):
            if stage.get("status") == "FAILED":
                return str(stage.get("name"))
        return None

    # Changing ------------------------------------------------------------------------

    def restart_refusal(self, build: Build, stage: str) -> str | None:
        """Why BUILD cannot be restarted from STAGE, or None when it can."""
        import requests

        if build.building:
            return f"build #{build.number} is still running"
        url = f"{self.login.url}{job_url_path(build.job)}{build.number}/restart/checkStageName"
        try:
            answer = self.server.jenkins_open(requests.Request("GET", url, params={"value": stage}))
        except self._not_found:
            return (
                f"build #{build.number} offers no restart (not a declarative pipeline, "
                "or no permission to build the job)"
            )
        except self._errors as exc:
            raise ServiceError(f"{build.job} #{build.number}: restart check: {exc}") from None
        if "error" in answer:
            return f"stage {stage!r} did not run in build #{build.number}, or is not top-level"
        return None

    def restart_from_stage(self, build: Build, stage: str) -> int:
        """Schedule the restart (a POST with the crumb); returns the new build's number."""
        import requests

        next_number = int(
            self._get_json(build.job, job_url_path(build.job) + "api/json?tree=nextBuildNumber")[
                "nextBuildNumber"
            ]
        )
        url = f"{self.login.url}{job_url_path(build.job)}{build.number}/restart/restart"
        request = requests.Request(
            "POST", url, data={"json": json.dumps({"stageName": stage}), "Submit": "Run"}
        )
        self._call(f"{build.job} #{build.number} restart", self.server.jenkins_request, request)
        return next_number

    def trigger(self, job: str, parameters: Mapping[str, str]) -> int:
        """Queue a build of JOB; returns the queue item's number."""
        return int(
            self._call(
                f"trigger {job}",
                self.server.build_job,
                job,
                dict(parameters) if parameters else None,
            )
        )

    def wait_for_queue(self, item: int, job: str, timeout: float, poll: float = 1.0) -> Build:
        """Wait until queue item ITEM became a build; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            info = self._call(f"queue item {item}", self.server.get_queue_item, item)
            executable = info.get("executable")
            if executable:
                return Build(job, int(executable["number"]), str(executable["url"]), None, True, 0)
            if info.get("cancelled"):
                raise PreconditionError(f"{job}: queue item {item} was cancelled")
            if time.monotonic() > deadline:
                why = info.get("why") or "still queued"
                raise ServiceError(
                    f"{job}: queue item {item} did not start in {timeout:g} s: {why}"
                )
            self.sleep(poll)

    def wait_for_build(self, job: str, number: int, timeout: float, poll: float = 2.0) -> Build:
        """Wait for build NUMBER of JOB to appear (a restart) and to finish."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = self._get_json(f"{job} #{number}", job_url_path(job) + f"{number}/api/json")
            except PreconditionError:
                data = None  # not started yet
            if data is not None and not data.get("building"):
                return _build_from(job, data)
            if time.monotonic() > deadline:
                state = "still running" if data else "not started"
                raise ServiceError(f"{job} #{number} {state} after {timeout:g} s")
            self.sleep(poll)
