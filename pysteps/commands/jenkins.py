"""pysteps jenkins: ops on the Jenkins that runs the catalog's pipelines.

  pysteps jenkins failed [--since 24h] [--catalog jobs/apps.yaml]
  pysteps jenkins rerun JOB [BUILD] --stage NAME [--wait SECONDS]
  pysteps jenkins trigger JOB [-p KEY=VALUE ...] [--wait] [--timeout SECONDS]

JOB is the job's full name (a multibranch job's branch: team-a/shop/main). Credentials from
the environment: JENKINS_URL, JENKINS_USER, JENKINS_API_TOKEN (never printed).
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from pysteps.environment import CommandParser
from pysteps.errors import InputError, PystepsError

if TYPE_CHECKING:
    from pysteps.clients.jenkins import JenkinsClient

_SINCE_RE = re.compile(r"([0-9]{1,6})([smhd])")
_PARAM_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=(.*)", re.DOTALL)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_seconds(value: str) -> int:
    """argparse type: '24h' -> 86400."""
    m = _SINCE_RE.fullmatch(value)
    if not m:
        raise argparse.ArgumentTypeError(f"{value!r}: give a duration such as 30m, 24h or 7d")
    return int(m.group(1)) * _UNITS[m.group(2)]


def parameter(value: str) -> tuple[str, str]:
    """argparse type: 'key=value' -> (key, value)."""
    m = _PARAM_RE.fullmatch(value)
    if not m:
        raise argparse.ArgumentTypeError(f"{value!r}: write a parameter as KEY=VALUE")
    return m.group(1), m.group(2)


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="pysteps jenkins", description=__doc__)
    p.add_argument("--timeout", type=float, default=30, help="HTTP timeout in seconds")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = sub.add_parser("failed", help="recent failed builds of the catalog's jobs, with the stage")
    f.add_argument("--since", type=since_seconds, default=86400, help="e.g. 30m, 24h, 7d")
    f.add_argument("--catalog", type=Path, default=Path("jobs/apps.yaml"))
    r = sub.add_parser("rerun", help="restart a build from a top-level stage (or rebuild)")
    r.add_argument("job")
    r.add_argument("build", nargs="?", type=int, help="default: the last failed build")
    r.add_argument("--stage", required=True, help="the top-level stage to restart from")
    r.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait for the result")
    t = sub.add_parser("trigger", help="queue a build, print its number and URL")
    t.add_argument("job")
    t.add_argument("-p", "--param", type=parameter, action="append", default=[])
    t.add_argument("--wait", action="store_true", help="wait for the result")
    t.add_argument("--queue-timeout", type=float, default=300, metavar="SECONDS")
    t.add_argument("--build-timeout", type=float, default=3600, metavar="SECONDS")
    return p


def run(argv: list[str], verbose: bool = False) -> int:
    args = build_parser().parse_args(argv)
    from pysteps.clients.jenkins import JenkinsClient, JenkinsLogin

    client = JenkinsClient(JenkinsLogin.from_env(), timeout=args.timeout)
    client.connect()
    if args.action == "failed":
        return failed(client, args.since, args.catalog)
    if args.action == "rerun":
        return rerun(client, args.job, args.build, args.stage, args.wait)
    return trigger(client, args.job, dict(args.param), args.wait, args)


def failed(client: JenkinsClient, since: int, catalog: Path) -> int:
    from pysteps.catalog import load_catalog
    from pysteps.errors import PreconditionError

    apps = load_catalog(catalog)
    since_ms = int((time.time() - since) * 1000)
    count = 0
    for app in apps:
        try:
            jobs = client.branch_jobs(app.job)
        except PreconditionError:
            print(f"{app.job}: no such job on Jenkins; run the seed job (jobs/seed.groovy)")
            continue
        for job in jobs:
            for build in client.recent_builds(job, since_ms):
                if not build.failed:
                    continue
                count += 1
                stage = client.failed_stage(job, build.number)
                when = datetime.fromtimestamp(build.timestamp_ms / 1000, timezone.utc)
                print(
                    f"{job} #{build.number} FAILED {when:%Y-%m-%d %H:%M}Z "
                    f"stage {stage or '(none recorded)'!s}  {build.url}  "
                    f"tell: {', '.join(app.recipients)}"
                )
                if stage:
                    print(f"  rerun: pysteps jenkins rerun {job} {build.number} --stage '{stage}'")
    hours, minutes = since // 3600, since % 3600 // 60
    print(f"{count} failed build(s) of {len(apps)} app(s) in the last {hours}h{minutes:02d}m")
    return 0


def rerun(client: JenkinsClient, job: str, number: int | None, stage: str, wait: float) -> int:
    build = client.build(job, number)
    names = [str(s.get("name")) for s in client.stages(job, build.number)]
    if names and stage not in names:
        raise InputError(
            f"--stage {stage!r}: build #{build.number} of {job} has the stages "
            f"{', '.join(repr(n) for n in names)}"
        )
    refusal = client.restart_refusal(build, stage)
    if refusal is None:
        new_number = client.restart_from_stage(build, stage)
        print(f"restarted {job} #{build.number} from stage {stage!r}: build #{new_number}")
    else:
        print(
            f"restart from stage {stage!r} is not possible: {refusal}; "
            f"rebuilding {job} with the parameters of #{build.number} instead (every stage runs)"
        )
        item = client.trigger(job, {k: str(v) for k, v in build.parameters.items()})
        queued = client.wait_for_queue(item, job, timeout=max(wait, 60))
        new_number = queued.number
        print(f"rebuild: build #{new_number} {queued.url}")
    if wait:
        done = client.wait_for_build(job, new_number, timeout=wait)
        print(f"{job} #{done.number} finished {done.result}")
        if done.result != "SUCCESS":
            raise PystepsError(f"{job} #{done.number} finished {done.result}: {done.url}")
    return 0


def trigger(
    client: JenkinsClient, job: str, params: dict[str, str], wait: bool, args: argparse.Namespace
) -> int:
    item = client.trigger(job, params)
    build = client.wait_for_queue(item, job, timeout=args.queue_timeout)
    print(f"{job} #{build.number} {build.url}")
    if wait:
        done = client.wait_for_build(job, build.number, timeout=args.build_timeout)
        print(f"{job} #{done.number} finished {done.result}")
        if done.result != "SUCCESS":
            raise PystepsError(f"{job} #{done.number} finished {done.result}: {done.url}")
    return 0
