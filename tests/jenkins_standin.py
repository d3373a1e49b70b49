"""A STAND-IN for Jenkins' REST API on loopback, for testing `pysteps jenkins` (Jenkins itself
cannot be had here). It follows Jenkins' documented behaviour for what the commands use:

- every answer carries the `X-Jenkins` version header; anonymous requests are refused (403) as
  on a Jenkins without anonymous read access, a wrong API token gets 401;
- a crumb from /crumbIssuer/api/json is required on every POST (403 "No valid crumb");
- folders and multibranch projects list their `jobs`; pipeline jobs list `builds` and
  `nextBuildNumber`; a build's JSON has number, url, result, building, timestamp and a
  ParametersAction; /wfapi/describe gives the stages (Pipeline Stage View);
- build/buildWithParameters answer 201 with a queue item Location; the queue item first says
  `why`, then holds `executable` {number, url}; a started build is `building` for a while;
- restart from a stage (Declarative's RestartDeclarativePipelineAction): <build>/restart exists
  only for a finished declarative build (404 otherwise); checkStageName answers an empty
  <div/> or an error <div>; a form POST of json={"stageName": ...} to restart/restart
  schedules the next build and redirects (302) to the job.

It is not Jenkins: only these endpoints, and a simple scheduler that finishes builds.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

VERSION = "2.479.3"
CRUMB_FIELD = "Jenkins-Crumb"


@dataclass
class FakeBuild:
    number: int
    result: str | None = "SUCCESS"
    stages: list[tuple[str, str]] = field(default_factory=list)  # (name, status)
    parameters: dict[str, str] = field(default_factory=dict)
    timestamp: int = 0
    building_polls: int = 0  # GETs that still see it building
    restarted_from: str | None = None
    cause: str = "user"

    def to_json(self, url: str) -> dict[str, Any]:
        building = self.building_polls > 0
        if building:
            self.building_polls -= 1
        actions: list[dict[str, Any]] = [{"_class": "hudson.model.CauseAction"}]
        if self.parameters:
            actions.append(
                {
                    "_class": "hudson.model.ParametersAction",
                    "parameters": [
                        {"_class": "hudson.model.StringParameterValue", "name": k, "value": v}
                        for k, v in self.parameters.items()
                    ],
                }
            )
        return {
            "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
            "number": self.number,
            "url": url,
            "result": None if building else self.result,
            "building": building,
            "timestamp": self.timestamp,
            "actions": actions,
        }


@dataclass
class FakeJob:
    name: str
    declarative: bool = True
    children: list[str] | None = None  # a folder / multibranch project
    builds: list[FakeBuild] = field(default_factory=list)
    next_build_number: int = 1
    stage_names: list[str] = field(default_factory=list)
    next_result: str = "SUCCESS"

    def add(self, build: FakeBuild) -> FakeBuild:
        self.builds.append(build)
        self.next_build_number = max(self.next_build_number, build.number + 1)
        return build

    def get(self, number: int) -> FakeBuild | None:
        return next((b for b in self.builds if b.number == number), None)


class JenkinsStandIn:
    """The stand-in's state and server; `requests` records (method, path, params) of each call."""

    def __init__(
        self, user: str = "ops", token: str = "11aa22bb33cc44dd55ee66ff77aa88bb99"
    ) -> None:
        self.user, self.token = user, token
        self.crumb = "c0ffee" * 5
        self.jobs: dict[str, FakeJob] = {}
        self.queue: dict[int, dict[str, Any]] = {}
        self.next_queue_id = 100
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> JenkinsStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def job(self, name: str, **kwargs: Any) -> FakeJob:
        job = FakeJob(name, **kwargs)
        self.jobs[name] = job
        return job

    def job_url(self, name: str) -> str:
        from urllib.parse import quote

        return self.url + "".join(f"job/{quote(p, safe='')}/" for p in name.split("/"))

    # Scheduling ----------------------------------------------------------------------

    def schedule(self, job: FakeJob, parameters: dict[str, str], restart_from: str | None) -> int:
        qid = self.next_queue_id
        self.next_queue_id += 1
        number = job.next_build_number
        job.next_build_number += 1
        stages = []
        skipping = restart_from is not None
        for name in job.stage_names:
            if name == restart_from:
                skipping = False
            stages.append((name, "NOT_EXECUTED" if skipping else "SUCCESS"))
        build = FakeBuild(
            number,
            job.next_result,
            stages,
            dict(parameters),
            timestamp=1_700_000_000_000 + number,
            building_polls=1,
            restarted_from=restart_from,
            cause="restart" if restart_from else "user",
        )
        self.queue[qid] = {"job": job, "build": build, "polls": 1}
        if restart_from is not None:  # a restart is scheduled straight away
            self.queue[qid]["polls"] = 0
            job.add(build)
        return qid

    # HTTP ----------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any = None, headers: dict[str, str] | None = None):
                data = b""
                ctype = "application/json;charset=utf-8"
                if isinstance(body, (dict, list)):
                    data = json.dumps(body).encode()
                elif isinstance(body, str):
                    data = body.encode()
                    ctype = "text/html;charset=utf-8"
                self.send_response(code)
                self.send_header("X-Jenkins", VERSION)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Basic "):
                    self._send(403, "<html>Authentication required</html>")
                    return False
                user, _, token = base64.b64decode(auth[6:]).decode().partition(":")
                if (user, token) != (standin.user, standin.token):
                    self._send(401, f"<html>Invalid password/token for user: {user}</html>")
                    return False
                return True

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                params = parse_qs(parts.query)
                body = b""
                if method == "POST":
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    params.update(parse_qs(body.decode()))
                with standin.lock:
                    standin.requests.append((method, parts.path, params))
                    if not self._authorised():
                        return
                    if method == "POST" and self.headers.get(CRUMB_FIELD) != standin.crumb:
                        self._send(403, "<html>No valid crumb was included in the request</html>")
                        return
                    self._route(method, parts.path, params)

            def _route(self, method: str, path: str, params: dict[str, list[str]]) -> None:
                segs = [unquote(s) for s in path.strip("/").split("/") if s]
                if path == "/crumbIssuer/api/json":
                    return self._send(
                        200,
                        {
                            "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                            "crumb": standin.crumb,
                            "crumbRequestField": CRUMB_FIELD,
                        },
                    )
                if path == "/me/api/json":
                    return self._send(200, {"id": standin.user, "fullName": standin.user})
                if path in ("/", "/api/json"):
                    return self._send(200, {"jobs": []})
                if segs[:2] == ["queue", "item"] and len(segs) >= 3:
                    return self._queue_item(int(segs[2]))
                names = []
                while len(segs) >= 2 and segs[0] == "job":
                    names.append(segs[1])
                    segs = segs[2:]
                job = standin.jobs.get("/".join(names))
                if not names or job is None:
                    return self._send(404, "<html>Not Found</html>")
                return self._job(method, job, segs, params)

            def _queue_item(self, qid: int) -> None:
                item = standin.queue.get(qid)
                if item is None:
                    return self._send(404, "<html>Not Found</html>")
                if item["polls"] > 0:
                    item["polls"] -= 1
                    return self._send(
                        200,
                        {
                            "id": qid,
                            "why": "Waiting for next available executor",
                            "executable": None,
                        },
                    )
                job, build = item["job"], item["build"]
                if job.get(build.number) is None:
                    job.add(build)
                url = f"{standin.job_url(job.name)}{build.number}/"
                return self._send(
                    200, {"id": qid, "executable": {"number": build.number, "url": url}}
                )

            def _job(
                self, method: str, job: FakeJob, rest: list[str], params: dict[str, list[str]]
            ) -> None:
                url = standin.job_url(job.name)
                if rest == ["api", "json"] and method == "GET":
                    if job.children is not None:
                        return self._send(
                            200,
                            {
                                "_class": "WorkflowMultiBranchProject",
                                "jobs": [{"name": c} for c in job.children],
                            },
                        )
                    builds = [
                        b.to_json(f"{url}{b.number}/")
                        for b in sorted(job.builds, key=lambda b: -b.number)
                    ]
                    return self._send(
                        200,
                        {
                            "_class": "WorkflowJob",
                            "builds": builds,
                            "nextBuildNumber": job.next_build_number,
                        },
                    )
                if rest in (["build"], ["buildWithParameters"]) and method == "POST":
                    values = {k: v[0] for k, v in params.items() if k not in ("json", "token")}
                    qid = standin.schedule(job, values, None)
                    return self._send(201, "", {"Location": f"{standin.url}queue/item/{qid}/"})
                if not rest:
                    return self._send(200, f"<html>{job.name}</html>")  # the job's page
                if rest[0] == "lastFailedBuild":
                    failed = [b for b in job.builds if b.result == "FAILURE"]
                    if not failed:
                        return self._send(404, "<html>Not Found</html>")
                    rest = [str(max(b.number for b in failed)), *rest[1:]]
                if not rest[0].isdigit():
                    return self._send(404, "<html>Not Found</html>")
                build = job.get(int(rest[0]))
                if build is None:
                    return self._send(404, "<html>Not Found</html>")
                sub = rest[1:]
                if sub == ["api", "json"]:
                    return self._send(200, build.to_json(f"{url}{build.number}/"))
                if sub == ["wfapi", "describe"]:
                    return self._send(
                        200,
                        {
                            "id": str(build.number),
                            "stages": [{"name": n, "status": s} for n, s in build.stages],
                        },
                    )
                if sub and sub[0] == "restart":
                    restartable = (
                        job.declarative and build.building_polls == 0 and build.result is not None
                    )
                    if not restartable:
                        return self._send(404, "<html>Not Found</html>")
                    ran = [
                        n
                        for n, s in build.stages
                        if s not in ("NOT_EXECUTED", "SKIPPED_FOR_FAILURE")
                    ]
                    if sub[1:] == ["checkStageName"] and method == "GET":
                        value = (params.get("value") or [""])[0]
                        if value in ran:
                            return self._send(200, "<div/>")
                        return self._send(
                            200,
                            f'<div class="error">Stage {value} either does not exist in the '
                            "build, or did not run</div>",
                        )
                    if sub[1:] == ["restart"] and method == "POST":
                        form = json.loads((params.get("json") or ["{}"])[0])
                        stage = form.get("stageName")
                        if stage not in ran:
                            return self._send(
                                400, f"<html>Failure restarting from stage: {stage}</html>"
                            )
                        standin.schedule(job, build.parameters, stage)
                        return self._send(302, "", {"Location": url})
                return self._send(404, "<html>Not Found</html>")

        return Handler
