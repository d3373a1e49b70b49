"""pysteps canary: the app's canary (started by `pysteps deploy --canary WEIGHT`).

pysteps canary status NAME [-n NS]          its workload, commit, weight and servers
pysteps canary weight NAME WEIGHT [-n NS]   give it another share of the requests (1-99 %)
pysteps canary promote NAME [-n NS] [--repo DIR] [-f deploy.yaml] [--set k=v]
                                            roll the app to the canary's commit (a deploy of
                                            the app's spec), then remove the canary
pysteps canary abort NAME [-n NS]           remove it: 100 % to the app at once, then its
                                            workload, Service (and code directory) go
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pysteps.console import Console
from pysteps.environment import CommandParser, add_app_arguments, add_cluster_flags, make_services
from pysteps.errors import InputError, PreconditionError

if TYPE_CHECKING:
    from pysteps.deploy import Services


def _weight(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 99:
        raise argparse.ArgumentTypeError(f"{value!r}: give a percentage from 1 to 99")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog="pysteps canary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=CommandParser
    )
    for action, help_text in (
        ("status", "show the app's canary"),
        ("weight", "change the canary's share of the requests"),
        ("promote", "roll the app to the canary's version, then remove the canary"),
        ("abort", "remove the canary; the app takes every request again"),
    ):
        a = sub.add_parser(action, help=help_text, prog=f"pysteps canary {action}")
        add_app_arguments(a)
        if action == "weight":
            a.add_argument("weight", type=_weight, help="percent of requests, 1 to 99")
        if action == "status":
            a.add_argument("--output", choices=("text", "json"), default="text")
        if action == "promote":
            a.add_argument("--repo", type=Path, default=Path("."), help="the app's checkout")
            a.add_argument("-f", "--file", type=Path, help="spec (default: <repo>/deploy.yaml)")
            a.add_argument("--overrides", type=Path, help="JSON map of spec fields")
            a.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
            a.add_argument("--result", type=Path, help="write the JSON result here")
            a.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS")
        add_cluster_flags(a)
    return p


def run(argv: list[str], verbose: bool = False) -> int:
    args = build_parser().parse_args(argv)
    from pysteps import canary

    console = Console(verbose=verbose or args.verbose)
    services = make_services(args, console)
    ns, name = args.namespace, args.name
    if args.action == "status":
        status = canary.canary_status(services, ns, name)
        if status is None:
            raise PreconditionError(f"{ns}/{name} has no canary running")
        if args.output == "json":
            print(json.dumps(status, indent=2, sort_keys=True))
        else:
            print(f"canary:   {status['namespace']}/{status['name']} of {status['of']}")
            print(f"commit:   {status['commit'] or '?'}")
            print(f"ready:    {status['ready']}/{status['desired']}")
            print(f"weight:   {status['weight']} % -> {', '.join(status['servers']) or '-'}")
        return 0
    if args.action == "weight":
        route = canary.set_canary_weight(services, console, ns, name, args.weight)
        console(f"canary of {ns}/{name} now takes {args.weight} % of {', '.join(route.domains)}")
        return 0
    if args.action == "abort":
        canary.remove_canary(services, console, ns, name, purge_code=True)
        console(f"canary of {ns}/{name} aborted: every request goes to {name}")
        return 0
    return _promote(args, console, services)


def _promote(args: argparse.Namespace, console: Console, services: Services) -> int:
    from pysteps import canary
    from pysteps.commands.deploy import write_result
    from pysteps.deploy import DeployOptions
    from pysteps.errors import PystepsError
    from pysteps.spec import load_spec

    error: PystepsError | None = None
    result = None
    try:
        spec = load_spec(args.file or (args.repo / "deploy.yaml"), args.overrides, args.set)
        if (spec.namespace, spec.name) != (args.namespace, args.name):
            raise InputError(
                f"the spec is for {spec.namespace}/{spec.name}, not {args.namespace}/{args.name}:"
                " give the app's own deploy.yaml (-f) or -n"
            )
        options = DeployOptions(repo=args.repo, lock_wait=args.lock_wait)
        result = canary.promote_canary(
            services, console, spec, options, os.environ.get("BUILD_URL")
        )
    except PystepsError as exc:
        error = exc
    finally:
        if args.result:
            write_result(args.result, result, error)
    if error is not None:
        raise error
    return 0
