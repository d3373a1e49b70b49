"""pysteps deploy: observe, plan and apply one release of an app."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from pysteps.console import Console
from pysteps.environment import CommandParser, add_cluster_flags, make_services
from pysteps.errors import PreconditionError, PystepsError, as_pysteps_error
from pysteps.masking import mask


def build_parser(prog: str = "pysteps deploy") -> argparse.ArgumentParser:
    p = CommandParser(prog=prog, description=__doc__)
    p.add_argument("-f", "--file", type=Path, help="app spec (default: <repo>/deploy.yaml)")
    p.add_argument("--overrides", type=Path, help="JSON map of spec fields (the Jenkins step's)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one field"
    )
    p.add_argument("--repo", type=Path, default=Path("."), help="the app's git checkout")
    p.add_argument("--commit", help="commit to ship (default: the checkout's HEAD)")
    p.add_argument("--build-url", default=os.environ.get("BUILD_URL"), help="link to the build")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--no-rollback", action="store_true", help="leave a failed rollout as it is")
    p.add_argument(
        "--lock-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another deploy of the app to finish (default: do not wait)",
    )
    p.add_argument(
        "--take-domains",
        action="store_true",
        help="move domains that another app's route claims to this app (default: refuse, exit 3)",
    )
    p.add_argument(
        "--canary",
        type=int,
        metavar="WEIGHT",
        help="run this release as the app's canary, with WEIGHT %% of its requests (1-99); "
        "see pysteps canary",
    )
    p.add_argument("--output", choices=("text", "json"), default="text", help="plan format")
    p.add_argument("--result", type=Path, help="write the JSON result here (for Jenkins)")
    add_cluster_flags(p)
    return p


def run(argv: list[str], verbose: bool = False, must_be_new: bool = False) -> int:
    args = build_parser("pysteps create" if must_be_new else "pysteps deploy").parse_args(argv)
    console = Console(verbose=verbose or args.verbose)
    from pysteps.clients.git import GitCheckout
    from pysteps.deploy import DeployEngine, DeployOptions, DeployResult
    from pysteps.manifests import Release
    from pysteps.spec import check_build_paths, load_spec

    spec_file = args.file or (args.repo / "deploy.yaml")
    result: DeployResult | None = None
    try:
        spec = load_spec(spec_file, args.overrides, args.set).with_secrets(os.environ)
        if spec.mode == "image":
            check_build_paths(spec, args.repo)
        release = Release(GitCheckout(args.repo).resolve(args.commit), args.build_url)
        engine = DeployEngine(make_services(args, console), console)
        if must_be_new and engine.workloads.observe(spec.namespace, spec.name) is not None:
            raise PreconditionError(
                f"{spec.namespace}/{spec.name} exists already; use pysteps deploy to update it"
            )
        options = DeployOptions(
            repo=args.repo,
            dry_run=args.dry_run,
            rollback=not args.no_rollback,
            lock_wait=args.lock_wait,
            take_domains=args.take_domains,
            command=shlex.join(["pysteps", "create" if must_be_new else "deploy", *argv]),
        )
        try:
            if args.canary is not None:
                from pysteps.canary import deploy_canary

                result = deploy_canary(
                    engine.services, console, spec, release, args.canary, options
                )
            else:
                result = engine.deploy(spec, release, options)
        finally:
            result = result or engine.last_result
    except (Exception, KeyboardInterrupt) as exc:
        # Mapped as pysteps.cli maps it, so the result file names the same exit code.
        error = as_pysteps_error(exc)
        if args.result:
            write_result(args.result, result, error)
        if error is exc:
            raise
        raise error from exc
    if args.result:
        write_result(args.result, result, None)
    assert result is not None
    if args.output == "json":
        print(json.dumps(mask.deep(result.to_dict()), indent=2))
    return 0


def write_result(path: Path, result: Any, error: PystepsError | None) -> None:
    """The JSON the Jenkins step reads back; written on success and on failure alike."""
    data: dict[str, Any] = result.to_dict() if result is not None else {"ok": False}
    if error is not None:
        data["ok"] = False
        data["error"] = str(error)
        data["exit_code"] = error.exit_code
    data = mask.deep(data)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    print(f"result written to {path}", file=sys.stderr)
